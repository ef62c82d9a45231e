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

fn post(uri: &str, content_type: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_before_anything_is_written() {
    let form = || post("/todos", "application/x-www-form-urlencoded");

    let by_fetch_metadata = send(
        form()
            .header("sec-fetch-site", "cross-site")
            .body(Body::from("text=csrf"))
            .unwrap(),
    )
    .await;
    let by_origin = send(
        form()
            .header("origin", "https://evil.example")
            .header(header::HOST, "127.0.0.1:8080")
            .body(Body::from("text=csrf"))
            .unwrap(),
    )
    .await;

    assert_eq!(by_fetch_metadata.status(), StatusCode::FORBIDDEN);
    assert_eq!(by_origin.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_body_over_16_kib_is_413_before_it_is_read() {
    let big = "a".repeat(17 * 1024);

    let form = send(
        post("/todos", "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, big.len() + 5)
            .body(Body::from(format!("text={big}")))
            .unwrap(),
    )
    .await;
    let json_body = serde_json::json!({ "text": big }).to_string();
    let json = send(
        post("/api/todos", "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {API_TOKEN}"))
            .header(header::CONTENT_LENGTH, json_body.len())
            .body(Body::from(json_body))
            .unwrap(),
    )
    .await;

    assert_eq!(form.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json.status(), StatusCode::PAYLOAD_TOO_LARGE);
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
