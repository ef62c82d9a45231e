//! JSON bodies of the API writes (`POST /api/todos`, `PUT /api/todos/{id}`)
//! through the app's real router and its `ApiJson` extractor. Beyond "never a
//! 5xx but the database's 503": a wrong token is a 401 whatever the body, and
//! a well-formed create is accepted exactly when `TodoText::parse` accepts
//! its text.
#![no_main]

use app::domain::TodoText;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use docket_fuzz::{API_TOKEN, check, send, todo_id};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Token<'a> {
    Right,
    Missing,
    Other(&'a str),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    update: bool,
    id: Option<&'a [u8]>,
    token: Token<'a>,
    json_content_type: bool,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let id = todo_id(input.id);
    let (method, uri) = if input.update {
        ("PUT", format!("/api/todos/{id}"))
    } else {
        ("POST", "/api/todos".to_owned())
    };
    let mut request = Request::builder().method(method).uri(&uri);
    if input.json_content_type {
        request = request.header("content-type", "application/json");
    }
    let right_token = match input.token {
        Token::Right => {
            request = request.header("authorization", format!("Bearer {API_TOKEN}"));
            true
        }
        Token::Missing => false,
        Token::Other(token) => {
            request = request.header("authorization", format!("Bearer {token}"));
            token.trim() == API_TOKEN
        }
    };
    let Ok(request) = request.body(Body::from(input.body.to_vec())) else {
        return;
    };
    let answer = send(request);
    let what = format!("{method} {uri}");
    check(&answer, &what);

    // An empty id matches no route: the fallback's 404 page, not the API.
    let routed = !input.update || input.id.is_none_or(|raw| !raw.is_empty());
    if !routed {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{what}: {answer:?}");
        return;
    }
    if !right_token {
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {answer:?}"
        );
        return;
    }
    // axum's own `Path` rejection (an id that is not UTF-8 once decoded)
    // answers in plain text, not the API's JSON error: still a 400 that says
    // why ("Invalid URL: Invalid UTF-8 in `id`"), so only checked as above.
    let id_is_text = input.id.is_none_or(|raw| std::str::from_utf8(raw).is_ok());
    if answer.status.is_client_error() && id_is_text {
        let body: serde_json::Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{what}: a refusal that is not JSON ({e}): {answer:?}"));
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer:?}"
        );
    }
    // The oracle: a create whose body is exactly `{"text": <string>}`.
    if !input.update && input.json_content_type {
        let text = serde_json::from_slice::<serde_json::Value>(input.body)
            .ok()
            .and_then(|value| {
                let object = value.as_object()?;
                (object.len() == 1).then_some(())?;
                object.get("text")?.as_str().map(str::to_owned)
            });
        if let Some(text) = text {
            let expected = if TodoText::parse(&text).is_ok() {
                StatusCode::SERVICE_UNAVAILABLE // accepted; the store is down
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(answer.status, expected, "{what} {text:?}: {answer:?}");
        }
    }
});
