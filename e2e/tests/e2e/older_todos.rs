//! Story 11: the page shows the newest todos of each list; I ask for more
//! and see older ones, and they stay shown as the lists change.

use e2e::{Needs, run, test_name};

/// The page's first length of a list (`Shown::FIRST` in the app).
const FIRST: usize = 20;

#[tokio::test]
async fn i_show_older_todos_and_they_stay_shown_when_the_lists_change() {
    run(test_name!(), Needs::Browser, |t| async move {
        // Arrange: one todo more than the page shows at first, the oldest
        // of them made first.
        let oldest = t.api().create(&t.unique("Oldest of many")).await?;
        for n in 1..=FIRST {
            t.api()
                .create(&t.unique(&format!("Newer todo {n}")))
                .await?;
        }
        let page = t.open().await?;
        let open = page.open_list();
        let oldest_shown = || page.todo_with_id(&open, &oldest.id);
        t.expect(page.show_more(&open)).to_be_visible().await?;
        t.expect(oldest_shown()).to_be_hidden().await?;

        page.show_more(&open).click(None).await?;
        t.expect(oldest_shown()).to_be_visible().await?;

        // A change re-fetches the lists: as long as they are now.
        let text = t.unique("Added after asking for more");
        page.add(&text).await?;
        t.expect(page.todo_in(&open, &text)).to_be_visible().await?;
        t.expect(oldest_shown()).to_be_visible().await?;
        Ok(())
    })
    .await;
}
