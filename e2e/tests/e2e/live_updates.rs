//! Story 7: with two tabs open, a todo added in one appears in the other
//! without a reload.

use e2e::{Needs, run, test_name};

#[tokio::test]
async fn with_two_tabs_open_a_todo_added_in_one_appears_in_the_other() {
    run(test_name!(), Needs::Browser, |t| async move {
        let first = t.open().await?;
        let second = t.open_tab(&first).await?;
        let text = t.unique("Call the plumber");

        first.add(&text).await?;
        t.expect(first.todo_in(&first.open_list(), &text))
            .to_be_visible()
            .await?;

        // The second tab is never reloaded.
        t.expect(second.todo_in(&second.open_list(), &text))
            .to_be_visible()
            .await?;
        Ok(())
    })
    .await;
}
