//! Extractors that turn raw requests into what handlers need, answering
//! bad input with the app's own error messages rather than axum's defaults.

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api_tokens::CurrentTokens;
use crate::domain::{Access, IdempotencyKey, TokenName};
use crate::error::AppError;
use crate::state::AppState;
use crate::views;

/// Whether htmx sent the request (`HX-Request: true`): answer with a fragment.
#[derive(Debug, Clone, Copy)]
pub struct Htmx(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Htmx(
            parts
                .headers
                .get("hx-request")
                .is_some_and(|v| v.as_bytes() == b"true"),
        ))
    }
}

/// An [`AppError`] shown as an HTML page, for browser routes.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let mut response =
            (status, views::error_page(status, &self.0.public_message())).into_response();
        self.0.add_headers(response.headers_mut());
        response
    }
}

/// A URL-encoded form body; a malformed one is a 400 page.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct PageForm<T>(pub T);

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            _ => AppError::BadRequest(rejection.body_text()),
        }
    }
}

/// A JSON body; a malformed one is a JSON 400/422 naming the problem.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => AppError::Unprocessable(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            other => AppError::BadRequest(other.body_text()),
        }
    }
}

/// A page's query parameters; malformed ones are a 400 page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(PageError))]
pub struct PageQuery<T>(pub T);

/// Query parameters; malformed ones are a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// The request's `Idempotency-Key`, if it sends one; a malformed key, or
/// more than one, is a 400.
#[derive(Debug)]
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(AppError::BadRequest(
                "Send one Idempotency-Key header, not several.".into(),
            ));
        }
        Ok(Self(Some(IdempotencyKey::parse(value.as_bytes())?)))
    }
}

/// The header's name, as the IETF draft spells it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Proof that the request carries an API token with `write` access:
/// required by JSON API writes. Holds the token's name (who writes).
#[derive(Debug)]
pub struct ApiWriter(pub TokenName);

/// Proof that the request carries an API token, `read` or `write`. Holds
/// the token's name.
#[derive(Debug)]
pub struct ApiReader(
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "reads only need the proof; the name is for recording who read"
        )
    )]
    pub TokenName,
);

/// Proof that a JSON API read may go ahead: always with `AUTH=off`; with
/// `AUTH=oidc`, when the pages need a sign-in, only with an API token
/// ([`ApiReader`]).
#[derive(Debug)]
pub struct ApiReadAccess;

impl FromRequestParts<AppState> for ApiReadAccess {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if state.oidc.is_none() {
            return Ok(ApiReadAccess);
        }
        ApiReader::from_request_parts(parts, state).await?;
        Ok(ApiReadAccess)
    }
}

impl FromRequestParts<AppState> for ApiWriter {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        authorize(state.api_tokens.as_ref(), &parts.headers, Access::Write).map(ApiWriter)
    }
}

impl FromRequestParts<AppState> for ApiReader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        authorize(state.api_tokens.as_ref(), &parts.headers, Access::Read).map(ApiReader)
    }
}

/// The name of the bearer token in `headers` if it is one of `tokens` and
/// allows `needed`: a missing or unknown token is 401, a read-only token
/// where `write` is needed is 403.
fn authorize(
    tokens: Option<&CurrentTokens>,
    headers: &HeaderMap,
    needed: Access,
) -> Result<TokenName, AppError> {
    let tokens = tokens.ok_or(AppError::NoApiTokens(needed))?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized)?;
    // Constant-time against every token, so response timing reveals
    // neither how much of a guess was right nor which token matched.
    let (name, access) = tokens
        .find(presented.trim())
        .ok_or(AppError::Unauthorized)?;
    if access.allows(needed) {
        Ok(name)
    } else {
        Err(AppError::ReadOnlyToken)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::http::HeaderValue;

    use super::*;
    use crate::domain::ApiTokens;

    const WRITER: &str = "writer-0123456789abcdef0123456789abcdef";
    const READER: &str = "reader-0123456789abcdef0123456789abcdef";

    fn tokens() -> CurrentTokens {
        let text = format!("deploy write {WRITER}\nreport read {READER}\n");
        CurrentTokens::fixed(ApiTokens::parse(Path::new("tokens"), &text).unwrap())
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn check(headers: &HeaderMap, needed: Access) -> Result<String, StatusCode> {
        authorize(Some(&tokens()), headers, needed)
            .map(|name| name.as_str().to_owned())
            .map_err(|e| e.status())
    }

    #[test]
    fn a_reader_takes_read_and_write_tokens_and_names_them() {
        let read = Access::Read;
        assert_eq!(
            check(&bearer(&format!("Bearer {READER}")), read),
            Ok("report".into())
        );
        assert_eq!(
            check(&bearer(&format!("Bearer {WRITER}")), read),
            Ok("deploy".into())
        );
    }

    #[test]
    fn a_writer_takes_write_tokens_and_refuses_read_ones_with_403() {
        let write = Access::Write;
        assert_eq!(
            check(&bearer(&format!("Bearer {WRITER}")), write),
            Ok("deploy".into())
        );
        assert_eq!(
            check(&bearer(&format!("Bearer {READER}")), write),
            Err(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn missing_malformed_or_unknown_tokens_are_401_whatever_the_access() {
        for needed in [Access::Read, Access::Write] {
            for headers in [
                HeaderMap::new(),
                bearer(WRITER),
                bearer(&format!("Basic {WRITER}")),
                bearer(&format!("Bearer {}", &WRITER[1..])),
                bearer("Bearer "),
            ] {
                assert_eq!(
                    check(&headers, needed),
                    Err(StatusCode::UNAUTHORIZED),
                    "{headers:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn api_reader_extracts_the_name_of_a_read_or_write_token() {
        use axum::body::{Body, to_bytes};
        use axum::http::Request;
        use tower::ServiceExt;

        let nowhere = sqlx::PgPool::connect_lazy("postgres://nowhere.invalid/db").unwrap();
        let state = AppState::new(nowhere, None).with_api_tokens(Some(tokens()));
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|ApiReader(name): ApiReader| async move { name.to_string() }),
            )
            .with_state(state);
        let request = |authorization: Option<&str>| {
            let mut request = Request::get("/");
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            request.body(Body::empty()).unwrap()
        };

        for (token, name) in [(READER, "report"), (WRITER, "deploy")] {
            let bearer = format!("Bearer {token}");
            let response = app.clone().oneshot(request(Some(&bearer))).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = to_bytes(response.into_body(), 1024).await.unwrap();
            assert_eq!(body, name);
        }
        let response = app.oneshot(request(None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn without_tokens_the_api_is_unavailable() {
        let headers = bearer(&format!("Bearer {WRITER}"));
        let error = authorize(None, &headers, Access::Write).unwrap_err();
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
