//! Each command against a bare config repository in a temp folder.

use gitops::commands::publish::{self, Published};
use gitops::overlay::Overlay;
use gitops::verified::{self, Verified};

use crate::helpers::*;

fn publish_args(source: &SourceRepo, config: &ConfigRepo) -> publish::Args {
    publish::Args {
        config_repo: config.url(),
        branch: "main".into(),
        source: source.path.clone(),
        take_images: false,
    }
}

/// A published config repository and a clone of it.
fn published() -> (SourceRepo, ConfigRepo, std::path::PathBuf) {
    let source = SourceRepo::new();
    let config = ConfigRepo::new();
    gitops_ok(&source.path, &["publish", "--config-repo", &config.url()]);
    let clone = config.clone("work");
    (source, config, clone)
}

/// As [`published`], with staging running the new images and verified for
/// them: what `promote` and `release` start from.
fn verified_in_staging() -> (SourceRepo, ConfigRepo, std::path::PathBuf) {
    let (source, config, clone) = published();
    set_staging_images(&clone);
    mark_staging_verified(&clone);
    (source, config, clone)
}

/// Marks staging verified for what it runs now, as verify-env would.
fn mark_staging_verified(clone: &std::path::Path) {
    let overlay = Overlay::open(clone, "staging").unwrap();
    verified::write(
        clone,
        &Verified {
            environment: "staging".into(),
            commit: "0123abc".into(),
            version: "0.1.0".into(),
            url: "http://staging.invalid".into(),
            images: verified::sorted_images(&overlay).unwrap(),
        },
    )
    .unwrap();
    git(clone, &["add", "verified"]);
    git(clone, &["commit", "--quiet", "-m", "staging: verified"]);
    git(clone, &["push", "--quiet", "origin", "main"]);
}

#[test]
fn publishing_twice_creates_one_commit_naming_the_source() {
    let source = SourceRepo::new();
    let config = ConfigRepo::new();

    let first = gitops_ok(&source.path, &["publish", "--config-repo", &config.url()]);
    let second = gitops_ok(&source.path, &["publish", "--config-repo", &config.url()]);

    assert!(first.contains("published"), "{first}");
    assert!(second.contains("nothing pushed"), "{second}");
    assert_eq!(
        config.subjects(),
        [format!(
            "publish kustomize/ and argocd/ from {}",
            source.head()
        )]
    );
    assert!(config.show("README.md").contains("gitops publish"));
    assert_eq!(
        config.show("argocd/production.yaml"),
        std::fs::read_to_string(source.path.join("argocd/production.yaml")).unwrap()
    );
}

#[test]
fn a_push_that_lands_between_fetch_and_push_is_retried_and_kept() {
    let (source, config, _) = published();
    source.merge_change("a later merge");

    // Right before publish's first push, CI for another merge points
    // staging at new digests and pushes first.
    let mut raced = false;
    let outcome = publish::publish(&publish_args(&source, &config), &mut |attempt| {
        if attempt == 1 {
            set_staging_images(&config.clone("racer"));
            raced = true;
        }
        Ok(())
    })
    .unwrap();

    assert!(raced);
    assert!(matches!(outcome, Published::Commit(_)), "{outcome:?}");
    let subjects = config.subjects();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects[0].starts_with(&format!(
        "publish kustomize/ and argocd/ from {}",
        source.head()
    )));
    assert!(subjects[1].starts_with("staging: set images"));
    // The re-applied publish kept the racer's images and carried the merge.
    assert!(config.show(STAGING).contains(APP_DIGEST));
    assert!(
        config
            .show("kustomize/base/kustomization.yaml")
            .ends_with("# a later merge\n")
    );
}

#[test]
fn set_image_changes_exactly_one_line_and_is_idempotent() {
    let (_source, config, clone) = published();
    let reference = format!("ghcr.io/docket-dev/docket-app@{APP_DIGEST}");
    let args = [
        "set-image",
        "--env",
        "staging",
        "--image",
        &format!("app={reference}"),
        "--push",
    ];

    gitops_ok(&clone, &args);
    let again = gitops_ok(&clone, &args);

    assert!(again.contains("nothing to commit"), "{again}");
    assert_eq!(config.subjects().len(), 2);
    let numstat = git(&config.bare, &["diff", "--numstat", "main~1", "main"]);
    assert_eq!(numstat.trim(), format!("1\t1\t{STAGING}"));
    let diff = git(&config.bare, &["diff", "--unified=0", "main~1", "main"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        ["-    newTag: 0.1.0", &format!("+    digest: {APP_DIGEST}")]
    );
}

#[test]
fn promote_refuses_an_unverified_staging() {
    let (_source, config, clone) = published();
    set_staging_images(&clone);

    let output = gitops(
        &clone,
        &["promote", "--from", "staging", "--to", "production"],
    );

    let stderr = failure(&output, 5);
    assert!(stderr.contains("staging is not verified"), "{stderr}");
    assert!(!config.show(PRODUCTION).contains(APP_DIGEST));

    // Verified for older images is not verified for these.
    mark_staging_verified(&clone);
    let mut args = vec!["set-image", "--env", "staging", "--push", "--image"];
    let newer = format!("app=ghcr.io/docket-dev/docket-app@{BROADCASTER_DIGEST}");
    args.push(&newer);
    gitops_ok(&clone, &args);
    let output = gitops(&clone, &["promote"]);
    assert_eq!(output.status.code(), Some(5), "{}", describe(&output));
}

#[test]
fn promote_copies_exactly_staging_s_images_and_nothing_else() {
    let (_source, config, clone) = verified_in_staging();
    let production_before = config.show(PRODUCTION);

    gitops_ok(
        &clone,
        &[
            "promote",
            "--from",
            "staging",
            "--to",
            "production",
            "--push",
        ],
    );

    let production = config.show(PRODUCTION);
    assert_eq!(images_of(&production), images_of(&config.show(STAGING)));
    let changed_files = git(&config.bare, &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed_files.trim(), PRODUCTION);
    // Outside the images: entry, production is byte for byte what it was.
    let outside = |text: &str| text.split("\nimages:\n").next().unwrap().to_owned();
    assert_eq!(outside(&production), outside(&production_before));
    assert!(config.subjects()[0].starts_with("production: promote images from staging"));
}

#[test]
fn a_forced_promotion_records_its_reason() {
    let (_source, config, clone) = published();
    set_staging_images(&clone);

    gitops_ok(
        &clone,
        &[
            "promote",
            "--force",
            "--reason",
            "hotfix for incident 42",
            "--push",
        ],
    );

    let message = git(&config.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("FORCED without verification in staging: hotfix for incident 42"),
        "{message}"
    );
    config.assert_production_runs_staging_images();
}

#[test]
fn release_promotes_and_creates_the_tag_once() {
    let (_source, config, clone) = verified_in_staging();

    gitops_ok(&clone, &["release", "--tag", "v0.2.0", "--push"]);
    gitops_ok(&clone, &["release", "--tag", "v0.2.0", "--push"]);

    let tagged = git(&config.bare, &["rev-parse", "v0.2.0^{commit}"]);
    let main = git(&config.bare, &["rev-parse", "main"]);
    assert_eq!(tagged, main);
    assert!(config.subjects()[0].starts_with("release v0.2.0"));
    assert_eq!(config.subjects().len(), 4, "{:?}", config.subjects());
    config.assert_production_runs_staging_images();

    // The same tag cannot move to another commit.
    std::fs::write(clone.join("NOTES"), "x").unwrap();
    git(&clone, &["add", "NOTES"]);
    git(&clone, &["commit", "--quiet", "-m", "notes"]);
    let output = gitops(&clone, &["release", "--tag", "v0.2.0"]);
    assert_eq!(output.status.code(), Some(9), "{}", describe(&output));
}

#[test]
fn release_ships_only_the_commit_staging_was_verified_for() {
    let (_source, config, clone) = verified_in_staging();
    let head_before = config.main();
    let production_before = config.show(PRODUCTION);

    // The tag is on another commit than the one staging verified.
    let output = gitops(
        &clone,
        &[
            "release",
            "--tag",
            "v0.3.0",
            "--expect-commit",
            "4567def",
            "--push",
        ],
    );

    let stderr = failure(&output, 11);
    assert!(
        stderr.contains("staging was verified for commit 0123abc, not 4567def"),
        "{stderr}"
    );
    config.assert_nothing_released(&head_before);
    assert_eq!(config.show(PRODUCTION), production_before);
    assert_eq!(git(&clone, &["tag", "--list"]).trim(), "");
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD"]).trim(),
        head_before,
        "the checkout gained no commit"
    );

    // The commit staging was verified for is released.
    gitops_ok(
        &clone,
        &[
            "release",
            "--tag",
            "v0.3.0",
            "--expect-commit",
            "0123abc",
            "--push",
        ],
    );
    assert_eq!(
        git(&config.bare, &["rev-parse", "v0.3.0^{commit}"]),
        git(&config.bare, &["rev-parse", "main"])
    );
    config.assert_production_runs_staging_images();
}

#[test]
fn a_tag_production_would_never_select_is_refused_naming_the_constraint() {
    let (_source, config, clone) = verified_in_staging();
    let head_before = config.main();

    // argocd/production.yaml follows `>=0.1.0`.
    let output = gitops(&clone, &["release", "--tag", "v0.0.9", "--push"]);

    let stderr = failure(&output, 3);
    assert!(
        stderr.contains("production's Application selects tags matching `>=0.1.0`"),
        "{stderr}"
    );
    config.assert_nothing_released(&head_before);
}

#[test]
fn mistakes_exit_with_their_documented_codes() {
    let (_source, _config, clone) = published();
    let code = |args: &[&str]| gitops(&clone, args).status.code();

    assert_eq!(
        code(&["set-image", "--env", "qa", "--image", "app=r:1"]),
        Some(3)
    );
    assert_eq!(
        code(&["set-image", "--env", "staging", "--image", "web=r:1"]),
        Some(3)
    );
    assert_eq!(
        code(&[
            "set-image",
            "--env",
            "staging",
            "--image",
            "app=ghcr.io/x/docket-app"
        ]),
        Some(3)
    );
    assert_eq!(code(&["release", "--tag", "1.2.3"]), Some(3));
    assert_eq!(code(&["promote", "--force"]), Some(2));

    std::fs::write(clone.join("stray.txt"), "uncommitted").unwrap();
    assert_eq!(
        code(&["set-image", "--env", "staging", "--image", "app=r:1"]),
        Some(4)
    );
    std::fs::remove_file(clone.join("stray.txt")).unwrap();

    git(
        &clone,
        &[
            "remote",
            "set-url",
            "origin",
            "https://git.invalid/docket-config.git",
        ],
    );
    let output = gitops(
        &clone,
        &[
            "set-image",
            "--env",
            "staging",
            "--image",
            "app=r:1",
            "--push",
        ],
    );
    let stderr = failure(&output, 6);
    assert!(stderr.contains("GITOPS_TOKEN"), "{stderr}");
}

#[test]
fn diff_shows_the_objects_an_image_change_touches() {
    let kubectl = test_support::workspace_root().join("target/tools/venv/bin/kubectl");
    assert!(
        kubectl.is_file(),
        "{} is missing: run `cargo xtask manifests` once to install the manifest tools",
        kubectl.display()
    );
    let (_source, _config, clone) = published();
    let reference = format!("app=ghcr.io/docket-dev/docket-app@{APP_DIGEST}");
    gitops_ok(
        &clone,
        &[
            "set-image",
            "--env",
            "staging",
            "--no-commit",
            "--image",
            &reference,
        ],
    );

    let output = hermetic(
        std::process::Command::new(env!("CARGO_BIN_EXE_gitops"))
            .current_dir(&clone)
            .args(["diff", "--env", "staging"])
            .env("KUBECTL", &kubectl),
    )
    .output()
    .unwrap();

    assert!(output.status.success(), "{}", describe(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    let changed: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(['~', '+', '-']))
        .collect();
    assert_eq!(changed, ["~ Rollout docket-staging/todo-app"], "{report}");
    assert!(
        report.contains(&format!(
            "+        image: ghcr.io/docket-dev/docket-app@{APP_DIGEST}"
        )),
        "{report}"
    );
}

#[test]
fn verify_fails_with_code_10_when_the_tree_is_invalid() {
    // A misspelt field in the Rollout: the vendored strict CRD schema
    // rejects it, and `gitops verify` says so with its own exit code.
    let source = SourceRepo::new();
    // The manifest tools this workspace already installed, rather than a
    // second venv (hundreds of MB from PyPI) in the temporary checkout.
    std::fs::create_dir_all(source.path.join("target")).unwrap();
    std::os::unix::fs::symlink(
        test_support::workspace_root().join("target/tools"),
        source.path.join("target/tools"),
    )
    .unwrap();
    let rollout = source.path.join("kustomize/base/app/rollout.yaml");
    let text = std::fs::read_to_string(&rollout).unwrap();
    std::fs::write(
        &rollout,
        text.replace("revisionHistoryLimit:", "revisionHistoryLimt:"),
    )
    .unwrap();
    let output = gitops(&source.path, &["verify"]);
    assert_eq!(output.status.code(), Some(10), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("revisionHistoryLimt"),
        "{}",
        describe(&output)
    );
}
