//! Signing in and out (`AUTH=oidc` only): `GET /auth/login` sends the
//! browser to the provider, `GET /auth/callback` is where it comes back
//! with a code, `POST /auth/logout` ends the session.

use std::time::SystemTime;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{PageError, PageForm};
use super::middleware::{security, sign_in};
use super::signed_in::Visitor;
use crate::auth::{CALLBACK_PATH, Jar, Oidc, PendingSignIn, SIGN_IN_TIMEOUT, Session, SignInError};
use crate::error::AppError;
use crate::state::AppState;

/// The routes, when sign-in is on; nothing is mounted with `AUTH=off`.
pub fn router(state: &AppState) -> Router<AppState> {
    if state.oidc.is_none() {
        return Router::new();
    }
    Router::new()
        .route(sign_in::LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .route(
            "/auth/logout",
            post(logout).route_layer(axum::middleware::from_fn(security::reject_cross_site)),
        )
}

fn oidc(state: &AppState) -> Result<&Oidc, PageError> {
    state
        .oidc
        .as_deref()
        .ok_or(PageError(AppError::PageNotFound))
}

/// To the provider, with PKCE, `state` and `nonce` kept in the sign-in
/// cookie for the way back.
async fn login(State(state): State<AppState>) -> Result<Response, PageError> {
    let oidc = oidc(&state)?;
    let (url, pending) = oidc.provider.begin(SystemTime::now())?;
    let cookie = oidc.cookies.seal(Jar::SignIn, &pending, SIGN_IN_TIMEOUT);
    Ok((
        [
            (header::SET_COOKIE, cookie),
            (
                header::CACHE_CONTROL,
                "no-store".parse().expect("a header value"),
            ),
        ],
        Redirect::to(url.as_str()),
    )
        .into_response())
}

/// What the provider sends back: `code` and `state`, or `error`.
#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Result<Response, PageError> {
    let oidc = oidc(&state)?;
    let now = SystemTime::now();
    // Whatever happens, this sign-in is over: its cookie goes.
    let clear = [(header::SET_COOKIE, oidc.cookies.clear(Jar::SignIn))];
    let result = finish(oidc, &headers, callback, now).await;
    let session = match result {
        Ok(session) => session,
        Err(e) => return Ok((clear, PageError::from(e)).into_response()),
    };
    tracing::info!(user.subject = %session.person.subject(), "signed in");
    let lifetime = oidc.settings.session_lifetime;
    let mut response = (clear, Redirect::to("/")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        oidc.cookies.seal(Jar::Session, &session, lifetime),
    );
    Ok(response)
}

async fn finish(
    oidc: &Oidc,
    headers: &HeaderMap,
    callback: Callback,
    now: SystemTime,
) -> Result<Session, SignInError> {
    if let Some(error) = callback.error {
        // The provider's own code (`access_denied`, …), shown escaped.
        return Err(SignInError::Provider(error.chars().take(64).collect()));
    }
    let pending: PendingSignIn = oidc
        .cookies
        .open(Jar::SignIn, headers)
        .ok_or(SignInError::StaleOrForeign)?;
    let (Some(code), Some(returned_state)) = (callback.code, callback.state) else {
        return Err(SignInError::StaleOrForeign);
    };
    if !pending.matches(&returned_state, now) {
        return Err(SignInError::StaleOrForeign);
    }
    let person = oidc.provider.finish(pending, code).await?;
    Ok(Session::new(person, now, oidc.settings.session_lifetime))
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Drops the session cookie. A current session's form must carry its CSRF
/// token, like any write, so a cross-site page cannot sign people out; a
/// session that is already over (the button on a page left open past the
/// lifetime) is simply cleared, not sent to sign in first.
async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    PageForm(form): PageForm<LogoutForm>,
) -> Result<Response, PageError> {
    let oidc = oidc(&state)?;
    if let Visitor::SignedIn(signed_in) = &visitor
        && !signed_in.has_csrf(&form.csrf)
    {
        return Err(AppError::CsrfToken.into());
    }
    Ok((
        [(header::SET_COOKIE, oidc.cookies.clear(Jar::Session))],
        Redirect::to("/"),
    )
        .into_response())
}
