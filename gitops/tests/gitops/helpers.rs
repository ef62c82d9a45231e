//! Repositories in temp folders and running the `gitops` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const APP_DIGEST: &str =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const BROADCASTER_DIGEST: &str =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const CRONJOBS_DIGEST: &str =
    "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// Git without the machine's or user's configuration, so helpers and
/// identities configured there cannot change what the tests see.
pub fn hermetic(command: &mut Command) -> &mut Command {
    command
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GITOPS_TOKEN")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@docket.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@docket.invalid")
}

/// Runs git in `dir`; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = hermetic(Command::new("git").arg("-C").arg(dir).args(args))
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the `gitops` binary in `dir`.
pub fn gitops(dir: &Path, args: &[&str]) -> Output {
    hermetic(
        Command::new(env!("CARGO_BIN_EXE_gitops"))
            .current_dir(dir)
            .args(args),
    )
    .output()
    .expect("gitops runs")
}

/// Runs `gitops` and panics with its output unless it succeeds.
pub fn gitops_ok(dir: &Path, args: &[&str]) -> String {
    let output = gitops(dir, args);
    assert!(
        output.status.success(),
        "gitops {args:?}: {}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Checks gitops exited with `code` (failing with all it printed if not)
/// and returns what it wrote to stderr, for the test to read.
pub fn failure(output: &Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub const STAGING: &str = "kustomize/overlays/staging/kustomization.yaml";
pub const PRODUCTION: &str = "kustomize/overlays/production/kustomization.yaml";

/// The application repository: a copy of this workspace's `kustomize/` and
/// `argocd/`, committed on `main` as a merge would land.
pub struct SourceRepo {
    _dir: TempDir,
    pub path: PathBuf,
}

impl SourceRepo {
    pub fn new() -> SourceRepo {
        let (dir, path) = new_repository(&[], "docket");
        let root = test_support::workspace_root();
        for folder in ["kustomize", "argocd"] {
            copy_dir(&root.join(folder), &path.join(folder));
        }
        git(&path, &["add", "--all"]);
        git(
            &path,
            &["commit", "--quiet", "-m", "merge: deployment tree"],
        );
        SourceRepo { _dir: dir, path }
    }

    pub fn head(&self) -> String {
        git(&self.path, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// A merge that changes a file other than the overlays' images.
    pub fn merge_change(&self, note: &str) {
        let file = self.path.join("kustomize/base/kustomization.yaml");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str(&format!("# {note}\n"));
        std::fs::write(&file, text).unwrap();
        git(&self.path, &["commit", "--quiet", "--all", "-m", note]);
    }
}

/// A bare config repository (`main`) and clones of it.
pub struct ConfigRepo {
    dir: TempDir,
    pub bare: PathBuf,
}

impl ConfigRepo {
    pub fn new() -> ConfigRepo {
        let (dir, bare) = new_repository(&["--bare"], "config.git");
        ConfigRepo { dir, bare }
    }

    pub fn url(&self) -> String {
        self.bare.to_string_lossy().into_owned()
    }

    /// The commit `main` points at.
    pub fn main(&self) -> String {
        git(&self.bare, &["rev-parse", "main"]).trim().to_owned()
    }

    /// A fresh clone of `main` in its own folder.
    pub fn clone(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        git(self.dir.path(), &["clone", "--quiet", &self.url(), name]);
        path
    }

    /// Subjects of `main`'s commits, newest first.
    pub fn subjects(&self) -> Vec<String> {
        git(&self.bare, &["log", "--format=%s", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A file as `main` has it.
    pub fn show(&self, path: &str) -> String {
        git(&self.bare, &["show", &format!("main:{path}")])
    }

    /// A refused release left the repository as it was: `main` still at
    /// `head_before`, and no tag.
    pub fn assert_nothing_released(&self, head_before: &str) {
        assert_eq!(self.main(), head_before);
        assert_eq!(git(&self.bare, &["tag", "--list"]).trim(), "");
    }

    /// `main` points production at exactly staging's images.
    pub fn assert_production_runs_staging_images(&self) {
        assert_eq!(
            images_of(&self.show(PRODUCTION)),
            images_of(&self.show(STAGING))
        );
    }
}

/// An empty repository on branch `main` named `name` in a new temp folder,
/// made with `git init` and `options` (e.g. `--bare`).
fn new_repository(options: &[&str], name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let mut args = vec!["init", "--quiet", "-b", "main"];
    args.extend(options);
    args.push(name);
    git(dir.path(), &args);
    let path = dir.path().join(name);
    (dir, path)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Points staging at all three services' images at the test digests from
/// the checkout `clone` and pushes, as CI does after a merge.
pub fn set_staging_images(clone: &Path) {
    let images: Vec<String> = [
        ("app", APP_DIGEST),
        ("broadcaster", BROADCASTER_DIGEST),
        ("cronjobs", CRONJOBS_DIGEST),
    ]
    .iter()
    .flat_map(|(name, digest)| {
        [
            "--image".to_owned(),
            format!("{name}=ghcr.io/docket-dev/docket-{name}@{digest}"),
        ]
    })
    .collect();
    let mut args = vec!["set-image", "--env", "staging", "--push"];
    args.extend(images.iter().map(String::as_str));
    gitops_ok(clone, &args);
}

/// The images entries of an overlay's text, parsed.
pub fn images_of(kustomization: &str) -> Vec<gitops::overlay::Image> {
    #[derive(serde::Deserialize)]
    struct K {
        images: Vec<gitops::overlay::Image>,
    }
    let mut images = serde_yaml_ng::from_str::<K>(kustomization).unwrap().images;
    images.sort();
    images
}
