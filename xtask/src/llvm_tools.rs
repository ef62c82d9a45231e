//! Where the LLVM tools that read coverage profiles are: rustup's
//! `llvm-tools` component, or Debian's packages. Shared by the installer
//! (are they there?) and `cargo xtask coverage` (which ones to use).

use std::path::{Path, PathBuf};

use crate::workspace::Workspace;

/// The profiles' LLVM tools, when rustup's component is missing.
pub const DEBIAN_LLVM_BIN: &str = "/usr/lib/llvm-22/bin";

/// Whether the LLVM tools are there, from rustup or from Debian.
pub fn present(workspace: &Workspace) -> bool {
    rustup_llvm_tools(workspace) || Path::new(DEBIAN_LLVM_BIN).join("llvm-cov").is_file()
}

/// What `cargo llvm-cov` needs to find Debian's tools when rustup's are
/// missing; nothing when rustup's are there.
pub fn cargo_llvm_cov_env(workspace: &Workspace) -> Vec<(&'static str, PathBuf)> {
    if rustup_llvm_tools(workspace) {
        return Vec::new();
    }
    let bin = Path::new(DEBIAN_LLVM_BIN);
    vec![
        ("LLVM_COV", bin.join("llvm-cov")),
        ("LLVM_PROFDATA", bin.join("llvm-profdata")),
    ]
}

/// Whether rustup's `llvm-tools` component is installed for the toolchain.
fn rustup_llvm_tools(workspace: &Workspace) -> bool {
    let Ok(output) = workspace
        .command("rustc")
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let Ok(host) = workspace
        .command("rustc")
        .args(["--print", "host-tuple"])
        .output()
    else {
        return false;
    };
    let host = String::from_utf8_lossy(&host.stdout).trim().to_owned();
    sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-cov")
        .is_file()
}
