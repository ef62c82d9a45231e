//! The todo page and its fragments.

use maud::{Markup, Render, html};
use uuid::Uuid;

use super::layout::{self, Account};
use crate::domain::{Shown, Todo, TodoId, TodoLists, TodoText};

/// What the add form shows: the text as typed and, after a rejection, why.
#[derive(Default)]
pub struct FormState<'a> {
    pub text: &'a str,
    pub error: Option<String>,
}

/// What the visitor may do with the lists.
#[derive(Debug, Clone, Copy, Default)]
pub enum Controls<'a> {
    /// Sign-in is off: the form and the buttons.
    #[default]
    Open,
    /// Signed in: the form and the buttons, each form carrying the
    /// session's CSRF token (htmx sends a form's inputs with it).
    SignedIn { csrf: &'a str },
    /// Reading without signing in (`ANONYMOUS_READ`): no form, no buttons.
    ReadOnly,
}

impl Controls<'_> {
    fn csrf(&self) -> Option<&str> {
        match self {
            Controls::SignedIn { csrf } => Some(csrf),
            Controls::Open | Controls::ReadOnly => None,
        }
    }
}

/// Where the page re-fetches its lists from (see `routes::live`).
pub const LISTS_PATH: &str = "/fragments/todo-lists";

/// How the lists are swapped: in place (see [`index`]).
const MORPH: &str = "morph:outerHTML";

/// Sent with every htmx answer to a change, and listened for by the page:
/// the lists are re-fetched (the answers carry none) even where the event
/// stream cannot reach the browser.
pub const CHANGED_TRIGGER: &str = "todos-changed";

/// The whole page.
///
/// The wrapper around the lists holds the page's one event stream
/// (`/events`): on a `todo` or `refresh` event, or after this page changed a
/// todo ([`CHANGED_TRIGGER`]), it re-fetches the lists and swaps them whole,
/// so an item this page just added is never shown twice. The re-fetch asks
/// for as many of each list as the page shows ([`SHOWN_INPUTS`], beside the
/// lists: the page's state, which no answer replaces), so a list the visitor
/// lengthened stays so ([`more`]). The wrapper
/// lives as long as the page (the lists inside are swapped, it is not), so
/// its listener is registered once. A burst of events costs at most one request in flight
/// and one queued (`hx-sync`); `hx-disinherit` keeps that queue and the swap
/// settings off the buttons inside.
///
/// Every swap of the lists is a morph (idiomorph): items keep their elements
/// (matched by id), so a refresh that lands between a button's press and its
/// release does not replace the button, and the click is not lost.
///
/// With `picture`, the page opens with the hourly picture ([`picture`]).
pub fn index(lists: &TodoLists, form: &FormState<'_>, picture: bool) -> Markup {
    index_for(lists, form, picture, Controls::Open, Account::None)
}

/// [`index`] for a visitor with `controls`, and `account` in the header.
pub fn index_for(
    lists: &TodoLists,
    form: &FormState<'_>,
    picture: bool,
    controls: Controls<'_>,
    account: Account<'_>,
) -> Markup {
    layout::page_for(
        "Docket",
        account,
        html! {
            @if picture { (self::picture()) }
            @if !matches!(controls, Controls::ReadOnly) { (new_todo_form_with(form, controls)) }
            div #live hx-ext="sse, morph" sse-connect="/events"
                hx-get=(LISTS_PATH) hx-trigger={ "sse:todo, sse:refresh, " (CHANGED_TRIGGER) " from:body, " (LENGTHENED_TRIGGER) }
                hx-include=(SHOWN_INPUTS) hx-target="#todo-lists" hx-swap=(MORPH)
                hx-sync="this:queue last" hx-disinherit="*" {
                input .shown type="hidden" name=(SHOW_OPEN) value=(lists.shown.open());
                input .shown type="hidden" name=(SHOW_DONE) value=(lists.shown.done());
                (self::lists_with(lists, None, controls))
            }
        },
    )
}

/// Where the picture is served (see `routes::picture`).
pub const PICTURE_PATH: &str = "/picture";

/// The hourly picture: a link, not bytes, so the page stays small and its
/// rendering never waits on it. The width and height give the box its
/// shape before the image arrives (the stylesheet scales it and crops any
/// other shape into it), so nothing below it moves when it does.
fn picture() -> Markup {
    html! {
        figure .picture data-test="picture" {
            img src=(PICTURE_PATH) width="1200" height="600" decoding="async"
                alt="A random photograph, changed every hour";
        }
    }
}

/// The add form. htmx replaces it with the answer to its own post: cleared
/// after a success, with the text and the error after a rejection.
pub fn new_todo_form(form: &FormState<'_>) -> Markup {
    new_todo_form_with(form, Controls::Open)
}

/// [`new_todo_form`] with the CSRF token `controls` carries.
pub fn new_todo_form_with(form: &FormState<'_>, controls: Controls<'_>) -> Markup {
    html! {
        form #new-todo .new-todo action="/todos" method="post"
            hx-post="/todos" hx-target="this" hx-swap="outerHTML" {
            @if let Some(csrf) = controls.csrf() { input type="hidden" name="csrf" value=(csrf); }
            label for="todo-text" { "New todo" }
            @if form.error.is_some() {
                input #todo-text type="text" name="text" value=(form.text) autocomplete="off"
                    autofocus aria-invalid="true" aria-describedby="todo-text-error";
            } @else {
                input #todo-text type="text" name="text" value=(form.text) autocomplete="off"
                    autofocus aria-describedby="todo-text-hint";
            }
            button .primary type="submit" { "Add" }
            @if let Some(error) = &form.error {
                p #todo-text-error .error role="alert" data-test="todo-error" { (error) }
            } @else {
                p #todo-text-hint .hint { "Up to " (TodoText::MAX_CHARS) " characters." }
            }
        }
    }
}

/// The inputs that say how many of each list the page shows: outside the
/// lists section, so that no answer (a re-fetch sent before the visitor asked
/// for more, a button's) shortens what the visitor asked for.
const SHOWN_INPUTS: &str = "#live > input.shown";

/// The query parameters (and the inputs' names) of the lists' lengths.
const SHOW_OPEN: &str = "show_open";
const SHOW_DONE: &str = "show_done";

/// Raised on `#live` by the page's script after a "Show more" click
/// lengthened a list (see [`more`]).
const LENGTHENED_TRIGGER: &str = "lists-lengthened";

/// Both lists and the counts: the fragment the page re-fetches after a
/// change. The buttons inside swap it whole with their answer.
pub fn lists(lists: &TodoLists, notice: Option<&str>) -> Markup {
    lists_with(lists, notice, Controls::Open)
}

/// [`lists`] for a visitor with `controls`.
pub fn lists_with(lists: &TodoLists, notice: Option<&str>, controls: Controls<'_>) -> Markup {
    html! {
        section #todo-lists aria-live="polite" hx-target="#todo-lists" hx-swap=(MORPH) {
            @if let Some(notice) = notice {
                p .notice role="status" data-test="notice" { (notice) }
            }
            p .counts data-test="counts" {
                span data-test="open-count" { (lists.open_total) } " open, "
                span data-test="done-count" { (lists.done_total) } " done"
            }
            h2 #open-heading { "To do" }
            ul .todos #open-todos aria-labelledby="open-heading" data-test="open-list" {
                @for todo in &lists.open { (item_with(todo, controls)) }
                (more(lists.open_hidden(), lists.shown.more_open().map(|longer| (SHOW_OPEN, longer))))
                // Hidden by the stylesheet when an item precedes it.
                li .empty data-test="empty-open" { "Nothing to do. Add a todo above." }
            }
            h2 #done-heading { "Done" }
            ul .todos #done-todos aria-labelledby="done-heading" data-test="done-list" {
                @for todo in &lists.done { (item_with(todo, controls)) }
                (more(lists.done_hidden(), lists.shown.more_done().map(|longer| (SHOW_DONE, longer))))
                li .empty data-test="empty-done" { "Nothing done yet." }
            }
        }
    }
}

/// The line under a list that shows only its newest todos, with a link to
/// show more of them while the list may grow.
///
/// The link is handled by the page's script (`static/show-more.js`): it
/// raises the list's length in the page's [`SHOWN_INPUTS`], gives up the
/// re-fetch in flight and raises [`LENGTHENED_TRIGGER`], so the page's one
/// re-fetch asks for the longer lists, and so does every re-fetch queued
/// after it. (A request of the link's own would race the page's re-fetches:
/// one sent before the click, landing after, shortened the lists again, and
/// one queued behind it took the click's place.) Without JavaScript the link
/// opens the page showing the longer lists.
fn more(hidden: u64, longer: Option<(&'static str, Shown)>) -> Markup {
    html! {
        @if hidden > 0 {
            li .more data-test="more" {
                "and " (hidden) " older"
                @if let Some((lengthens, longer)) = longer {
                    " · "
                    a href={ "/" (query(longer)) } data-lengthens=(lengthens) data-test="show-more" {
                        "Show " (hidden.min(u64::from(Shown::STEP))) " more"
                    }
                }
            }
        }
    }
}

/// `shown` as the page's query.
fn query(shown: Shown) -> String {
    format!("?{SHOW_OPEN}={}&{SHOW_DONE}={}", shown.open(), shown.done())
}

/// One todo with its two buttons, in one real form (works without
/// JavaScript: the pressed button sends `_method`); htmx posts the same form
/// with the pressed button's value.
pub fn item(todo: &Todo) -> Markup {
    item_with(todo, Controls::Open)
}

/// [`item`] for a visitor with `controls`: read-only, the text alone.
pub fn item_with(todo: &Todo, controls: Controls<'_>) -> Markup {
    let (toggle_label, toggle_to) = if todo.done {
        ("Not done", "false")
    } else {
        ("Done", "true")
    };
    html! {
        li .done[todo.done] id={ "todo-" (todo.id) } data-todo-id=(todo.id) {
            span .text data-test="todo-text" { (todo.text) }
            @if !matches!(controls, Controls::ReadOnly) {
            form action={ "/todos/" (todo.id) } method="post" hx-post={ "/todos/" (todo.id) } {
                @if let Some(csrf) = controls.csrf() { input type="hidden" name="csrf" value=(csrf); }
                input type="hidden" name="done" value=(toggle_to);
                button name="_method" value="put" aria-label={ "Mark “" (todo.text) "” " (if todo.done { "not done" } else { "done" }) } {
                    (toggle_label)
                }
                button .danger name="_method" value="delete" aria-label={ "Delete “" (todo.text) "”" } { "Delete" }
            }
            }
        }
    }
}

/// An id goes into the page as is: a UUID's text needs no escaping, and it
/// is written straight into the page's buffer, without a `String` of its own.
impl Render for TodoId {
    fn render_to(&self, buffer: &mut String) {
        let mut text = Uuid::encode_buffer();
        buffer.push_str(self.as_uuid().hyphenated().encode_lower(&mut text));
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn todo(text: &str, done: bool) -> Todo {
        Todo {
            created_by: None,
            updated_by: None,
            id: TodoId::new(),
            text: text.into(),
            done,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn html_in_a_todo_is_escaped() {
        let html = item(&todo("<script>alert('x')</script>", false)).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn empty_lists_say_so() {
        let html = lists(&TodoLists::default(), None).into_string();
        assert!(html.contains("Nothing to do"), "{html}");
        assert!(html.contains("Nothing done yet"), "{html}");
    }

    #[test]
    fn items_carry_their_id_and_named_buttons() {
        let t = todo("Water plants", true);
        let html = item(&t).into_string();
        assert!(
            html.contains(&format!("data-todo-id=\"{}\"", t.id)),
            "{html}"
        );
        assert!(
            html.contains("aria-label=\"Mark “Water plants” not done\""),
            "{html}"
        );
        assert!(
            html.contains("aria-label=\"Delete “Water plants”\""),
            "{html}"
        );
    }

    #[test]
    fn signed_in_forms_carry_the_csrf_token_and_read_only_lists_have_no_forms() {
        let lists = TodoLists {
            open: vec![todo("Water plants", false)],
            open_total: 1,
            ..TodoLists::default()
        };
        let signed_in = Controls::SignedIn { csrf: "tok3n" };
        let form = new_todo_form_with(&FormState::default(), signed_in).into_string();
        assert!(form.contains(r#"name="csrf" value="tok3n""#), "{form}");
        let html = lists_with(&lists, None, signed_in).into_string();
        assert!(html.contains(r#"name="csrf" value="tok3n""#), "{html}");

        let open = lists_with(&lists, None, Controls::Open).into_string();
        assert!(open.contains("<form") && !open.contains("csrf"), "{open}");

        let read_only = index_for(
            &lists,
            &FormState::default(),
            false,
            Controls::ReadOnly,
            Account::SignInLink,
        )
        .into_string();
        assert!(read_only.contains("Water plants"), "{read_only}");
        assert!(!read_only.contains("<form"), "{read_only}");
        assert!(!read_only.contains("<button"), "{read_only}");
        assert!(read_only.contains(r#"href="/auth/login""#), "{read_only}");
    }

    #[test]
    fn a_rejected_form_keeps_the_text_and_shows_the_error() {
        let html = new_todo_form(&FormState {
            text: "too long",
            error: Some("A todo can be at most 140 characters long".into()),
        })
        .into_string();
        assert!(html.contains("value=\"too long\""), "{html}");
        assert!(html.contains("at most 140 characters"), "{html}");
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
    }
}
