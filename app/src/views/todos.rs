//! The todo page and its fragments.

use maud::{Markup, html};

use super::layout;
use crate::domain::{Todo, TodoText};

/// What the add form shows: the text as typed and, after a rejection, why.
#[derive(Default)]
pub struct FormState<'a> {
    pub text: &'a str,
    pub error: Option<String>,
}

/// Where the page re-fetches its lists from (see `routes::live`).
pub const LISTS_PATH: &str = "/fragments/todo-lists";

/// The whole page.
///
/// The wrapper around the lists holds the page's one event stream
/// (`/events`): on a `todo` or `refresh` event it re-fetches the lists and
/// swaps them whole, so an item this page just added is never shown twice.
/// It lives as long as the page (the lists inside are swapped, it is not),
/// so its listener is registered once. A burst of events costs at most one
/// request in flight and one queued (`hx-sync`); `hx-disinherit` keeps that
/// queue and the swap settings off the buttons inside.
pub fn index(todos: &[Todo], form: &FormState<'_>) -> Markup {
    layout::page(
        "Docket",
        html! {
            (new_todo_form(form))
            div #live hx-ext="sse" sse-connect="/events"
                hx-get=(LISTS_PATH) hx-trigger="sse:todo, sse:refresh"
                hx-target="#todo-lists" hx-swap="outerHTML"
                hx-sync="this:queue last" hx-disinherit="*" {
                (lists(todos, None))
            }
        },
    )
}

/// The add form. htmx replaces it with the answer to its own post: cleared
/// after a success, with the text and the error after a rejection.
pub fn new_todo_form(form: &FormState<'_>) -> Markup {
    html! {
        form #new-todo .new-todo action="/todos" method="post"
            hx-post="/todos" hx-target="this" hx-swap="outerHTML" {
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

/// Both lists and the counts: the fragment every change re-renders.
pub fn lists(todos: &[Todo], notice: Option<&str>) -> Markup {
    let (done, open): (Vec<&Todo>, Vec<&Todo>) = todos.iter().partition(|t| t.done);
    html! {
        section #todo-lists aria-live="polite" {
            @if let Some(notice) = notice {
                p .notice role="status" data-test="notice" { (notice) }
            }
            p .counts data-test="counts" {
                span data-test="open-count" { (open.len()) } " open, "
                span data-test="done-count" { (done.len()) } " done"
            }
            h2 #open-heading { "To do" }
            ul .todos #open-todos aria-labelledby="open-heading" data-test="open-list" {
                @for todo in &open { (item(todo)) }
                @if open.is_empty() {
                    li .empty data-test="empty-open" { "Nothing to do. Add a todo above." }
                }
            }
            h2 #done-heading { "Done" }
            ul .todos #done-todos aria-labelledby="done-heading" data-test="done-list" {
                @for todo in &done { (item(todo)) }
                @if done.is_empty() {
                    li .empty data-test="empty-done" { "Nothing done yet." }
                }
            }
        }
    }
}

/// The `lists` fragment marked for an out-of-band swap, sent beside the form.
pub fn lists_out_of_band(todos: &[Todo]) -> Markup {
    html! {
        div hx-swap-oob="outerHTML:#todo-lists" { (lists(todos, None)) }
    }
}

/// One todo with its two buttons. Each button is a real form (works without
/// JavaScript, via `_method`); htmx sends the same form as PUT or DELETE.
pub fn item(todo: &Todo) -> Markup {
    let action = format!("/todos/{}", todo.id);
    let (toggle_label, toggle_to) = if todo.done {
        ("Not done", "false")
    } else {
        ("Done", "true")
    };
    html! {
        li .done[todo.done] data-todo-id=(todo.id) {
            span .text data-test="todo-text" { (todo.text) }
            form action=(action) method="post"
                hx-put=(action) hx-target="#todo-lists" hx-swap="outerHTML" {
                input type="hidden" name="_method" value="put";
                input type="hidden" name="done" value=(toggle_to);
                button type="submit" aria-label={ "Mark “" (todo.text) "” " (if todo.done { "not done" } else { "done" }) } {
                    (toggle_label)
                }
            }
            form action=(action) method="post"
                hx-delete=(action) hx-target="#todo-lists" hx-swap="outerHTML" {
                input type="hidden" name="_method" value="delete";
                button .danger type="submit" aria-label={ "Delete “" (todo.text) "”" } { "Delete" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::TodoId;

    fn todo(text: &str, done: bool) -> Todo {
        Todo {
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
        let html = lists(&[], None).into_string();
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
