//! Docket's browser end-to-end suite: the harness.
//!
//! The user stories live in `tests/e2e/`, one file per story; this library is
//! what they stand on:
//!
//! - [`config`]: where the suite points (a private stack, or `E2E_BASE_URL`),
//!   and whom it signs in as there (`E2E_USERNAME`);
//! - [`webhook`] and [`broadcaster_log`]: where the webhook story looks for
//!   an event: a receiver, or the broadcaster's log where it only logs;
//! - [`stack`]: the private stack (PostgreSQL, NATS, the app, the broadcaster
//!   and its receiver, the OpenID provider), started per test process;
//! - [`driver`]: headless Chromium through the npm Playwright driver;
//! - [`session`]: one story's run, with unique data, clean-up through the
//!   JSON API, and screenshots plus HTML when it fails;
//! - [`todo_page`]: the page as the user sees it, by role and `data-test`,
//!   and signing in at any OpenID provider's form.
//!
//! A story reads:
//!
//! ```no_run
//! use e2e::{Needs, run, test_name};
//!
//! # async fn example() {
//! run(test_name!(), Needs::Browser, |t| async move {
//!     let page = t.open().await?;
//!     let text = t.unique("Buy oat milk");
//!     page.add(&text).await?;
//!     t.expect(page.todo_in(&page.open_list(), &text)).to_be_visible().await?;
//!     Ok(())
//! })
//! .await;
//! # }
//! ```

pub mod api;
pub mod artifacts;
pub mod broadcaster_log;
pub mod config;
pub mod driver;
mod error;
pub mod expect;
pub mod session;
pub mod stack;
pub mod todo_page;
pub mod webhook;

use std::path::PathBuf;

pub use error::Error;
pub use session::{Needs, Session, run};
pub use todo_page::TodoPage;

/// Cargo's target folder: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let root = test_support::workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}
