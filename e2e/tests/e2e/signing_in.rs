//! Story 10: where sign-in is on (`AUTH=oidc`), a visitor who has not
//! signed in cannot add a todo; I sign in through the OpenID provider's own
//! form, add a todo and see it; the team hears it was me; after I sign out
//! I cannot add again.
//!
//! Locally the stack starts a real OpenID provider and signs in as its Ada
//! Lovelace; against `E2E_BASE_URL` these run only with `E2E_USERNAME` and
//! `E2E_PASSWORD` (someone at that environment's provider).

use anyhow::ensure;
use e2e::todo_page::Answer;
use e2e::{Needs, Session, TodoPage, run, test_name};

use crate::webhooks::the_team_hears;

#[tokio::test]
async fn a_visitor_who_has_not_signed_in_sees_the_sign_in_page_and_cannot_add_a_todo() {
    run(test_name!(), Needs::SignIn, |t| async move {
        let page = t.open().await?;

        t.expect(page.sign_in_link()).to_be_visible().await?;
        if t.owns_the_app() {
            // Without ANONYMOUS_READ: a sign-in page instead of the lists.
            t.expect(page.sign_in_page()).to_be_visible().await?;
        }
        signed_out_without_a_form(&t, &page).await?;

        let text = t.unique("Forged todo");
        let answer = page.post_new_todo(&text, None).await?;
        sent_to_sign_in(&answer)?;
        nothing_stored(&t, &text).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn i_sign_in_through_the_provider_add_a_todo_and_see_it_on_my_list() {
    run(test_name!(), Needs::SignIn, |t| async move {
        let page = t.open().await?;
        let me = t.person()?;

        page.sign_in(me).await?;
        if let Some(name) = &me.name {
            t.expect(page.signed_in_as()).to_have_text(name).await?;
        }
        let text = t.unique("Renew the passport");
        page.add(&text).await?;

        t.expect(page.todo_in(&page.open_list(), &text))
            .to_be_visible()
            .await?;
        page.reload().await?;
        t.expect(page.todo_in(&page.open_list(), &text))
            .to_be_visible()
            .await?;
        let saved = t.api().todos_containing(&text).await?;
        ensure!(
            saved.len() == 1 && !saved[0].done,
            "expected one open todo `{text}` in the API, found {saved:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn when_i_add_a_todo_signed_in_the_team_hears_it_was_me() {
    run(test_name!(), Needs::SignInAndWebhook, |t| async move {
        let page = t.open().await?;
        let me = t.person()?;
        page.sign_in(me).await?;
        let Some(name) = page.signed_in_name().await? else {
            anyhow::bail!("signed in, but the page names nobody");
        };
        if let Some(expected) = &me.name {
            ensure!(&name == expected, "signed in as `{name}`, not `{expected}`");
        }
        let text = t.unique("Order the cake");

        page.add(&text).await?;
        t.expect(page.todo_in(&page.open_list(), &text))
            .to_be_visible()
            .await?;

        the_team_hears(&t, &format!("{name} added: {text}")).await
    })
    .await;
}

#[tokio::test]
async fn after_i_sign_out_i_cannot_add_a_todo_again() {
    run(test_name!(), Needs::SignIn, |t| async move {
        let page = t.open().await?;
        page.sign_in(t.person()?).await?;
        let csrf = page.csrf_token().await?;
        // Signed in, the page's own POST with its token adds a todo: what
        // is refused below is refused for being signed out, not for its form.
        let before = t.unique("Water the garden");
        let answer = page.post_new_todo(&before, Some(&csrf)).await?;
        ensure!(
            answer.status == 200 && answer.hx_redirect.is_none(),
            "signed in, adding by hand was answered {answer:?}"
        );
        ensure!(
            t.api().todos_containing(&before).await?.len() == 1,
            "signed in, the todo added by hand was not stored"
        );

        page.sign_out().await?;

        t.expect(page.sign_in_link()).to_be_visible().await?;
        signed_out_without_a_form(&t, &page).await?;
        let after = t.unique("Water the garden again");
        let answer = page.post_new_todo(&after, Some(&csrf)).await?;
        sent_to_sign_in(&answer)?;
        nothing_stored(&t, &after).await?;
        page.reload().await?;
        t.expect(page.sign_in_link()).to_be_visible().await?;
        signed_out_without_a_form(&t, &page).await?;
        Ok(())
    })
    .await;
}

/// Nobody is named, and there is nothing to add with.
async fn signed_out_without_a_form(t: &Session, page: &TodoPage) -> anyhow::Result<()> {
    t.expect(page.signed_in_as()).to_have_count(0).await?;
    t.expect(page.new_todo_input()).to_have_count(0).await?;
    t.expect(page.add_button()).to_have_count(0).await?;
    Ok(())
}

/// The app answered an htmx write by sending the page to sign in.
fn sent_to_sign_in(answer: &Answer) -> anyhow::Result<()> {
    ensure!(
        answer
            .hx_redirect
            .as_deref()
            .is_some_and(|to| to.ends_with("/auth/login")),
        "expected the app to send the page to /auth/login, it answered {answer:?}"
    );
    Ok(())
}

async fn nothing_stored(t: &Session, text: &str) -> anyhow::Result<()> {
    let saved = t.api().todos_containing(text).await?;
    ensure!(saved.is_empty(), "the refused todo was stored: {saved:?}");
    Ok(())
}
