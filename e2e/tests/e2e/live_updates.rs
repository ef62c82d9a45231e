//! Story 7: with two tabs open, a todo added in one appears in the other
//! without a reload; and a change arriving while I press a button does not
//! swallow my press.

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

/// The lists refresh whenever a todo changes anywhere. A refresh that lands
/// between pressing a button and releasing it must not replace the button:
/// the browser sends the click only where both happened.
#[tokio::test]
async fn a_change_arriving_while_i_press_a_button_does_not_swallow_my_press() {
    run(test_name!(), Needs::Browser, |t| async move {
        // Created first, so it sits below mine and leaving moves nothing.
        let below = t.api().create(&t.unique("Sweep the yard")).await?;
        let (mine, page) = t.open_with_todo("Water the plants").await?;
        let open = page.open_list();
        t.expect(page.todo_with_id(&open, &below.id))
            .to_be_visible()
            .await?;

        page.mark_done_button(&mine.text).hover(None).await?;
        page.page().mouse().down(None).await?;
        t.api().delete(&below.id).await?;
        t.expect(page.todo_with_id(&open, &below.id))
            .to_have_count(0)
            .await?;
        page.page().mouse().up(None).await?;

        t.expect_moved(
            page.todo_with_id(&page.done_list(), &mine.id),
            page.todo_with_id(&open, &mine.id),
        )
        .await?;
        Ok(())
    })
    .await;
}
