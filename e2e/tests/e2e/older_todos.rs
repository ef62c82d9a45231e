//! Story 11: the page shows the newest todos of each list; I ask for more
//! and see older ones, and they stay shown as the lists change.

use std::time::Duration;

use e2e::api::Todo;
use e2e::{Needs, Session, TodoPage, run, test_name};
use playwright_rs::Page;
use tokio::sync::{mpsc, watch};

/// The page's first length of a list (`Shown::FIRST` in the app).
const FIRST: usize = 20;

#[tokio::test]
async fn i_show_older_todos_and_they_stay_shown_when_the_lists_change() {
    run(test_name!(), Needs::Browser, |t| async move {
        let (oldest, page) = one_more_than_shown(&t).await?;
        let open = page.open_list();
        let oldest_shown = || page.todo_with_id(&open, &oldest.id);
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

/// A re-fetch of the lists can be on its way when I ask for more (every
/// page asks for one as it opens, and again at each change). Asking for more
/// gives it up: the re-fetch asked for the shorter lists, and had it landed
/// after my longer ones it would have taken the older todos away again.
#[tokio::test]
async fn asking_for_more_while_the_lists_are_being_re_fetched_keeps_them_shown() {
    run(test_name!(), Needs::Browser, |t| async move {
        ask_for_more_while_re_fetching(&t, 0).await
    })
    .await;
}

/// A change while the lists are being re-fetched leaves another re-fetch
/// waiting behind the first (the page sends one at a time). Asking for more
/// then is not lost: the waiting re-fetch, sent once the first is given up,
/// asks for the longer lists too.
#[tokio::test]
async fn asking_for_more_while_a_re_fetch_waits_behind_another_keeps_them_shown() {
    run(test_name!(), Needs::Browser, |t| async move {
        ask_for_more_while_re_fetching(&t, 1).await
    })
    .await;
}

/// Counts, on the page's body (`data-changes-heard`), the changes the page
/// hears of on its event stream.
const COUNT_CHANGES_HEARD: &str = "document.addEventListener('htmx:sseMessage', (event) => {
    if (event.detail.type !== 'todo') return;
    const body = document.body;
    body.dataset.changesHeard = String(Number(body.dataset.changesHeard || 0) + 1);
});";

/// Asks for more while the page's re-fetch as it opens is held, after
/// `changes` made elsewhere, and sees the older todos, then again after one
/// more change.
async fn ask_for_more_while_re_fetching(t: &Session, changes: usize) -> anyhow::Result<()> {
    // Arrange: the page's re-fetches of the first lengths are held until
    // let go. The page opens again (counting the changes it hears of), and
    // its re-fetch as its event stream opens is held: the stream is open.
    let (oldest, page) = one_more_than_shown(t).await?;
    let open = page.open_list();
    let oldest_shown = || page.todo_with_id(&open, &oldest.id);
    let mut held = HeldRefetches::on(page.page()).await?;
    page.page().add_init_script(COUNT_CHANGES_HEARD).await?;
    page.reload().await?;
    held.wait_for_one(t.timeout()).await?;

    // Changes elsewhere: each one's re-fetch waits behind the held one.
    for n in 1..=changes {
        t.api()
            .create(&t.unique(&format!("Added elsewhere {n}")))
            .await?;
    }
    if changes > 0 {
        t.expect(page.page().locator("body"))
            .to_have_attribute("data-changes-heard", &changes.to_string())
            .await?;
    }
    page.show_more(&open).click(None).await?;
    t.expect(oldest_shown()).to_be_visible().await?;
    held.let_go();

    // Another change: its re-fetch comes after any held one, as long as the
    // lists are now.
    let later = t.unique("Added elsewhere later");
    t.api().create(&later).await?;
    t.expect(page.todo_in(&open, &later))
        .to_be_visible()
        .await?;
    t.expect(oldest_shown()).to_be_visible().await?;
    Ok(())
}

/// One todo more than the page shows at first, the oldest of them made
/// first, and the page open with its link to show more.
async fn one_more_than_shown(t: &Session) -> anyhow::Result<(Todo, TodoPage)> {
    let oldest = t.api().create(&t.unique("Oldest of many")).await?;
    for n in 1..=FIRST {
        t.api()
            .create(&t.unique(&format!("Newer todo {n}")))
            .await?;
    }
    let page = t.open().await?;
    t.expect(page.show_more(&page.open_list()))
        .to_be_visible()
        .await?;
    Ok((oldest, page))
}

/// Holds the page's re-fetches of the lists at their first lengths
/// (`show_open=20`) until [`HeldRefetches::let_go`].
struct HeldRefetches {
    arrived: mpsc::UnboundedReceiver<()>,
    go: watch::Sender<bool>,
}

impl HeldRefetches {
    async fn on(page: &Page) -> anyhow::Result<HeldRefetches> {
        let (arrival, arrived) = mpsc::unbounded_channel();
        let (go, gone) = watch::channel(false);
        let first_lengths = format!("show_open={FIRST}&");
        page.route("**/fragments/todo-lists*", move |route| {
            let held = route.request().url().contains(&first_lengths);
            let (arrival, mut gone) = (arrival.clone(), gone.clone());
            async move {
                if held {
                    let _ = arrival.send(());
                    let _ = gone.wait_for(|&go| go).await;
                }
                // A request the page gave up on can no longer be continued.
                let _ = route.continue_(None).await;
                Ok(())
            }
        })
        .await?;
        Ok(HeldRefetches { arrived, go })
    }

    /// Waits, as long as the story waits for anything, for a re-fetch to
    /// be held.
    async fn wait_for_one(&mut self, within: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(within, self.arrived.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!("the page did not re-fetch its lists within {within:?}")
            })?;
        Ok(())
    }

    fn let_go(&self) {
        self.go.send_replace(true);
    }
}
