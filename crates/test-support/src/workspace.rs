//! Where the workspace and its built binaries are.

use std::env;
use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate sits at `crates/test-support`, two levels below the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support has a grandparent")
        .to_path_buf()
}

/// A binary built by this workspace, e.g. `workspace_binary("todo-app")`.
///
/// Looks in the profile folder of the running executable first (a test in
/// `target/debug/deps/` finds `target/debug/todo-app`, a release tool finds
/// release binaries), then in `target/debug/`.
///
/// # Panics
/// When the binary has not been built, with the command that builds it.
pub fn workspace_binary(name: &str) -> PathBuf {
    let file_name = format!("{name}{}", env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Ok(exe) = env::current_exe()
        && let Some(mut dir) = exe.parent()
    {
        if dir.ends_with("deps") {
            dir = dir.parent().unwrap_or(dir);
        }
        candidates.push(dir.join(&file_name));
    }
    candidates.push(target_dir().join("debug").join(&file_name));
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => path.clone(),
        None => panic!(
            "binary `{name}` is not built (looked at {}); build it first with `cargo build --bin {name}`",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Cargo's target folder: `CARGO_TARGET_DIR` if set, else `<root>/target`.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}
