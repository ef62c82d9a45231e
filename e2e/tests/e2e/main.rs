//! Docket's user stories, one file each, run in headless Chromium.
//!
//! Each test starts its own stack (or uses `E2E_BASE_URL`), makes its own
//! uniquely named todos, and removes them through the JSON API afterwards;
//! see the `e2e` library for the harness. Run with `cargo nextest run -p e2e`
//! (or `cargo xtask test`, which installs Chromium and the driver first).

mod adding;
mod completing;
mod deleting;
mod escaping;
mod live_updates;
mod no_javascript;
mod older_todos;
mod signing_in;
mod validation;
mod viewing;
mod webhooks;
