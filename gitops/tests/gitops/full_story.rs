//! The release flow end to end: merge → publish → staging images →
//! verified against a running app → release tag → production.

use test_support::{Service, free_port, test_database, test_nats, workspace_binary};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_reaches_production_only_through_a_verified_staging() {
    // A merge on main is published to the config repository.
    let source = SourceRepo::new();
    let merged = source.head();
    let config = ConfigRepo::new();
    gitops_ok(&source.path, &["publish", "--config-repo", &config.url()]);

    // CI points staging at the images built from the merge.
    let ci = config.clone("ci");
    let mut args = vec!["set-image", "--env", "staging", "--push"];
    let images = staging_images();
    args.extend(images.iter().map(String::as_str));
    gitops_ok(&ci, &args);

    // Argo CD would now roll staging out; here the app built from the
    // merge runs locally and reports that commit.
    let database = test_database().await.unwrap();
    let nats = test_nats().unwrap();
    let port = free_port();
    let staging_url = format!("http://127.0.0.1:{port}");
    let _app = Service::spawn(
        &workspace_binary("todo-app"),
        &[],
        &[
            ("DATABASE_URL", database.url.clone()),
            ("NATS_URL", nats.url.clone()),
            ("PORT", port.to_string()),
            ("GIT_COMMIT", merged.clone()),
        ],
        &format!("{staging_url}/readyz"),
    )
    .await
    .unwrap();

    // A staging that serves something else is never marked verified.
    let output = gitops(
        &ci,
        &[
            "verify-env",
            "--env",
            "staging",
            "--url",
            &staging_url,
            "--expect-commit",
            "0000000",
            "--timeout",
            "3",
        ],
    );
    assert_eq!(output.status.code(), Some(8), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("last seen: commit {merged}"))
    );

    gitops_ok(
        &ci,
        &[
            "verify-env",
            "--env",
            "staging",
            "--url",
            &staging_url,
            "--expect-commit",
            &merged,
            "--timeout",
            "30",
            "--push",
        ],
    );
    gitops_ok(&ci, &["release", "--tag", "v1.2.3", "--push"]);

    // Production names exactly the digests staging was verified with.
    let staging = images_of(&config.show("kustomize/overlays/staging/kustomization.yaml"));
    let production = images_of(&config.show("kustomize/overlays/production/kustomization.yaml"));
    assert_eq!(production, staging);
    let references: Vec<String> = production.iter().map(|i| i.reference()).collect();
    for digest in [APP_DIGEST, BROADCASTER_DIGEST, CRONJOBS_DIGEST] {
        assert!(
            references.iter().any(|r| r.ends_with(digest)),
            "{references:?}"
        );
    }
    assert_eq!(
        git(&config.bare, &["rev-parse", "v1.2.3^{commit}"]),
        git(&config.bare, &["rev-parse", "main"])
    );

    // Each step is one commit, touching only what that step owns.
    assert_eq!(
        config.subjects(),
        [
            "release v1.2.3: production runs the images of staging".to_owned(),
            format!("staging: verified commit {merged} at {staging_url}"),
            "staging: set images app, broadcaster, cronjobs".to_owned(),
            format!("publish kustomize/ and argocd/ from {merged}"),
        ]
    );
    let touched = |rev: &str| {
        git(
            &config.bare,
            &["diff-tree", "--no-commit-id", "--name-only", "-r", rev],
        )
    };
    assert_eq!(
        touched("main").trim(),
        "kustomize/overlays/production/kustomization.yaml"
    );
    assert_eq!(touched("main~1").trim(), "verified/staging.json");
    assert_eq!(
        touched("main~2").trim(),
        "kustomize/overlays/staging/kustomization.yaml"
    );
}
