//! Story 3: I type 141 characters; I see why it was refused, my text is
//! still in the input, and nothing was added (also after a reload).

use anyhow::ensure;
use e2e::{Needs, run, test_name};

#[tokio::test]
async fn a_141_character_todo_is_refused_with_the_reason_and_my_text_kept() {
    run(test_name!(), Needs::Browser, |t| async move {
        let start = t.unique("Too long");
        let padding = 141 - start.chars().count() - 1;
        let text = format!("{start} {}", "x".repeat(padding));
        assert_eq!(text.chars().count(), 141);
        let page = t.open().await?;

        page.add(&text).await?;

        t.expect(page.form_error())
            .to_have_text("A todo can be at most 140 characters long; this one has 141.")
            .await?;
        let input = page.new_todo_input();
        t.expect(input.clone()).to_have_value(&text).await?;
        t.expect(input)
            .to_have_attribute("aria-invalid", "true")
            .await?;
        t.expect(page.todo(t.marker())).to_have_count(0).await?;
        let saved = t.api().todos_containing(t.marker()).await?;
        ensure!(saved.is_empty(), "the refused todo was saved: {saved:?}");

        page.reload().await?;
        t.expect(page.new_todo_input()).to_be_visible().await?;
        t.expect(page.todo(t.marker())).to_have_count(0).await?;
        t.expect(page.form_error()).to_have_count(0).await?;
        Ok(())
    })
    .await;
}
