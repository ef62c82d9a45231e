//! The todo page as a user sees it: the form, the two lists, the buttons
//! on each todo, and signing in and out, found by role and accessible name
//! or by `data-test` / `data-todo-id`, never by layout.

use anyhow::{Context, bail};
use playwright_rs::{AriaRole, BrowserContext, FilterOptions, GetByRoleOptions, Locator, Page};
use reqwest::Url;
use serde::Deserialize;

use crate::config::Person;

/// The provider's username field, whatever the provider: OpenID leaves the
/// sign-in form to it, and the common ones name the field one of these.
const PROVIDER_USERNAME: &str = r#"input:is([name="username" i], [name="login" i], [name="email" i]):is([type="text" i], [type="email" i], :not([type]))"#;

/// The provider's password field.
const PROVIDER_PASSWORD: &str = r#"input[type="password" i]"#;

/// What a consent (or "continue") button is called at common providers.
const CONSENT_BUTTONS: &[&str] = &[
    "Allow",
    "Accept",
    "Authorize",
    "Continue",
    "Consent",
    "Grant access",
    "Yes",
];

/// Sign-in steps after the password: a consent page, perhaps a second one.
const CONSENT_STEPS: usize = 3;

/// What the app answered a POST the page made by hand ([`TodoPage::post_new_todo`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    pub status: u16,
    /// `HX-Redirect`: where the app sends an htmx page instead.
    pub hx_redirect: Option<String>,
}

/// One browser tab on the app.
pub struct TodoPage {
    page: Page,
    context: BrowserContext,
    base_url: Url,
}

impl TodoPage {
    pub(crate) fn new(page: Page, context: BrowserContext, base_url: Url) -> TodoPage {
        TodoPage {
            page,
            context,
            base_url,
        }
    }

    /// The Playwright page, for what this type does not cover.
    pub fn page(&self) -> &Page {
        &self.page
    }

    pub fn context(&self) -> &BrowserContext {
        &self.context
    }

    /// Loads the app's home page.
    pub async fn goto_home(&self) -> anyhow::Result<()> {
        self.page
            .goto(self.base_url.as_str(), None)
            .await
            .with_context(|| format!("failed to open {}", self.base_url))?;
        Ok(())
    }

    /// Reloads the page, as a user pressing F5.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.page.reload(None).await.context("failed to reload")?;
        Ok(())
    }

    /// The text box labelled "New todo".
    pub fn new_todo_input(&self) -> Locator {
        self.page
            .get_by_role(AriaRole::Textbox, Some(named("New todo")))
    }

    /// The form's "Add" button.
    pub fn add_button(&self) -> Locator {
        self.page.get_by_role(AriaRole::Button, Some(named("Add")))
    }

    /// Why the form refused the text.
    pub fn form_error(&self) -> Locator {
        self.page.get_by_role(AriaRole::Alert, None)
    }

    /// Types `text` into the form and presses Enter.
    pub async fn add(&self, text: &str) -> anyhow::Result<()> {
        let input = self.new_todo_input();
        input.fill(text, None).await.context("typing the todo")?;
        input.press("Enter", None).await.context("pressing Enter")?;
        Ok(())
    }

    /// The "To do" list.
    pub fn open_list(&self) -> Locator {
        self.page.get_by_test_id("open-list")
    }

    /// The "Done" list.
    pub fn done_list(&self) -> Locator {
        self.page.get_by_test_id("done-list")
    }

    /// The todos in `list`, top first.
    pub fn todos_in(&self, list: &Locator) -> Locator {
        list.locator("li[data-todo-id]")
    }

    /// The todo in `list` whose text contains `text` (tests' texts are unique).
    pub fn todo_in(&self, list: &Locator, text: &str) -> Locator {
        self.todos_in(list)
            .filter(FilterOptions::default().has_text(text))
    }

    /// The todo anywhere on the page.
    pub fn todo(&self, text: &str) -> Locator {
        self.todo_in(&self.page.locator("#todo-lists"), text)
    }

    /// The todo with this id, by `data-todo-id`.
    pub fn todo_with_id(&self, list: &Locator, id: &str) -> Locator {
        list.locator(format!("li[data-todo-id=\"{id}\"]"))
    }

    /// The `data-todo-id` of the todo in `list` with this text.
    pub async fn todo_id(&self, list: &Locator, text: &str) -> anyhow::Result<String> {
        self.todo_in(list, text)
            .get_attribute("data-todo-id")
            .await
            .with_context(|| format!("reading the id of `{text}`"))?
            .with_context(|| format!("`{text}` has no data-todo-id"))
    }

    /// The "Mark “…” done" button of a todo.
    pub fn mark_done_button(&self, text: &str) -> Locator {
        self.button(&format!("Mark “{text}” done"))
    }

    /// The "Mark “…” not done" button of a done todo.
    pub fn mark_not_done_button(&self, text: &str) -> Locator {
        self.button(&format!("Mark “{text}” not done"))
    }

    /// The "Delete “…”" button of a todo.
    pub fn delete_button(&self, text: &str) -> Locator {
        self.button(&format!("Delete “{text}”"))
    }

    /// "Nothing to do." in the open list.
    pub fn empty_open(&self) -> Locator {
        self.page.get_by_test_id("empty-open")
    }

    /// "Nothing done yet." in the done list.
    pub fn empty_done(&self) -> Locator {
        self.page.get_by_test_id("empty-done")
    }

    /// The link under `list` that shows more of its older todos.
    pub fn show_more(&self, list: &Locator) -> Locator {
        list.get_by_test_id("show-more")
    }

    /// How many todos are open, as shown.
    pub fn open_count(&self) -> Locator {
        self.page.get_by_test_id("open-count")
    }

    /// How many todos are done, as shown.
    pub fn done_count(&self) -> Locator {
        self.page.get_by_test_id("done-count")
    }

    /// The "Sign in" link (in the header, or on the sign-in page).
    pub fn sign_in_link(&self) -> Locator {
        self.page.get_by_test_id("sign-in").first()
    }

    /// The page visitors who have not signed in see instead of the lists.
    pub fn sign_in_page(&self) -> Locator {
        self.page.get_by_test_id("sign-in-page")
    }

    /// "Signed in as <name>": the name.
    pub fn signed_in_as(&self) -> Locator {
        self.page.get_by_test_id("signed-in-name")
    }

    /// The "Sign out" button.
    pub fn sign_out_button(&self) -> Locator {
        self.page.get_by_test_id("sign-out")
    }

    /// The name of whoever is signed in, as the page shows it now; `None`
    /// when nobody is (or sign-in is off).
    pub async fn signed_in_name(&self) -> anyhow::Result<Option<String>> {
        let name = self.signed_in_as();
        if name.count().await? == 0 {
            return Ok(None);
        }
        let text = name.text_content().await?.unwrap_or_default();
        Ok(Some(text.trim().to_owned()))
    }

    /// Signs `person` in as a person would: follows "Sign in" to the
    /// OpenID provider, fills its form (a username, login or email field
    /// and a password field; any provider's), submits it, gives consent if
    /// a consent page asks, and waits until the app shows who is signed in.
    pub async fn sign_in(&self, person: &Person) -> anyhow::Result<()> {
        self.sign_in_link()
            .click(None)
            .await
            .context("clicking Sign in")?;
        let username = self.page.locator(PROVIDER_USERNAME).first();
        username.wait_for(None).await.with_context(|| {
            format!(
                "no username field on the provider's sign-in page ({})",
                self.page.url()
            )
        })?;
        username
            .fill(&person.username, None)
            .await
            .context("typing the username")?;
        let password = self.page.locator(PROVIDER_PASSWORD).first();
        password
            .fill(&person.password, None)
            .await
            .context("typing the password")?;
        password
            .press("Enter", None)
            .await
            .context("submitting the sign-in form")?;

        let signed_in = self.signed_in_as();
        let consent = CONSENT_BUTTONS
            .iter()
            .map(|name| self.page.get_by_role(AriaRole::Button, Some(named(name))))
            .reduce(|any, button| any.or_(&button))
            .expect("at least one consent button name");
        for _ in 0..CONSENT_STEPS {
            let back_or_asked = signed_in.or_(&consent).first();
            if let Err(error) = back_or_asked.wait_for(None).await {
                // A provider refusing the password usually says so in an alert.
                let alerts = self
                    .page
                    .get_by_role(AriaRole::Alert, None)
                    .all_inner_texts()
                    .await
                    .unwrap_or_default();
                bail!(
                    "`{}` was not signed in: the browser is at {}{} ({error})",
                    person.username,
                    self.page.url(),
                    match alerts.join(" ").trim() {
                        "" => String::new(),
                        said => format!(", which says \"{said}\""),
                    }
                );
            }
            if signed_in.count().await? > 0 {
                // As `goto` does for a page a story opens: its deferred
                // scripts (htmx) have run before the story acts on it.
                self.page
                    .wait_for_load_state(None)
                    .await
                    .context("waiting for the app's page to load after signing in")?;
                return Ok(());
            }
            consent
                .first()
                .click(None)
                .await
                .context("giving consent at the provider")?;
        }
        bail!(
            "`{}` was not signed in after {CONSENT_STEPS} consent pages: the browser is at {}",
            person.username,
            self.page.url()
        )
    }

    /// Presses "Sign out".
    pub async fn sign_out(&self) -> anyhow::Result<()> {
        self.sign_out_button()
            .click(None)
            .await
            .context("clicking Sign out")?;
        Ok(())
    }

    /// The CSRF token the page's forms carry (signed in only).
    pub async fn csrf_token(&self) -> anyhow::Result<String> {
        self.page
            .locator(r#"input[name="csrf"]"#)
            .first()
            .get_attribute("value")
            .await
            .context("reading the CSRF token")?
            .context("the CSRF field has no value")
    }

    /// Adds a todo by hand, not through the form: a POST the page's own
    /// script makes to the app as htmx would (same origin, the browser's
    /// cookies, `HX-Request`), with `csrf` when given. What a forger gets
    /// at best; the app must refuse it unless someone is signed in.
    pub async fn post_new_todo(&self, text: &str, csrf: Option<&str>) -> anyhow::Result<Answer> {
        let mut form = vec![("text", text)];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let form: std::collections::HashMap<&str, &str> = form.into_iter().collect();
        self.page
            .evaluate(
                "async (form) => {
                    const response = await fetch(new URL('todos', document.baseURI), {
                        method: 'POST',
                        headers: { 'HX-Request': 'true' },
                        body: new URLSearchParams(form),
                        redirect: 'manual',
                    });
                    return { status: response.status, hx_redirect: response.headers.get('HX-Redirect') };
                }",
                Some(&form),
            )
            .await
            .context("posting a todo from the page")
    }

    fn button(&self, name: &str) -> Locator {
        self.page.get_by_role(AriaRole::Button, Some(named(name)))
    }
}

/// Matches an accessible name exactly.
fn named(name: &str) -> GetByRoleOptions {
    GetByRoleOptions::default().name(name).exact(true)
}
