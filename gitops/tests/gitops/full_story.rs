//! The release flow end to end: merge → publish → staging images →
//! verified against a running, monitored app → release tag → production.

use test_support::test_nats;

use crate::environment::*;
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
    set_staging_images(&ci);

    // Argo CD would now roll staging out (a stand-in answers for it, see
    // `environment.rs`); here the app built from the merge runs locally,
    // reports that commit and is scraped by a real Prometheus.
    let set_images = config.main();
    let argocd = ArgoCd::start(
        vec![
            AppState::new("Synced", &set_images, "Progressing"),
            AppState::new("Synced", &set_images, "Healthy"),
        ],
        Log::default(),
    )
    .await;
    let nats = test_nats().unwrap();
    let app = App::start(&merged, &nats.url).await;
    let prometheus = Prometheus::scraping(&[(app.port, "todo-app-5b8c4d-x2x7q")]).await;
    let staging_url = app.url.clone();

    // A staging that serves something else is never marked verified.
    let output = gitops_async(
        &ci,
        &verify_args(&staging_url, "0000000", &argocd.url, &prometheus.url, 20),
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(8), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "pods not reporting commit 0000000: todo-app-5b8c4d-x2x7q (commit {})",
            &merged[..12]
        )),
        "{}",
        describe(&output)
    );

    let mut args = verify_args(&staging_url, &merged, &argocd.url, &prometheus.url, 60);
    args.push("--push".into());
    let output = gitops_async(&ci, &args, &[]).await;
    assert!(output.status.success(), "{}", describe(&output));
    gitops_ok(
        &ci,
        &[
            "release",
            "--tag",
            "v1.2.3",
            "--expect-commit",
            &merged,
            "--push",
        ],
    );

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
