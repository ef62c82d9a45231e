//! The JSON API, for jobs and automation. Reads are open; writes need a
//! bearer token with `write` access. Routes are registered through utoipa-axum, so each one is in
//! the OpenAPI document by construction.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conditional;
use super::extract::{ApiJson, ApiQuery, ApiReadAccess, ApiWriter, IdempotencyKeyHeader};
use crate::changes::{self, KeyedCreate};
use crate::domain::{Actor, Cursor, Limit, PageKey, Todo, TodoId, TodoText};
use crate::error::{AppError, ErrorBody, Result};
use crate::state::AppState;
use crate::views::json_page::TodoPage;

#[derive(OpenApi)]
#[openapi(
    info(title = "Docket API", description = "Todos for jobs and automation."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "api_token",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_todos, create_todo))
        .routes(routes!(get_todo, update_todo, delete_todo))
}

/// The OpenAPI 3.1 document, built once from the routes above.
pub fn openapi() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        router()
            .into_openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi()).into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    limit: Option<String>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// List todos, newest first, one page at a time.
///
/// Each page carries an `ETag`; sent back in `If-None-Match`, it is
/// answered `304` (no body) while the page is unchanged. A change made
/// through the same replica shows at once; one made through another
/// replica as soon as this one hears of it (milliseconds), at worst after
/// `PAGE_CACHE_MAX_AGE` (1 s by default).
#[utoipa::path(
    get, path = "/api/todos", tag = "todos",
    params(ListQuery),
    responses(
        (status = 200, body = TodoPage<'static>, headers(("etag" = String))),
        (status = 304, description = "The page named in If-None-Match is unchanged"),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "With AUTH=oidc: no valid API token", body = ErrorBody),
    )
)]
async fn list_todos(
    State(state): State<AppState>,
    _: ApiReadAccess,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response> {
    let limit = Limit::parse(query.limit.as_deref())?;
    let cursor = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let page = PageKey { limit, cursor };
    let lookup = state.api_tags.lookup(page);
    if let Some(etag) = lookup.current
        && conditional::not_modified(&headers, &etag)
    {
        state.metrics.api_not_modified_from_memory.inc();
        return Ok((StatusCode::NOT_MODIFIED, validators(etag)).into_response());
    }
    let read = state.reads.page(page).await?;
    state.api_tags.keep(page, lookup.ticket, read.etag.clone());
    if conditional::not_modified(&headers, &read.etag) {
        state.metrics.api_not_modified_from_database.inc();
        return Ok((StatusCode::NOT_MODIFIED, validators(read.etag.clone())).into_response());
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((
        content_type,
        validators(read.etag.clone()),
        read.body.clone(),
    )
        .into_response())
}

/// A list page's validators: clients may keep the page but must ask again
/// before using it.
fn validators(etag: HeaderValue) -> [(HeaderName, HeaderValue); 2] {
    [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

/// Get one todo.
#[utoipa::path(
    get, path = "/api/todos/{id}", tag = "todos",
    params(("id" = String, Path, description = "Todo id (UUID)")),
    responses((status = 200, body = Todo), (status = 404, body = ErrorBody))
)]
async fn get_todo(
    State(state): State<AppState>,
    _: ApiReadAccess,
    Path(id): Path<String>,
) -> Result<Json<Todo>> {
    let id = TodoId::parse(&id).ok_or(AppError::TodoNotFound)?;
    Ok(Json(state.reads.todo(id).await?))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTodo {
    /// 1 to 140 characters after trimming.
    text: String,
}

/// Create a todo.
///
/// With an `Idempotency-Key`, a retry with the same key and body within
/// 24 hours answers as the first request did (status, body, `Location`,
/// and `Idempotent-Replayed: true`) and creates nothing; keys are per API
/// token.
#[utoipa::path(
    post, path = "/api/todos", tag = "todos",
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "1 to 255 visible ASCII characters; a retry with the same key and body within 24 hours gets the first answer and creates nothing"),
    ),
    request_body = CreateTodo,
    security(("api_token" = [])),
    responses(
        (status = 201, body = Todo, headers(
            ("location" = String),
            ("idempotent-replayed" = String, description = "`true` when this is the first answer to an earlier request with the same Idempotency-Key"),
        )),
        (status = 400, description = "Malformed body, or an Idempotency-Key that is empty, too long, not visible ASCII or sent twice", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 422, description = "Text empty or over 140 characters, or an Idempotency-Key already used with a different body", body = ErrorBody),
        (status = 503, description = "No API tokens configured", body = ErrorBody),
    )
)]
async fn create_todo(
    State(state): State<AppState>,
    ApiWriter(token): ApiWriter,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<CreateTodo>,
) -> Result<Response> {
    let text = TodoText::parse(&body.text)?;
    let Some(key) = key else {
        let todo = changes::create(&state.writer, &text, Actor::Token(token)).await?;
        return Ok((StatusCode::CREATED, [location(todo.id)], Json(todo)).into_response());
    };
    let keyed = KeyedCreate {
        token,
        key,
        request_hash: request_hash(&body)?,
    };
    let answer =
        changes::create_once(&state.pool, &state.metrics, &state.generation, &text, keyed).await?;
    let status = StatusCode::from_u16(answer.status).map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("a stored answer's status"))
    })?;
    let mut response = (
        status,
        [
            location(answer.todo_id),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        answer.body,
    )
        .into_response();
    if answer.replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

fn location(id: TodoId) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("/api/todos/{id}"))
        .expect("a UUID path is a valid header value");
    (header::LOCATION, value)
}

/// What tells a retry from another request under the same key: the body
/// as parsed (so spacing and key order do not count), hashed.
fn request_hash(body: &CreateTodo) -> Result<[u8; 32]> {
    let canonical = serde_json::to_vec(body)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("serializing a request")))?;
    Ok(Sha256::digest(canonical).into())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTodo {
    done: Option<bool>,
    /// 1 to 140 characters after trimming.
    text: Option<String>,
}

/// Change a todo's `done` and/or `text`.
#[utoipa::path(
    put, path = "/api/todos/{id}", tag = "todos",
    params(("id" = String, Path, description = "Todo id (UUID)")),
    request_body = UpdateTodo,
    security(("api_token" = [])),
    responses(
        (status = 200, body = Todo),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
async fn update_todo(
    State(state): State<AppState>,
    ApiWriter(token): ApiWriter,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateTodo>,
) -> Result<Json<Todo>> {
    let text = body.text.as_deref().map(TodoText::parse).transpose()?;
    if body.done.is_none() && text.is_none() {
        return Err(AppError::Unprocessable(
            "give `done`, `text`, or both".into(),
        ));
    }
    let id = TodoId::parse(&id).ok_or(AppError::TodoNotFound)?;
    Ok(Json(
        changes::update(
            &state.writer,
            id,
            body.done,
            text.as_ref(),
            Actor::Token(token),
        )
        .await?,
    ))
}

/// Delete a todo.
#[utoipa::path(
    delete, path = "/api/todos/{id}", tag = "todos",
    params(("id" = String, Path, description = "Todo id (UUID)")),
    security(("api_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The token may only read", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
async fn delete_todo(
    State(state): State<AppState>,
    ApiWriter(token): ApiWriter,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = TodoId::parse(&id).ok_or(AppError::TodoNotFound)?;
    changes::delete(&state.writer, id, Actor::Token(token)).await?;
    Ok(StatusCode::NO_CONTENT)
}
