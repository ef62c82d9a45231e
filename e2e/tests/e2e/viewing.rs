//! Story 1: I open the app and see the form and my lists; empty lists say so.

use e2e::{Needs, TodoPage, run, test_name};
use playwright_rs::{AriaRole, GetByRoleOptions};

#[tokio::test]
async fn i_open_the_app_and_see_the_form_and_my_lists() {
    run(test_name!(), Needs::Browser, |t| async move {
        let page = t.open().await?;

        t.expect(page.new_todo_input()).to_be_visible().await?;
        t.expect(page.add_button()).to_be_visible().await?;
        for heading in ["To do", "Done"] {
            let options = GetByRoleOptions::default().name(heading).exact(true);
            t.expect(page.page().get_by_role(AriaRole::Heading, Some(options)))
                .to_be_visible()
                .await?;
        }
        t.expect(page.open_list()).to_be_visible().await?;
        t.expect(page.done_list()).to_be_visible().await?;

        if t.owns_the_app() {
            // A fresh database: both lists are empty and say so.
            t.expect(page.empty_open())
                .to_have_text("Nothing to do. Add a todo above.")
                .await?;
            t.expect(page.empty_done())
                .to_have_text("Nothing done yet.")
                .await?;
            t.expect(page.open_count()).to_have_text("0").await?;
            t.expect(page.done_count()).to_have_text("0").await?;

            // The first todo replaces the open list's empty state.
            let text = t.unique("First todo");
            page.add(&text).await?;
            t.expect(page.todo_in(&page.open_list(), &text))
                .to_be_visible()
                .await?;
            t.expect(page.empty_open()).to_be_hidden().await?;
            t.expect(page.open_count()).to_have_text("1").await?;
            t.expect(page.empty_done()).to_be_visible().await?;
        } else {
            // A shared environment may hold anything: an empty state shows
            // exactly when its list has no todos.
            empty_state_matches_list(&page, Which::Open).await?;
            empty_state_matches_list(&page, Which::Done).await?;
        }
        Ok(())
    })
    .await;
}

enum Which {
    Open,
    Done,
}

/// Todos arrive live from other writers, so the list is read once, in the
/// page: its todo count and whether its empty state shows (the stylesheet
/// hides it once a todo precedes it) come from the same moment.
async fn empty_state_matches_list(page: &TodoPage, which: Which) -> anyhow::Result<()> {
    let (list, name) = match which {
        Which::Open => (page.open_list(), "open"),
        Which::Done => (page.done_list(), "done"),
    };
    let (todos, empty_shown): (u64, bool) = list
        .evaluate(
            "(list) => [list.querySelectorAll('li[data-todo-id]').length, \
             list.querySelector('li.empty').checkVisibility()]",
            None::<()>,
        )
        .await?;
    anyhow::ensure!(
        empty_shown == (todos == 0),
        "the {name} list holds {todos} todos but its empty state is {}",
        if empty_shown { "shown" } else { "hidden" }
    );
    Ok(())
}
