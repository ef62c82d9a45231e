//! Headers, cross-site posts, body limits, request ids.

use crate::helpers::spawn_app;

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = spawn_app().await;

    let response = app.get("/").await;

    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let app = spawn_app().await;

    let by_fetch_metadata = app
        .client
        .post(app.url("/todos"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("text", "csrf")])
        .send()
        .await
        .unwrap();
    let by_origin = app
        .client
        .post(app.url("/todos"))
        .header("origin", "https://evil.example")
        .form(&[("text", "csrf")])
        .send()
        .await
        .unwrap();

    assert_eq!(by_fetch_metadata.status(), 403);
    assert_eq!(by_origin.status(), 403);
    assert_eq!(app.todo_count().await, 0);
}

#[tokio::test]
async fn a_body_over_16_kib_is_413() {
    let app = spawn_app().await;
    let big = "a".repeat(17 * 1024);

    let form = app.post_form("/todos", &[("text", &big)]).await;
    let json = app
        .api(reqwest::Method::POST, "/api/todos")
        .json(&serde_json::json!({ "text": big }))
        .send()
        .await
        .unwrap();

    assert_eq!(form.status(), 413);
    assert_eq!(json.status(), 413);
    assert_eq!(app.todo_count().await, 0);
}

#[tokio::test]
async fn the_request_id_is_set_and_propagated() {
    let app = spawn_app().await;

    let generated = app.get("/healthz").await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();

    assert!(!generated.headers()["x-request-id"].is_empty());
    assert_eq!(given.headers()["x-request-id"], "abc-123");
}
