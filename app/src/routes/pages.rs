//! The browser UI: the page, and the form posts behind its buttons.
//!
//! Every action is a plain form post that answers 303 (works without
//! JavaScript); with htmx the same handler answers the fragment to swap.
//! Browsers cannot send PUT or DELETE from a form, so without JavaScript
//! those arrive as `POST /todos/{id}` with `_method`.

use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;

use super::extract::{Htmx, PageError, PageForm, PageQuery};
use super::middleware::{security, sign_in};
use super::signed_in::Visitor;
use crate::changes;
use crate::domain::{Shown, Todo, TodoId, TodoText};
use crate::error::{AppError, Result};
use crate::page_cache::Lookup;
use crate::state::AppState;
use crate::views::layout;
use crate::views::todos::{self as view, Controls, FormState};

/// With `AUTH=oidc`, writes need a session and its CSRF token
/// ([`sign_in::require_sign_in`]), after the origin checks.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/todos", post(create))
        .route(
            "/todos/{id}",
            post(method_override).put(update).delete(delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sign_in::require_sign_in,
        ))
        .route_layer(axum::middleware::from_fn(security::reject_cross_site))
}

/// The page, from the page cache when it is known to be current for this
/// reader (see [`page_cache`]). With `AUTH=oidc` the page is the
/// visitor's own (their name, their token), rendered for them; a visitor
/// who has not signed in gets the sign-in page, or the lists read-only
/// with `ANONYMOUS_READ`.
async fn index(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    PageQuery(query): PageQuery<ShownQuery>,
) -> Result<Response, PageError> {
    let shown = query.parse()?;
    if !matches!(visitor, Visitor::Anyone) {
        let Some(controls) = visitor.controls() else {
            return Ok(html_page(Bytes::from(layout::sign_in_page().into_string())));
        };
        let page = view::index_for(
            &*state.reads.lists(shown).await?,
            &FormState::default(),
            state.picture.is_some(),
            controls,
            visitor.account(),
        );
        let mut response = html_page(Bytes::from(page.into_string()));
        // Personal: no shared cache may keep it.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return Ok(response);
    }
    if !shown.is_first() {
        // Longer lists than most pages show: neither cached nor kept rendered.
        let lists = state.reads.lists(shown).await?;
        let page = view::index(&lists, &FormState::default(), state.picture.is_some());
        return Ok(html_page(Bytes::from(page.into_string())));
    }
    let ticket = match state.page_cache.lookup(
        state
            .write_marker
            .wrote_recently(&headers, SystemTime::now()),
    ) {
        Lookup::Hit(page) => return Ok(html_page(page)),
        Lookup::Miss(ticket) => Some(ticket),
        Lookup::Bypass => None,
    };
    let page = state.rendered.page(&state.reads.lists(shown).await?);
    if let Some(ticket) = ticket {
        state.page_cache.store(ticket, page.clone());
    }
    Ok(html_page(page))
}

/// How many of each list a page or its lists section shows (see [`Shown`]).
#[derive(Deserialize)]
pub(super) struct ShownQuery {
    show_open: Option<String>,
    show_done: Option<String>,
}

impl ShownQuery {
    pub(super) fn parse(&self) -> Result<Shown> {
        Ok(Shown::parse(
            self.show_open.as_deref(),
            self.show_done.as_deref(),
        )?)
    }
}

fn html_page(page: Bytes) -> Response {
    vary_on_htmx(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page))
}

#[derive(Deserialize)]
struct NewTodoForm {
    #[serde(default)]
    text: String,
}

async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    Htmx(htmx): Htmx,
    PageForm(form): PageForm<NewTodoForm>,
) -> Result<Response, PageError> {
    let text = match TodoText::parse(&form.text) {
        Ok(text) => text,
        Err(rejection) => {
            let error = AppError::from(rejection);
            error.log();
            let form = FormState {
                text: &form.text,
                error: Some(error.public_message()),
            };
            let controls = visitor.controls().unwrap_or_default();
            let body = if htmx {
                view::new_todo_form_with(&form, controls)
            } else {
                view::index_for(
                    &*state.reads.lists(Shown::default()).await?,
                    &form,
                    state.picture.is_some(),
                    controls,
                    visitor.account(),
                )
            };
            return Ok(vary_on_htmx((error.status(), body)));
        }
    };
    changes::create(&state.writer, &text, visitor.actor()).await?;
    if !htmx {
        return Ok(wrote(&state, see_other()));
    }
    // The cleared form only. The page re-fetches its lists on the trigger
    // and swaps them whole; inserting the new item here as well would show
    // it twice whenever a re-fetch (on another change's event) overtook this
    // answer.
    Ok(wrote(
        &state,
        vary_on_htmx((
            changed_trigger(),
            view::new_todo_form_with(
                &FormState::default(),
                visitor.controls().unwrap_or_default(),
            ),
        )),
    ))
}

#[derive(Deserialize)]
struct DoneForm {
    #[serde(default)]
    done: String,
}

async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    PageForm(form): PageForm<DoneForm>,
) -> Result<Response, PageError> {
    let done = parse_done(&form.done)?;
    let actor = visitor.actor();
    let result = match TodoId::parse(&id) {
        Some(id) => changes::update(&state.writer, id, Some(done), None, actor).await,
        None => Err(AppError::TodoNotFound),
    };
    after_change(&state, &visitor, htmx, result).await
}

async fn delete(
    State(state): State<AppState>,
    visitor: Visitor,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let actor = visitor.actor();
    let result = match TodoId::parse(&id) {
        Some(id) => changes::delete(&state.writer, id, actor).await,
        None => Err(AppError::TodoNotFound),
    };
    after_change(&state, &visitor, htmx, result).await
}

#[derive(Deserialize)]
struct OverrideForm {
    #[serde(rename = "_method", default)]
    method: String,
    #[serde(default)]
    done: String,
}

/// `POST /todos/{id}` with `_method=put|delete`: the no-JavaScript path.
async fn method_override(
    state: State<AppState>,
    visitor: Visitor,
    htmx: Htmx,
    id: Path<String>,
    PageForm(form): PageForm<OverrideForm>,
) -> Result<Response, PageError> {
    match form.method.to_ascii_lowercase().as_str() {
        "put" => {
            update(
                state,
                visitor,
                htmx,
                id,
                PageForm(DoneForm { done: form.done }),
            )
            .await
        }
        "delete" => delete(state, visitor, htmx, id).await,
        _ => Err(AppError::BadRequest("_method must be `put` or `delete`".into()).into()),
    }
}

fn parse_done(raw: &str) -> Result<bool> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::BadRequest(
            "done must be `true` or `false`".into(),
        )),
    }
}

/// After a change: 303 to the page, or for htmx no content and the
/// trigger, on which the page re-fetches its lists, as after a create. The
/// answer carries no lists: rendering and sending both lists (up to 200
/// todos, over 100 KiB) with every press cost more than the change itself,
/// and the re-fetch of every open page after the change's event is shared
/// ([`crate::read_together`]). A todo that vanished (deleted in another tab)
/// refreshes the lists with a notice.
async fn after_change(
    state: &AppState,
    visitor: &Visitor,
    htmx: bool,
    result: Result<Todo>,
) -> Result<Response, PageError> {
    match result {
        Ok(_) if !htmx => Ok(wrote(state, see_other())),
        Ok(_) => Ok(wrote(
            state,
            vary_on_htmx((StatusCode::NO_CONTENT, changed_trigger())),
        )),
        Err(AppError::TodoNotFound) if htmx => {
            AppError::TodoNotFound.log();
            let notice = AppError::TodoNotFound.public_message();
            Ok(vary_on_htmx((
                StatusCode::NOT_FOUND,
                lists_section(
                    state,
                    Some(&notice),
                    visitor.controls().unwrap_or_default(),
                    Shown::default(),
                )
                .await?,
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The lists section as it is now, with an optional notice: what htmx swaps
/// in after a change and when the page re-fetches it after an event.
/// Only the first lists, open, without a notice are shared; the others
/// carry a visitor's token, lack the buttons or are longer, and are
/// rendered for them.
pub(super) async fn lists_section(
    state: &AppState,
    notice: Option<&str>,
    controls: Controls<'_>,
    shown: Shown,
) -> Result<Html<Bytes>> {
    let lists = state.reads.lists(shown).await?;
    Ok(Html(match (notice, controls) {
        (None, Controls::Open) if shown.is_first() => state.rendered.fragment(&lists),
        (notice, controls) => Bytes::from(view::lists_with(&lists, notice, controls).into_string()),
    }))
}

/// `HX-Trigger`: tells the page its lists changed (see [`view::CHANGED_TRIGGER`]).
fn changed_trigger() -> [(HeaderName, &'static str); 1] {
    [(HeaderName::from_static("hx-trigger"), view::CHANGED_TRIGGER)]
}

/// Marks the writer, so that its page loads read the database for a while
/// (the page cache's read-your-writes guarantee).
fn wrote(state: &AppState, mut response: Response) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        state.write_marker.cookie(SystemTime::now()),
    );
    response
}

fn see_other() -> Response {
    vary_on_htmx(Redirect::to("/"))
}

/// The same URL answers a page or a fragment depending on `HX-Request`, so
/// caches must key on it.
fn vary_on_htmx(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("HX-Request"));
    response
}
