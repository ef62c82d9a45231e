//! The router in process, through `tower::ServiceExt::oneshot`: routing,
//! errors and the layers every request goes through, where no socket is the
//! point. Its pool points at no database, so a request that reached one
//! would fail with 500: each answer here is given before any query.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use secrecy::SecretString;
use sqlx::PgPool;
use tower::ServiceExt;

use app::routes;
use app::state::AppState;

use crate::helpers::API_TOKEN;

fn router() -> Router {
    let nowhere = PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap();
    routes::router(AppState::new(nowhere, Some(SecretString::from(API_TOKEN))))
}

async fn send(request: Request<Body>) -> Response<Body> {
    router().oneshot(request).await.unwrap()
}

/// The status of a POST of `body` to `uri` with `headers` besides its
/// content type and length.
async fn post(uri: &str, content_type: &str, headers: &[(&str, &str)], body: String) -> StatusCode {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request.body(Body::from(body)).unwrap()).await.status()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_cross_site_form_post_is_refused_before_anything_is_written() {
    let csrf = || "text=csrf".to_owned();

    let by_fetch_metadata = post("/todos", FORM, &[("sec-fetch-site", "cross-site")], csrf()).await;
    let origin = [
        ("origin", "https://evil.example"),
        ("host", "127.0.0.1:8080"),
    ];
    let by_origin = post("/todos", FORM, &origin, csrf()).await;

    assert_eq!(by_fetch_metadata, StatusCode::FORBIDDEN);
    assert_eq!(by_origin, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_before_it_is_read() {
    let big = "a".repeat(17 * 1024);
    let bearer = format!("Bearer {API_TOKEN}");

    let form = post("/todos", FORM, &[], format!("text={big}")).await;
    let json_body = serde_json::json!({ "text": big }).to_string();
    let json = post(
        "/api/todos",
        "application/json",
        &[("authorization", &bearer)],
        json_body,
    )
    .await;

    assert_eq!(form, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_request_id_is_set_and_propagated() {
    let get = || Request::builder().uri("/healthz");

    let generated = send(get().body(Body::empty()).unwrap()).await;
    let given = send(
        get()
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert!(!generated.headers()["x-request-id"].is_empty());
    assert_eq!(given.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page_with_the_security_headers() {
    let response = send(
        Request::builder()
            .uri("/no/such/page")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let headers = response.headers();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn an_api_todo_id_that_is_no_uuid_is_404_in_json() {
    let response = send(
        Request::builder()
            .uri("/api/todos/not-a-uuid")
            .header(header::AUTHORIZATION, format!("Bearer {API_TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}
