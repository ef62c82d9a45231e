//! Query strings of `GET /api/todos` (`limit`, `cursor`) and of the page's
//! lists (`show_open`, `show_done`): the parsers `Limit::parse`,
//! `Cursor::parse` and `Shown::parse` directly, then any query string
//! through the app's real router, to the API and to the lists fragment.
//! Valid parameters reach the store (503 here); anything else is a 400 that
//! says why.
#![no_main]

use app::domain::{Cursor, Limit, Shown};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use docket_fuzz::{check, percent_encode, send};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(query) {
        match Limit::parse(Some(raw)) {
            Ok(limit) => assert!((1..=Limit::MAX).contains(&limit.get())),
            // The message quotes at most 40 characters of the input.
            Err(error) => assert!(error.to_string().chars().count() < 120 + 40),
        }
        match Shown::parse(Some(raw), Some(raw)) {
            Ok(shown) => assert!((1..=Shown::MAX).contains(&shown.open())),
            Err(error) => assert!(error.to_string().chars().count() < 120 + 40),
        }
        if let Ok(cursor) = Cursor::parse(raw) {
            assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
        }
    }

    // As a client would send it: bytes outside the URI grammar are encoded,
    // the query's own syntax (`&`, `=`, `%`, `+`) is kept.
    let query = percent_encode(query, b"&=%+");
    for path in ["/api/todos", "/fragments/todo-lists"] {
        let uri = format!("{path}?{query}");
        let Ok(request) = Request::builder().uri(&uri).body(Body::empty()) else {
            return;
        };
        let answer = send(request);
        check(&answer, &uri);
        assert!(
            answer.status == StatusCode::BAD_REQUEST
                || answer.status == StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {answer:?}"
        );
    }
});
