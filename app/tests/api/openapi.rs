//! The OpenAPI document and the routes agree.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

/// The JSON API as a client knows it. A route missing from the document, or
/// documented but not served, fails here.
const API_ROUTES: [(&str, &str); 5] = [
    ("get", "/api/todos"),
    ("post", "/api/todos"),
    ("get", "/api/todos/{id}"),
    ("put", "/api/todos/{id}"),
    ("delete", "/api/todos/{id}"),
];

#[tokio::test]
async fn the_document_lists_exactly_the_served_api_routes() {
    let app = spawn_app().await;

    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<_> = API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // Every documented operation is served: its handler answers (in JSON),
    // not the HTML fallback for unknown routes, and not 405.
    let some_id = app.create_todo("for the route check").await.to_string();
    for (method, path) in &documented {
        let url = path.replace("{id}", &some_id);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .api(method.clone(), &url)
            .json(&serde_json::json!({"text": "route check", "done": true}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let is_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        assert!(
            status != 405 && (is_json || status == 204),
            "{method} {url}: {status}"
        );
    }
}

#[test]
fn the_create_operation_documents_its_idempotency_key_and_answers() {
    let doc: Value = serde_json::from_str(app::routes::openapi()).unwrap();
    let create = &doc["paths"]["/api/todos"]["post"];

    let key = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .expect("the header is documented");
    assert_eq!(key["in"], "header");
    assert_eq!(key["required"], false);
    let responses = create["responses"].as_object().unwrap();
    for status in ["201", "400", "401", "403", "422", "503"] {
        assert!(responses.contains_key(status), "{status}: {create}");
    }
    assert!(
        create["responses"]["201"]["headers"]
            .get("idempotent-replayed")
            .is_some(),
        "{create}"
    );
    for method in ["put", "delete"] {
        let responses = &doc["paths"]["/api/todos/{id}"][method]["responses"];
        assert!(responses.get("403").is_some(), "{method}");
    }
}
