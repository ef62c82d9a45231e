//! Playwright's auto-waiting expectations with the suite's timeout.
//!
//! playwright-rs's `expect` waits 5 s unless told otherwise, and its
//! expectation type cannot be named outside the crate; this wrapper applies
//! `E2E_TIMEOUT` everywhere and keeps the failure message's selector.

use std::time::Duration;

use playwright_rs::{Locator, expect};

/// An expectation on one locator; each check waits up to the timeout.
pub struct Expect {
    locator: Locator,
    timeout: Duration,
    negate: bool,
}

macro_rules! checks {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $(#[$doc])*
            pub async fn $name(self, $($arg: $ty),*) -> playwright_rs::Result<()> {
                let expectation = expect(self.locator).with_timeout(self.timeout);
                let expectation = if self.negate { expectation.not() } else { expectation };
                expectation.$name($($arg),*).await
            }
        )*
    };
}

impl Expect {
    pub fn new(locator: Locator, timeout: Duration) -> Expect {
        Expect {
            locator,
            timeout,
            negate: false,
        }
    }

    /// The opposite of the next check.
    #[expect(
        clippy::should_implement_trait,
        reason = "Playwright's own name for it"
    )]
    pub fn not(mut self) -> Expect {
        self.negate = !self.negate;
        self
    }

    checks! {
        /// Visible on the page.
        to_be_visible();
        /// Absent or not visible.
        to_be_hidden();
        /// Exactly this text (whitespace collapsed).
        to_have_text(expected: &str);
        /// This text somewhere inside.
        to_contain_text(expected: &str);
        /// An input holding exactly this value.
        to_have_value(expected: &str);
        /// This many matching elements.
        to_have_count(count: usize);
        /// An attribute with exactly this value.
        to_have_attribute(name: &str, value: &str);
        /// Has keyboard focus.
        to_be_focused();
    }
}
