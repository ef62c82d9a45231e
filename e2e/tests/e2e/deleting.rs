//! Story 5: I delete a todo; it is gone, also after a reload.

use anyhow::ensure;
use e2e::{Needs, run, test_name};

#[tokio::test]
async fn i_delete_a_todo_and_it_stays_gone_after_a_reload() {
    run(test_name!(), Needs::Browser, |t| async move {
        let (todo, page) = t.open_with_todo("Cancel the newspaper").await?;
        let text = &todo.text;

        page.delete_button(text).click(None).await?;

        t.expect(page.todo(text)).to_have_count(0).await?;
        page.reload().await?;
        t.expect(page.new_todo_input()).to_be_visible().await?;
        t.expect(page.todo(text)).to_have_count(0).await?;
        let left = t.api().todos_containing(text).await?;
        ensure!(
            left.is_empty(),
            "the deleted todo is still stored: {left:?}"
        );
        Ok(())
    })
    .await;
}
