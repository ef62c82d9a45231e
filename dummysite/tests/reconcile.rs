//! The reconciler against a stand-in API server (see `support`) and a real
//! web site on loopback: create, a new URL, a fresh copy, fetch failures,
//! an invalid spec, deletion.

mod support;

use std::time::Duration;

use base64::Engine;
use dummysite::{DummySite, Error, error_policy, reconcile};
use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::*;

/// The ConfigMap the API server holds for `url`, fetched at `fetched_at`.
fn stored_config_map(url: &str, page: &str, fetched_at: Timestamp) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "blog", "namespace": "sites",
            "annotations": {
                "docket.dev/source-url": url,
                "docket.dev/content-sha256": "0ld5ha",
                "docket.dev/fetched-at": fetched_at.to_string(),
            },
        },
        "binaryData": { "index.html": base64::engine::general_purpose::STANDARD.encode(page) },
    })
}

/// The content hash on a Deployment patch's pod template: a new one rolls
/// the pods.
fn pods_content_hash(deployment: &Call) -> &Value {
    &deployment.body["spec"]["template"]["metadata"]["annotations"]["docket.dev/content-sha256"]
}

fn page_in(config_map: &Value) -> String {
    let encoded = config_map["binaryData"]["index.html"].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_new_site_gets_a_copy_a_server_and_a_ready_status() {
    let web = Site::start().await;
    let (context, mut api) = context();
    let site = site(&web.url("/page"), 1, None);
    let task = tokio::spawn(reconcile(site.clone().into(), context));

    expect(&mut api, Method::GET, CONFIG_MAP, 404, Some(not_found())).await;

    let config_map = expect(&mut api, Method::PATCH, CONFIG_MAP, 200, None).await;
    assert_eq!(config_map.content_type, "application/apply-patch+yaml");
    assert!(
        config_map
            .query
            .contains("fieldManager=dummysite-controller"),
        "{}",
        config_map.query
    );
    assert!(
        config_map.query.contains("force=true"),
        "{}",
        config_map.query
    );
    let copy = page_in(&config_map.body);
    assert_eq!(
        copy,
        PAGE.replace(
            "<head>",
            &format!("<head><base href=\"{}\">", web.url("/page"))
        )
    );
    let annotations = &config_map.body["metadata"]["annotations"];
    assert_eq!(annotations["docket.dev/source-url"], web.url("/page"));
    let owner = &config_map.body["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            owner["apiVersion"].as_str(),
            owner["kind"].as_str(),
            owner["name"].as_str()
        ),
        (Some("docket.dev/v1"), Some("DummySite"), Some("blog"))
    );
    assert_eq!(
        (owner["uid"].as_str(), owner["controller"].as_bool()),
        (Some("6f1c-uid"), Some(true))
    );

    let deployment = expect(&mut api, Method::PATCH, DEPLOYMENT, 200, None).await;
    let template = &deployment.body["spec"]["template"];
    assert_eq!(
        pods_content_hash(&deployment),
        &annotations["docket.dev/content-sha256"],
        "a new copy rolls the pods"
    );
    assert_eq!(template["spec"]["containers"][0]["image"], SERVER_IMAGE);
    assert_eq!(template["spec"]["volumes"][0]["configMap"]["name"], "blog");
    assert_eq!(
        deployment.body["metadata"]["ownerReferences"][0]["uid"],
        "6f1c-uid"
    );

    let service = expect(&mut api, Method::PATCH, SERVICE, 200, None).await;
    assert_eq!(
        service.body["spec"]["selector"],
        deployment.body["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        service.body["metadata"]["ownerReferences"][0]["uid"],
        "6f1c-uid"
    );

    let status = expect_status(&mut api, &site).await;
    let status = &status.body;
    assert_eq!(
        condition(status, "Ready"),
        ("True".into(), "Serving".into())
    );
    assert_eq!(
        condition(status, "FetchFailed"),
        ("False".into(), "Fetched".into())
    );
    assert_eq!(status["status"]["servedUrl"], web.url("/page"));
    assert_eq!(status["status"]["servedBytes"], copy.len());
    assert_eq!(status["status"]["observedGeneration"], 1);

    let action = task.await.unwrap().unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(3600)),
        "refreshed after an hour"
    );
    assert_eq!(web.hits(), 1);
}

#[tokio::test]
async fn a_new_url_is_copied_and_rolls_the_server() {
    let web = Site::start().await;
    let (context, mut api) = context();
    let site = site(&web.url("/other"), 2, None);
    let task = tokio::spawn(reconcile(site.clone().into(), context));

    let stored = stored_config_map(&web.url("/page"), PAGE, Timestamp::now());
    expect(&mut api, Method::GET, CONFIG_MAP, 200, Some(stored)).await;
    let config_map = expect(&mut api, Method::PATCH, CONFIG_MAP, 200, None).await;
    assert!(page_in(&config_map.body).contains("other"));
    assert_eq!(
        config_map.body["metadata"]["annotations"]["docket.dev/source-url"],
        web.url("/other")
    );
    let deployment = expect(&mut api, Method::PATCH, DEPLOYMENT, 200, None).await;
    assert_ne!(pods_content_hash(&deployment), "0ld5ha");
    expect(&mut api, Method::PATCH, SERVICE, 200, None).await;
    let status = expect_status(&mut api, &site).await;
    assert_eq!(status.body["status"]["servedUrl"], web.url("/other"));
    assert_eq!(status.body["status"]["observedGeneration"], 2);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_fresh_copy_is_served_without_fetching_again() {
    let web = Site::start().await;
    let (context, mut api) = context();
    let site = site(&web.url("/page"), 1, None);
    let task = tokio::spawn(reconcile(site.clone().into(), context));

    let fetched = Timestamp::now() - SignedDuration::from_mins(10);
    let stored = stored_config_map(&web.url("/page"), PAGE, fetched);
    expect(&mut api, Method::GET, CONFIG_MAP, 200, Some(stored)).await;
    let deployment = expect(&mut api, Method::PATCH, DEPLOYMENT, 200, None).await;
    assert_eq!(pods_content_hash(&deployment), "0ld5ha");
    expect(&mut api, Method::PATCH, SERVICE, 200, None).await;
    let status = expect_status(&mut api, &site).await;
    assert_eq!(
        condition(&status.body, "Ready"),
        ("True".into(), "Serving".into())
    );

    let action = task.await.unwrap().unwrap();
    assert_ne!(action, Action::await_change(), "refreshed when due");
    assert_eq!(
        web.hits(),
        0,
        "a copy younger than the refresh interval is not fetched"
    );
}

#[tokio::test]
async fn a_page_that_cannot_be_fetched_is_reported_and_retried_with_backoff() {
    let web = Site::start().await;
    let (context, mut api) = context();
    let site: std::sync::Arc<DummySite> = site(&web.url("/broken"), 1, None).into();
    let task = tokio::spawn(reconcile(site.clone(), context.clone()));

    expect(&mut api, Method::GET, CONFIG_MAP, 404, Some(not_found())).await;
    // No copy to serve: nothing is created, the status says why.
    let status = expect_status(&mut api, &site).await;
    assert_eq!(
        condition(&status.body, "FetchFailed"),
        ("True".into(), "HttpStatus".into())
    );
    assert_eq!(
        condition(&status.body, "Ready"),
        ("False".into(), "HttpStatus".into())
    );
    let message = status.body["status"]["conditions"][1]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("500"), "{message}");

    let error = task.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::Fetch(_)), "{error}");
    let waits: Vec<Action> = (0..3)
        .map(|_| error_policy(site.clone(), &error, context.clone()))
        .collect();
    assert_eq!(
        waits,
        [5, 10, 20].map(|s| Action::requeue(Duration::from_secs(s))),
        "each failure in a row doubles the wait"
    );
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_copy_it_has() {
    let web = Site::start().await;
    let (context, mut api) = context();
    let previous = dummysite::DummySiteStatus::default();
    let site = site(&web.url("/broken"), 1, Some(previous));
    let task = tokio::spawn(reconcile(site.clone().into(), context));

    let stale = Timestamp::now() - SignedDuration::from_hours(2);
    let stored = stored_config_map(&web.url("/broken"), PAGE, stale);
    expect(&mut api, Method::GET, CONFIG_MAP, 200, Some(stored)).await;
    // The ConfigMap is left as it is; server and Service stay in place.
    let deployment = expect(&mut api, Method::PATCH, DEPLOYMENT, 200, None).await;
    assert_eq!(pods_content_hash(&deployment), "0ld5ha");
    expect(&mut api, Method::PATCH, SERVICE, 200, None).await;
    let status = expect_status(&mut api, &site).await;
    assert_eq!(
        condition(&status.body, "Ready"),
        ("True".into(), "ServingPreviousCopy".into())
    );
    assert_eq!(
        condition(&status.body, "FetchFailed"),
        ("True".into(), "HttpStatus".into())
    );
    assert!(matches!(task.await.unwrap(), Err(Error::Fetch(_))));
    assert_eq!(web.hits(), 1);
}

#[tokio::test]
async fn an_invalid_url_is_reported_and_waits_for_a_new_spec() {
    let (context, mut api) = context();
    let site: std::sync::Arc<DummySite> = site("https://user:secret@example.com/", 1, None).into();
    let task = tokio::spawn(reconcile(site.clone(), context.clone()));

    let status = expect_status(&mut api, &site).await;
    assert_eq!(
        condition(&status.body, "FetchFailed"),
        ("True".into(), "InvalidUrl".into())
    );
    assert_eq!(
        condition(&status.body, "Ready"),
        ("False".into(), "InvalidUrl".into())
    );
    let error = task.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::InvalidUrl(_)), "{error}");
    assert_eq!(error_policy(site, &error, context), Action::await_change());
}

#[tokio::test]
async fn a_deleted_site_is_left_to_the_garbage_collector() {
    let (context, mut api) = context();
    let mut site = site("https://example.com/", 1, None);
    site.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    let task = tokio::spawn(reconcile(site.into(), context));
    // Once the reconciler is done its client is dropped and the stand-in
    // yields `None`: only an actual request fails the test.
    tokio::select! {
        action = task => assert_eq!(action.unwrap().unwrap(), Action::await_change()),
        Some((request, _)) = api.next_request() => {
            panic!("a request for a deleted site: {}", request.uri())
        }
    }
}
