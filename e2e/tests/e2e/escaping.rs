//! Story 9: text with HTML or script in it is shown as text and runs nothing.

use e2e::{Needs, Session, TodoPage, run, test_name};
use playwright_rs::expect_page;

#[tokio::test]
async fn text_with_html_or_script_in_it_is_shown_as_text_and_runs_nothing() {
    run(test_name!(), Needs::Browser, |t| async move {
        let text = t.unique(
            r#"<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script><b>bold</b> & "quotes""#,
        );
        let page = t.open().await?;

        page.add(&text).await?;
        // As htmx swapped it in, then as the server renders the whole page.
        shown_as_text(&t, &page, &text).await?;
        page.reload().await?;
        shown_as_text(&t, &page, &text).await?;
        Ok(())
    })
    .await;
}

async fn shown_as_text(t: &Session, page: &TodoPage, text: &str) -> anyhow::Result<()> {
    let item = page.todo_in(&page.open_list(), t.marker());
    t.expect(item.get_by_test_id("todo-text"))
        .to_have_text(text)
        .await?;
    t.expect(item.locator("img, script, b"))
        .to_have_count(0)
        .await?;
    // The buttons' accessible names carry the text verbatim too.
    t.expect(page.mark_done_button(text))
        .to_be_visible()
        .await?;
    expect_page(page.page())
        .with_timeout(t.timeout())
        .to_have_title("Docket")
        .await?;
    Ok(())
}
