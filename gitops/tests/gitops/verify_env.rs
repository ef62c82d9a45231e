//! `gitops verify-env` marks an environment verified only once it is fully
//! rolled out, monitored and serving nothing but the expected commit.
//!
//! Argo CD cannot run here (it needs a Kubernetes cluster), so a small HTTP
//! stand-in speaking its documented `GET /api/v1/applications/{name}`
//! answers in its place, as does a stand-in for the Service in front of the
//! pods (see `environment.rs`). The app and Prometheus are the real ones.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gitops::verified::Verified;
use test_support::test_nats;

use crate::environment::*;
use crate::helpers::*;

const NEW_COMMIT: &str = "2222222222222222222222222222222222222222";
/// A fast failure must come long before the deadline these tests give.
const FAST: Duration = Duration::from_secs(30);

/// A config repository whose staging overlay was just pointed at new images.
struct Staging {
    _source: SourceRepo,
    config: ConfigRepo,
    /// The CI checkout verify-env runs in.
    checkout: PathBuf,
    /// The publish commit, before the images were set.
    published: String,
    /// The commit that set staging's images.
    set_images: String,
}

fn staging() -> Staging {
    let source = SourceRepo::new();
    let config = ConfigRepo::new();
    gitops_ok(&source.path, &["publish", "--config-repo", &config.url()]);
    let published = config.main();
    let checkout = config.clone("ci");
    set_staging_images(&checkout);
    let set_images = config.main();
    Staging {
        _source: source,
        config,
        checkout,
        published,
        set_images,
    }
}

impl Staging {
    /// Neither the checkout nor the config repository got a commit or a marker.
    fn assert_nothing_written(&self) {
        assert_eq!(
            git(&self.checkout, &["rev-parse", "HEAD"]).trim(),
            self.set_images
        );
        assert_eq!(
            git(&self.checkout, &["status", "--porcelain"]).trim(),
            "",
            "the checkout is left as it was"
        );
        assert!(!self.checkout.join("verified/staging.json").exists());
        assert_eq!(self.config.main(), self.set_images);
    }
}

/// Runs verify-env against the Argo CD stand-in at `argocd` with a 300 s
/// deadline and nothing else listening; it must fail with the "failed at
/// once" code well inside [`FAST`]. Returns its stderr.
async fn fails_at_once(checkout: &std::path::Path, argocd: &str) -> String {
    let started = Instant::now();
    let args = with_push(verify_args(
        &nothing_listening(),
        NEW_COMMIT,
        argocd,
        &nothing_listening(),
        300,
    ));
    let output = gitops_async(checkout, &args, &[]).await;
    assert_eq!(output.status.code(), Some(12), "{}", describe(&output));
    assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn with_push(mut args: Vec<String>) -> Vec<String> {
    args.push("--push".into());
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn the_marker_is_written_only_once_argo_cd_reports_healthy_and_no_old_pod_answers() {
    let staging = staging();
    let log = Log::default();
    // Argo CD first compares the older commit, then syncs ours and rolls it
    // out through the canary steps (paused: Suspended) until fully promoted.
    let argocd = ArgoCd::start(
        vec![
            AppState::new("OutOfSync", &staging.published, "Healthy"),
            AppState::new("Synced", &staging.set_images, "Progressing"),
            AppState::new("Synced", &staging.set_images, "Suspended"),
            AppState::new("Synced", &staging.set_images, "Progressing"),
            AppState::new("Synced", &staging.set_images, "Healthy"),
        ],
        log.clone(),
    )
    .await;
    let nats = test_nats().unwrap();
    let app = App::start(NEW_COMMIT, &nats.url).await;
    let prometheus = Prometheus::scraping(&[(app.port, "todo-app-5b8c4d-x2x7q")]).await;
    // An old pod still answers the first 7 requests for /version.
    let service = ServiceFront::start(&app.url, 7, log.clone()).await;

    let args = with_push(verify_args(
        &service.url,
        NEW_COMMIT,
        &argocd.url,
        &prometheus.url,
        120,
    ));
    let output = gitops_async(&staging.checkout, &args, &[]).await;

    assert!(output.status.success(), "{}", describe(&output));
    // Argo CD was asked until Healthy and no further; the first read asked
    // it to re-read git, and every read carried the token.
    let requests = argocd.requests();
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert_eq!(requests[0].refresh.as_deref(), Some("normal"));
    assert!(requests[1..].iter().all(|r| r.refresh.is_none()));
    assert!(requests.iter().all(|r| r.authorized));
    // Pages went through the Service (and were counted) only after Healthy;
    // /version was asked only after that.
    let healthy = log.first("argocd Synced Healthy").unwrap();
    let first_page = log.first("GET /").expect("verify-env sent page requests");
    let first_version = log.first("version").unwrap();
    assert!(
        healthy < first_page && first_page < first_version,
        "{:?}",
        log.events()
    );
    // Every old answer restarted the run; the marker needed 5 new ones after the last.
    let versions: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.starts_with("version"))
        .collect();
    let mut expected = vec!["version old".to_owned(); 7];
    expected.extend(vec!["version forwarded".to_owned(); 5]);
    assert_eq!(versions, expected);

    let marker: Verified =
        serde_json::from_str(&staging.config.show("verified/staging.json")).unwrap();
    assert_eq!(marker.commit, NEW_COMMIT);
    assert_eq!(
        marker.images,
        images_of(
            &staging
                .config
                .show("kustomize/overlays/staging/kustomization.yaml")
        )
    );
    assert_eq!(
        staging.config.subjects()[0],
        format!("staging: verified commit {NEW_COMMIT} at {}", service.url)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_degraded_rollout_fails_at_once_and_writes_nothing() {
    let staging = staging();
    let argocd = ArgoCd::start(
        vec![
            AppState::new("Synced", &staging.set_images, "Progressing"),
            AppState::new("Synced", &staging.set_images, "Degraded"),
        ],
        Log::default(),
    )
    .await;

    let stderr = fails_at_once(&staging.checkout, &argocd.url).await;
    assert!(
        stderr.contains("health Degraded") && stderr.contains("rollout was aborted"),
        "{stderr}"
    );
    staging.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread")]
async fn argo_cd_synced_at_another_revision_fails_at_once_and_writes_nothing() {
    let staging = staging();
    // Another delivery, pushed after this checkout was made: a later commit
    // giving staging other images.
    let racer = staging.config.clone("racer");
    let other = format!("app=ghcr.io/docket-dev/docket-app@{BROADCASTER_DIGEST}");
    gitops_ok(
        &racer,
        &["set-image", "--env", "staging", "--push", "--image", &other],
    );
    let newer = staging.config.main();

    for (revision, why) in [
        (
            newer.as_str(),
            "is a later commit that gives staging other images",
        ),
        (
            "0123456789abcdef0123456789abcdef01234567",
            "is not a commit of the config repository",
        ),
    ] {
        let argocd = ArgoCd::settled_at(revision).await;
        let stderr = fails_at_once(&staging.checkout, &argocd.url).await;
        assert!(
            stderr.contains(&format!("Synced at another revision: {revision} {why}")),
            "{stderr}"
        );
        // The checkout is where it was; the racer's commit stays the
        // config repository's head.
        assert_eq!(
            git(&staging.checkout, &["rev-parse", "HEAD"]).trim(),
            staging.set_images
        );
        assert_eq!(staging.config.main(), newer);
        assert!(!staging.checkout.join("verified/staging.json").exists());
        assert_eq!(
            git(&staging.checkout, &["status", "--porcelain"]).trim(),
            ""
        );
        assert_eq!(
            staging.config.subjects()[0],
            "staging: set images app",
            "nothing was committed after the racer"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_revision_is_waited_for_until_the_deadline() {
    let staging = staging();
    // Synced and Healthy, but still at the commit before the new images.
    let argocd = ArgoCd::settled_at(&staging.published).await;

    let args = with_push(verify_args(
        &nothing_listening(),
        NEW_COMMIT,
        &argocd.url,
        &nothing_listening(),
        3,
    ));
    let output = gitops_async(&staging.checkout, &args, &[]).await;

    let stderr = failure(&output, 8);
    assert!(
        stderr.contains("was not ready within 3 s") && stderr.contains("an older config commit"),
        "{stderr}"
    );
    assert!(argocd.requests().len() > 1, "it kept polling");
    staging.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_argo_cd_token_fails_at_once_and_is_never_printed() {
    let staging = staging();
    let argocd = ArgoCd::settled_at(&staging.set_images).await;
    let wrong = "wrong-token-4f2a9c";
    // The token comes from the environment, as in CI.
    let args: Vec<String> = verify_args(
        &nothing_listening(),
        NEW_COMMIT,
        &argocd.url,
        &nothing_listening(),
        300,
    )
    .into_iter()
    .filter(|a| a != "--argocd-token" && a != TOKEN)
    .collect();

    let output = gitops_async(&staging.checkout, &args, &[("ARGOCD_AUTH_TOKEN", wrong)]).await;

    assert_eq!(output.status.code(), Some(6), "{}", describe(&output));
    assert!(!describe(&output).contains(wrong));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ARGOCD_AUTH_TOKEN"));
    assert!(argocd.requests().iter().all(|r| !r.authorized));
    staging.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scraped_pod_still_on_the_old_commit_keeps_the_environment_unverified() {
    let staging = staging();
    let argocd = ArgoCd::settled_at(&staging.set_images).await;
    let nats = test_nats().unwrap();
    let new = App::start(NEW_COMMIT, &nats.url).await;
    let old = App::start(OLD_COMMIT, &nats.url).await;
    let prometheus = Prometheus::scraping(&[
        (new.port, "todo-app-5b8c4d-x2x7q"),
        (old.port, "todo-app-6f7d9c-k8m2z"),
    ])
    .await;

    let args = with_push(verify_args(
        &new.url,
        NEW_COMMIT,
        &argocd.url,
        &prometheus.url,
        20,
    ));
    let output = gitops_async(&staging.checkout, &args, &[]).await;

    let stderr = failure(&output, 8);
    assert!(
        stderr.contains("todo-app-6f7d9c-k8m2z (commit 111111111111)"),
        "{stderr}"
    );
    assert!(!stderr.contains("todo-app-5b8c4d-x2x7q"), "{stderr}");
    staging.assert_nothing_written();
}
