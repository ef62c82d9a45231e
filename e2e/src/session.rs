//! One story's run: target, browser, unique data, and what happens after.
//!
//! [`run`] is the whole life of a test: read the settings, start the stack
//! (local runs) and the browser, run the story, and then, whatever happened,
//! save the failure artifacts, delete the test's todos through the JSON API,
//! and close everything. A story is an `async` block returning
//! `anyhow::Result<()>`; a panic inside it is caught and handled the same
//! way as an error. If the run itself is torn down early (a panic outside
//! the story, a cancelled future), [`CleanupGuard`]'s `Drop` still deletes
//! the test's todos.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use playwright_rs::{BrowserContext, BrowserContextOptions, Locator, Page};
use reqwest::Url;

use crate::api::{Api, Todo};
use crate::artifacts;
use crate::broadcaster_log::BroadcasterLog;
use crate::config::{Person, Settings, Target};
use crate::driver::Chromium;
use crate::expect::Expect;
use crate::stack::{Parts, Stack};
use crate::todo_page::TodoPage;
use crate::webhook::Receiver;

/// What a story needs besides the app and a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The app and a browser.
    Browser,
    /// Also the broadcaster's output. Locally the stack starts it posting in
    /// Discord's format to a receiver; against `E2E_BASE_URL` the story reads
    /// `E2E_WEBHOOK_URL` (a receiver) and/or `E2E_BROADCASTER_LOG` (the log,
    /// where it only logs), and is skipped without either.
    Webhook,
    /// Sign-in, and someone to sign in as ([`Session::person`]): locally
    /// the stack starts an OpenID provider and runs the app with
    /// `AUTH=oidc`; against `E2E_BASE_URL` the story needs `E2E_USERNAME`
    /// and `E2E_PASSWORD`, and is skipped without them. Pages open signed
    /// out: signing in is what the story is about.
    SignIn,
    /// [`Needs::SignIn`] and [`Needs::Webhook`] both.
    SignInAndWebhook,
}

impl Needs {
    fn webhook(self) -> bool {
        matches!(self, Needs::Webhook | Needs::SignInAndWebhook)
    }

    fn sign_in(self) -> bool {
        matches!(self, Needs::SignIn | Needs::SignInAndWebhook)
    }
}

/// Runs one story as test `test` (use [`test_name!`](crate::test_name)).
///
/// # Panics
/// When the story fails, with the failure, the artifacts' folder and, for
/// local runs, the services' logs; also when the set-up or clean-up fails.
pub async fn run<F, Fut>(test: &str, needs: Needs, story: F)
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = Settings::from_env().unwrap_or_else(|error| panic!("{test}: {error}"));
    if let Target::Remote(remote) = &settings.target
        && needs.sign_in()
        && remote.person.is_none()
    {
        eprintln!(
            "{test}: skipped: E2E_USERNAME and E2E_PASSWORD are not set, so nobody can sign in \
             to {}",
            remote.base_url
        );
        return;
    }
    if let Target::Remote(remote) = &settings.target
        && needs.webhook()
        && remote.webhook_messages.is_none()
        && remote.broadcaster_log.is_none()
    {
        eprintln!(
            "{test}: skipped: neither E2E_WEBHOOK_URL nor E2E_BROADCASTER_LOG is set, so \
             what the broadcaster of {} does with events cannot be checked",
            remote.base_url
        );
        return;
    }
    artifacts::clear(test);
    let session = Session::start(test, needs, settings)
        .await
        .unwrap_or_else(|error| panic!("{test}: could not start: {error:#}"));
    let guard = CleanupGuard::new(session.api().clone(), session.marker().to_owned());

    let outcome = AssertUnwindSafe(story(session.clone()))
        .catch_unwind()
        .await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("{error:#}")),
        Err(panic) => Some(panic_message(panic.as_ref())),
    };
    let report = match &failure {
        None => None,
        Some(failure) => Some(session.failure_report(failure).await),
    };
    let cleanup = guard.run().await;
    session.close().await;

    match (report, cleanup) {
        (None, Ok(_)) => {}
        (None, Err(error)) => panic!("{test}: passed, but cleaning up its todos failed: {error:#}"),
        (Some(report), cleanup) => {
            let cleanup = match cleanup {
                Ok(_) => String::new(),
                Err(error) => format!("\ncleaning up its todos failed too: {error:#}"),
            };
            panic!("{report}{cleanup}")
        }
    }
}

/// The name of the enclosing function, for [`run`] and the artifacts folder.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        $crate::session::function_name(::std::any::type_name_of_val(&here))
    }};
}

/// `e2e::stories::adding::a_todo::here` → `a_todo` (also through the
/// `{{closure}}` segments an `async fn` adds).
#[doc(hidden)]
pub fn function_name(path: &str) -> &str {
    path.trim_end_matches("::here")
        .rsplit("::")
        .find(|segment| *segment != "{{closure}}")
        .unwrap_or(path)
}

/// What a story works with. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    test: String,
    marker: String,
    settings: Settings,
    base_url: Url,
    api: Api,
    receiver: Option<Receiver>,
    broadcaster_log: Option<BroadcasterLog>,
    chromium: Mutex<Option<Chromium>>,
    pages: Mutex<Vec<Page>>,
    texts: AtomicUsize,
    /// Whom [`Session::person`] signs in as.
    person: Option<Person>,
    /// Whether each page opened signs [`Inner::person`] in first: stories
    /// that are not about signing in, against an environment with sign-in.
    signs_in_on_open: bool,
    stack: Mutex<Option<Stack>>,
}

impl Session {
    async fn start(test: &str, needs: Needs, settings: Settings) -> anyhow::Result<Session> {
        // Before starting servers that would only be stopped again.
        Chromium::check_installed(&settings)?;
        let stack = async {
            match settings.target {
                Target::Local => {
                    let parts = Parts {
                        webhook: needs.webhook(),
                        sign_in: needs.sign_in(),
                    };
                    Stack::start(parts).await.map(Some)
                }
                Target::Remote(_) => Ok(None),
            }
        };
        // The browser starts while the stack does: both take a second or two.
        let (stack, chromium) = tokio::join!(stack, Chromium::launch(&settings));
        let (stack, chromium) = match (stack, chromium) {
            (Ok(stack), Ok(chromium)) => (stack, chromium),
            (Err(error), chromium) => {
                if let Ok(chromium) = chromium {
                    chromium.close().await;
                }
                return Err(error);
            }
            (Ok(_), Err(error)) => return Err(error.into()),
        };
        let (base_url, token, messages) = match (&stack, &settings.target) {
            (Some(stack), _) => (
                stack.base_url().clone(),
                stack.api_token().to_owned(),
                stack.webhook_messages(),
            ),
            (None, Target::Remote(remote)) => (
                remote.base_url.clone(),
                remote.api_token.clone(),
                remote.webhook_messages.clone(),
            ),
            (None, Target::Local) => unreachable!("a local run always has a stack"),
        };
        let person = match (&stack, &settings.target) {
            (Some(stack), _) => stack.person(),
            (None, Target::Remote(remote)) => remote.person.clone(),
            (None, Target::Local) => None,
        };
        let signs_in_on_open = person.is_some() && !needs.sign_in();
        Ok(Session {
            inner: Arc::new(Inner {
                test: test.to_owned(),
                // Short enough to leave room in a 140-character todo, unique
                // enough that parallel runs on staging never share one.
                marker: format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
                api: Api::new(base_url.clone(), token)?,
                receiver: messages.map(Receiver::new).transpose()?,
                broadcaster_log: match &settings.target {
                    Target::Remote(remote) => {
                        remote.broadcaster_log.clone().map(BroadcasterLog::new)
                    }
                    Target::Local => None,
                },
                base_url,
                settings,
                chromium: Mutex::new(Some(chromium)),
                pages: Mutex::default(),
                texts: AtomicUsize::new(0),
                person,
                signs_in_on_open,
                stack: Mutex::new(stack),
            }),
        })
    }

    /// The test's marker: part of every text it makes, and what clean-up
    /// deletes by.
    pub fn marker(&self) -> &str {
        &self.inner.marker
    }

    /// A todo text no other test or run uses: `<label> <marker>-<n>`.
    pub fn unique(&self, label: &str) -> String {
        let n = self.inner.texts.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{label} {}-{n}", self.inner.marker)
    }

    /// Whether this test has the app to itself (a local run), so it may
    /// assert on everything on the page, not only on its own todos.
    pub fn owns_the_app(&self) -> bool {
        matches!(self.inner.settings.target, Target::Local)
    }

    /// How long expectations and actions wait.
    pub fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// The JSON API of the app under test.
    pub fn api(&self) -> &Api {
        &self.inner.api
    }

    /// The webhook receiver (only for [`Needs::Webhook`] stories).
    pub fn receiver(&self) -> anyhow::Result<&Receiver> {
        self.inner
            .receiver
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this story was not started with Needs::Webhook"))
    }

    /// The receiver, when there is one: locally, the stand-in for
    /// production's Discord channel; remotely, `E2E_WEBHOOK_URL`'s.
    pub fn webhook_receiver(&self) -> Option<&Receiver> {
        self.inner.receiver.as_ref()
    }

    /// Whom to sign in as: locally the stack's provider's user, remotely
    /// `E2E_USERNAME` (only for [`Needs::SignIn`] stories, and for others
    /// against an environment with sign-in).
    pub fn person(&self) -> anyhow::Result<&Person> {
        self.inner
            .person
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this story was not started with Needs::SignIn"))
    }

    /// The broadcaster's log (`E2E_BROADCASTER_LOG`), against an
    /// environment where it only logs.
    pub fn broadcaster_log(&self) -> Option<&BroadcasterLog> {
        self.inner.broadcaster_log.as_ref()
    }

    /// An auto-waiting expectation with the suite's timeout.
    pub fn expect(&self, locator: Locator) -> Expect {
        Expect::new(locator, self.timeout())
    }

    /// Waits until `shown` is visible and `gone` matches nothing: a todo
    /// that moved from one list to the other.
    pub async fn expect_moved(&self, shown: Locator, gone: Locator) -> anyhow::Result<()> {
        self.expect(shown).to_be_visible().await?;
        self.expect(gone).to_have_count(0).await?;
        Ok(())
    }

    /// Opens the app in a new browser window (its own cookies and storage).
    pub async fn open(&self) -> anyhow::Result<TodoPage> {
        self.open_with(BrowserContextOptions::builder().build())
            .await
    }

    /// Creates a todo through the API with a [`unique`](Self::unique) text
    /// from `label`, opens the app and waits until the todo is shown in the
    /// open list: where every story about a todo already there starts.
    pub async fn open_with_todo(&self, label: &str) -> anyhow::Result<(Todo, TodoPage)> {
        let todo = self.api().create(&self.unique(label)).await?;
        let page = self.open().await?;
        self.expect(page.todo_with_id(&page.open_list(), &todo.id))
            .to_be_visible()
            .await?;
        Ok((todo, page))
    }

    /// Opens the app in a new window with JavaScript turned off.
    pub async fn open_without_javascript(&self) -> anyhow::Result<TodoPage> {
        self.open_with(
            BrowserContextOptions::builder()
                .javascript_enabled(false)
                .build(),
        )
        .await
    }

    /// Opens the app in a second tab of `beside`'s window.
    pub async fn open_tab(&self, beside: &TodoPage) -> anyhow::Result<TodoPage> {
        self.open_in(beside.context().clone()).await
    }

    async fn open_with(&self, options: BrowserContextOptions) -> anyhow::Result<TodoPage> {
        let context = {
            let chromium = self.inner.chromium.lock().expect("chromium lock");
            let chromium = chromium
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the browser is closed"))?;
            chromium.browser().clone()
        }
        .new_context_with_options(options)
        .await?;
        self.open_in(context).await
    }

    async fn open_in(&self, context: BrowserContext) -> anyhow::Result<TodoPage> {
        let timeout_ms = self.timeout().as_secs_f64() * 1000.0;
        context.set_default_timeout(timeout_ms).await;
        context.set_default_navigation_timeout(timeout_ms).await;
        let page = context.new_page().await?;
        self.inner
            .pages
            .lock()
            .expect("pages lock")
            .push(page.clone());
        let page = TodoPage::new(page, context, self.inner.base_url.clone());
        page.goto_home().await?;
        // The one place stories not about sign-in sign in, where the
        // environment offers it; a tab beside a signed-in one already is.
        if let Some(person) = &self.inner.person
            && self.inner.signs_in_on_open
            && page.sign_in_link().count().await? > 0
        {
            page.sign_in(person).await?;
        }
        Ok(page)
    }

    /// The failure, where its artifacts are, and (local runs) the services' logs.
    async fn failure_report(&self, failure: &str) -> String {
        let pages = self.inner.pages.lock().expect("pages lock").clone();
        let saved = artifacts::capture(&self.inner.test, &pages).await;
        let mut report = format!(
            "{test} failed: {failure}\n\nscreenshot and HTML: {saved}",
            test = self.inner.test
        );
        let logs = self
            .inner
            .stack
            .lock()
            .expect("stack lock")
            .as_ref()
            .map(Stack::logs);
        if let Some(logs) = logs {
            let path = artifacts::folder(&self.inner.test).join("services.log");
            match std::fs::write(&path, logs) {
                Ok(()) => report.push_str(&format!("\nservice logs: {}", path.display())),
                Err(error) => report.push_str(&format!("\nservice logs not saved: {error}")),
            }
        }
        report
    }

    /// Closes the browser, then stops the stack.
    async fn close(&self) {
        let chromium = self.inner.chromium.lock().expect("chromium lock").take();
        if let Some(chromium) = chromium {
            chromium.close().await;
        }
        let stack = self.inner.stack.lock().expect("stack lock").take();
        drop(stack);
    }
}

/// Deletes the test's todos (found by its marker) through the JSON API:
/// explicitly through [`CleanupGuard::run`], or, if the test is torn down
/// before that, when dropped.
pub struct CleanupGuard {
    api: Api,
    marker: String,
    done: bool,
}

impl CleanupGuard {
    pub fn new(api: Api, marker: String) -> CleanupGuard {
        CleanupGuard {
            api,
            marker,
            done: false,
        }
    }

    /// Deletes now; returns how many todos were removed.
    pub async fn run(mut self) -> anyhow::Result<usize> {
        self.done = true;
        self.api.delete_containing(&self.marker).await
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (api, marker) = (self.api.clone(), self.marker.clone());
        // `Drop` cannot await, and may run inside the test's runtime, so the
        // deletes run on a thread of their own with a runtime of their own.
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(api.delete_containing(&marker)))
        })
        .join();
        if !matches!(cleaned, Ok(Ok(_))) {
            eprintln!("could not delete the todos marked {}", self.marker);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the story panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_enclosing_function() {
        assert_eq!(
            function_name("e2e::stories::adding::a_todo::here"),
            "a_todo"
        );
        assert_eq!(
            function_name("e2e::stories::a_todo::{{closure}}::here"),
            "a_todo"
        );
        assert_eq!(
            crate::test_name!(),
            "the_test_name_is_the_enclosing_function"
        );
    }
}
