//! Story 5: I delete a todo; it is gone, also after a reload.

use anyhow::ensure;
use e2e::{Needs, run, test_name};

#[tokio::test]
async fn i_delete_a_todo_and_it_stays_gone_after_a_reload() {
    run(test_name!(), Needs::Browser, |t| async move {
        let text = t.unique("Cancel the newspaper");
        let todo = t.api().create(&text).await?;
        let page = t.open().await?;
        let open = page.open_list();
        t.expect(page.todo_with_id(&open, &todo.id))
            .to_be_visible()
            .await?;

        page.delete_button(&text).click(None).await?;

        t.expect(page.todo(&text)).to_have_count(0).await?;
        page.reload().await?;
        t.expect(page.new_todo_input()).to_be_visible().await?;
        t.expect(page.todo(&text)).to_have_count(0).await?;
        let left = t.api().todos_containing(&text).await?;
        ensure!(
            left.is_empty(),
            "the deleted todo is still stored: {left:?}"
        );
        Ok(())
    })
    .await;
}
