//! The todo page as a user sees it: the form, the two lists, and the buttons
//! on each todo, found by role and accessible name or by `data-test` /
//! `data-todo-id`, never by layout.

use anyhow::Context;
use playwright_rs::{AriaRole, BrowserContext, FilterOptions, GetByRoleOptions, Locator, Page};
use reqwest::Url;

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

    /// How many todos are open, as shown.
    pub fn open_count(&self) -> Locator {
        self.page.get_by_test_id("open-count")
    }

    /// How many todos are done, as shown.
    pub fn done_count(&self) -> Locator {
        self.page.get_by_test_id("done-count")
    }

    fn button(&self, name: &str) -> Locator {
        self.page.get_by_role(AriaRole::Button, Some(named(name)))
    }
}

/// Matches an accessible name exactly.
fn named(name: &str) -> GetByRoleOptions {
    GetByRoleOptions::default().name(name).exact(true)
}
