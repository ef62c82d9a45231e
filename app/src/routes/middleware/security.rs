//! Browser-facing protections: response headers and cross-site form posts.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;
use crate::routes::extract::PageError;

type Headers = Stack<
    SetResponseHeaderLayer<HeaderValue>,
    Stack<
        SetResponseHeaderLayer<HeaderValue>,
        Stack<
            SetResponseHeaderLayer<HeaderValue>,
            Stack<SetResponseHeaderLayer<HeaderValue>, Identity>,
        >,
    >,
>;

/// Everything is served from this origin, nothing may frame the app, and
/// browsers must not guess content types or leak URLs to other sites.
pub fn headers() -> ServiceBuilder<Headers> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    ServiceBuilder::new()
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
}

/// Rejects state-changing browser requests sent from another site.
///
/// Modern browsers say where a request comes from in `Sec-Fetch-Site`;
/// older ones send `Origin` on cross-origin posts. A request with neither
/// is not from a browser form on another site (curl, scripts), so it passes.
pub async fn reject_cross_site(request: Request, next: Next) -> Response {
    if is_safe(request.method()) || is_same_site(&request) {
        next.run(request).await
    } else {
        tracing::warn!("rejected a cross-site form submission");
        PageError(AppError::CrossSiteRequest).into_response()
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_same_site(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, origin_host)| origin_host.as_bytes() == host.as_bytes()),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::POST).uri("/todos");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn same_origin_and_non_browser_requests_pass() {
        assert!(is_same_site(&post(&[("sec-fetch-site", "same-origin")])));
        assert!(is_same_site(&post(&[])));
        assert!(is_same_site(&post(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
    }

    #[test]
    fn cross_site_requests_are_refused() {
        assert!(!is_same_site(&post(&[("sec-fetch-site", "cross-site")])));
        assert!(!is_same_site(&post(&[("sec-fetch-site", "same-site")])));
        assert!(!is_same_site(&post(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!is_same_site(&post(&[("origin", "null"), ("host", "a")])));
    }
}
