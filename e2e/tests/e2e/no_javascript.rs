//! Story 6: with JavaScript disabled, I can still add and complete a todo
//! (plain form posts answered with a redirect to the page).

use e2e::{Needs, run, test_name};

#[tokio::test]
async fn without_javascript_i_can_still_add_and_complete_a_todo() {
    run(test_name!(), Needs::Browser, |t| async move {
        let page = t.open_without_javascript().await?;
        let (open, done) = (page.open_list(), page.done_list());
        let text = t.unique("Post the letter");

        page.add(&text).await?;
        t.expect(page.todo_in(&open, &text)).to_be_visible().await?;
        t.expect(page.new_todo_input()).to_have_value("").await?;

        page.mark_done_button(&text).click(None).await?;
        t.expect_moved(page.todo_in(&done, &text), page.todo_in(&open, &text))
            .await?;
        Ok(())
    })
    .await;
}
