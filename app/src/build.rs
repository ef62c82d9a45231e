//! What this binary is: its version and the commit it was built from, as
//! `/version` reports them and the `todo_app_build_info` gauge exports them.

use std::sync::LazyLock;

/// The crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GIT_COMMIT` at run time if set (local runs and tests, whose builds carry
/// none), else `GIT_COMMIT` at build time (the images bake it in), else
/// "unknown". Read once.
static COMMIT: LazyLock<String> = LazyLock::new(|| {
    std::env::var("GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .unwrap_or_else(|| option_env!("GIT_COMMIT").unwrap_or("unknown").to_owned())
});

/// The commit the binary was built from (see [`COMMIT`]).
pub fn commit() -> &'static str {
    COMMIT.as_str()
}
