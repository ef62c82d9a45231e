//! Over a socket: the security headers on a real page, and a body over the
//! limit refused with nothing stored. Cross-site posts, request ids and the
//! limit itself are tested in process (`router.rs`).

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
