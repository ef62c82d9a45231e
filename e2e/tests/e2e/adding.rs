//! Story 2: I add a todo by typing and pressing Enter; it appears at the top
//! of the open list and the input is empty again.

use anyhow::ensure;
use e2e::{Needs, run, test_name};

#[tokio::test]
async fn i_add_a_todo_with_enter_and_it_appears_on_top_of_the_open_list() {
    run(test_name!(), Needs::Browser, |t| async move {
        // Arrange: a todo already on the list, to be above of.
        let (earlier, page) = t.open_with_todo("Earlier todo").await?;
        let open = page.open_list();

        let text = t.unique("Buy oat milk");
        page.add(&text).await?;

        let mine = page.todo_in(&open, &text);
        t.expect(mine.get_by_test_id("todo-text"))
            .to_have_text(&text)
            .await?;
        t.expect(page.new_todo_input()).to_have_value("").await?;
        // On top: above what was there before. On a shared environment
        // others' todos may arrive meanwhile, so only a private run can
        // also insist on the very first place.
        let id = page.todo_id(&open, &text).await?;
        t.expect(open.locator(format!(
            "li[data-todo-id=\"{id}\"] ~ li[data-todo-id=\"{}\"]",
            earlier.id
        )))
        .to_be_visible()
        .await?;
        if t.owns_the_app() {
            t.expect(page.todos_in(&open).first())
                .to_have_attribute("data-todo-id", &id)
                .await?;
        }

        // And it was saved, as an open todo.
        let saved = t.api().todos_containing(&text).await?;
        ensure!(
            saved.len() == 1 && saved[0].id == id && !saved[0].done,
            "expected one open todo {id} in the API, found {saved:?}"
        );
        Ok(())
    })
    .await;
}
