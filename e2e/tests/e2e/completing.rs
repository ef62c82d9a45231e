//! Story 4: I mark a todo done; it moves to the done list; after a reload it
//! is still done; I mark it not done again.

use e2e::{Needs, run, test_name};

#[tokio::test]
async fn i_mark_a_todo_done_it_stays_done_after_a_reload_and_i_can_undo_it() {
    run(test_name!(), Needs::Browser, |t| async move {
        let (todo, page) = t.open_with_todo("Water the plants").await?;
        let text = &todo.text;
        let (open, done) = (page.open_list(), page.done_list());
        let in_open = || page.todo_with_id(&open, &todo.id);
        let in_done = || page.todo_with_id(&done, &todo.id);

        page.mark_done_button(text).click(None).await?;
        t.expect_moved(in_done(), in_open()).await?;

        page.reload().await?;
        t.expect_moved(in_done(), in_open()).await?;

        page.mark_not_done_button(text).click(None).await?;
        t.expect_moved(in_open(), in_done()).await?;
        page.reload().await?;
        t.expect(in_open()).to_be_visible().await?;
        Ok(())
    })
    .await;
}
