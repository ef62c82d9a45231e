//! With `AUTH=oidc`, every page write needs a session and the session's
//! CSRF token ([`crate::auth::CsrfTokens`]) in the form's `csrf` field.
//! Without a session the browser is sent to sign in (htmx: `HX-Redirect`);
//! with a wrong or missing token the write is refused (403).

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::CSRF_FIELD;
use crate::error::AppError;
use crate::routes::BODY_LIMIT;
use crate::routes::extract::PageError;
use crate::state::AppState;

/// Where a visitor who must sign in is sent.
pub const LOGIN_PATH: &str = "/auth/login";

pub async fn require_sign_in(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(oidc) = state.oidc.as_ref() else {
        return next.run(request).await;
    };
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Some(session) = oidc.cookies.session_of(&mut request, SystemTime::now()) else {
        return to_sign_in(request.headers().contains_key("hx-request"));
    };
    // The token is in the form body: read it (bounded as every body is),
    // then hand the same bytes on to the handler.
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return PageError(AppError::PayloadTooLarge).into_response();
    };
    let presented = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    if !presented.is_some_and(|token| oidc.csrf.is_valid(&session, &token)) {
        return PageError(AppError::CsrfToken).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 303 to the sign-in; htmx follows `HX-Redirect` instead (it would swap
/// a redirect's target into the page).
pub fn to_sign_in(htmx: bool) -> Response {
    if htmx {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static(LOGIN_PATH));
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("HX-Request"));
        response
    } else {
        Redirect::to(LOGIN_PATH).into_response()
    }
}
