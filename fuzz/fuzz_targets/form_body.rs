//! Form bodies of the browser routes (`POST /todos`, `PUT /todos/{id}`,
//! `POST /todos/{id}` with `_method`) through the app's real router and its
//! `PageForm` extractor: never a 5xx but the database's 503, every refusal a
//! 4xx page that says why.
#![no_main]

use axum::body::Body;
use axum::http::Request;
use docket_fuzz::{check, send, todo_id};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Route {
    Create,
    Update,
    Override,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    route: Route,
    htmx: bool,
    /// `None`: a well-formed UUID; otherwise any path segment.
    id: Option<&'a [u8]>,
    /// `None`: `application/x-www-form-urlencoded`.
    content_type: Option<&'a str>,
    /// `Sec-Fetch-Site`, as a browser would send it.
    fetch_site: Option<&'a str>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let id = todo_id(input.id);
    let (method, uri) = match input.route {
        Route::Create => ("POST", "/todos".to_owned()),
        Route::Update => ("PUT", format!("/todos/{id}")),
        Route::Override => ("POST", format!("/todos/{id}")),
    };
    let mut request = Request::builder().method(method).uri(&uri).header(
        "content-type",
        input
            .content_type
            .unwrap_or("application/x-www-form-urlencoded"),
    );
    if input.htmx {
        request = request.header("hx-request", "true");
    }
    if let Some(site) = input.fetch_site {
        request = request.header("sec-fetch-site", site);
    }
    // A header value no client could send (control characters) is not input.
    let Ok(request) = request.body(Body::from(input.body.to_vec())) else {
        return;
    };
    let answer = send(request);
    check(&answer, &format!("{method} {uri}"));
});
