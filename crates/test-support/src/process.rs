//! Small process and file helpers shared by the servers.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Whether this process runs as root (PostgreSQL then has to run as `postgres`).
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether nothing listens on `127.0.0.1:port` right now.
///
/// Checked before starting a server so that a taken port is reported as such
/// instead of as an obscure start-up failure.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

pub(crate) fn ensure_port_free(port: u16, what: &str) -> anyhow::Result<()> {
    if port_is_free(port) {
        Ok(())
    } else {
        bail!("cannot start {what}: port {port} on 127.0.0.1 is taken by another process")
    }
}

/// Runs a command to completion; on failure the error carries its output.
pub(crate) fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("failed to run {what} ({command:?})"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Whether a process with this id runs: it exists (signal 0 checks without
/// sending) and is not a zombie. Orphans of a killed run may stay zombies
/// for good where the container's init does not reap them.
pub fn process_is_running(pid: i32) -> bool {
    pid > 0 && kill(Pid::from_raw(pid), None::<Signal>).is_ok() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat: `pid (comm) state ...`; comm may contain spaces.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Reads the first line of a pid file (PostgreSQL's and nats-server's format).
pub(crate) fn read_pid_file(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// The length of a file, or 0 if it does not exist yet: where to start reading
/// a log so that an error shows only what this start wrote.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last `lines` lines of a file written after `offset`.
pub(crate) fn log_tail(path: &Path, offset: u64, lines: usize) -> String {
    let mut text = String::new();
    let read = fs::File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if read.is_err() {
        return format!("(no log at {})", path.display());
    }
    last_lines(&text, lines)
}

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..].join("\n")
}
