//! Follows a server's log file and echoes new lines with a prefix.
//!
//! PostgreSQL (through `pg_ctl -l`) and nats-server write their logs to files
//! in their folders; `cargo xtask up` shows them next to the app's output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Echoes lines appended to `path` after byte `offset` as `<prefix> | <line>`
/// until the task is aborted.
pub fn follow(path: PathBuf, offset: u64, prefix: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut offset = offset;
        let mut partial = String::new();
        let mut interval = tokio::time::interval(Duration::from_millis(200));
        loop {
            interval.tick().await;
            let Ok(bytes) = read_from(&path, offset) else {
                continue;
            };
            offset += bytes.len() as u64;
            partial.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = partial.find('\n') {
                println!("{prefix} | {}", &partial[..end]);
                partial.drain(..=end);
            }
        }
    })
}

/// The last `n` lines written to `path` after byte `offset`.
pub fn last_lines(path: &Path, offset: u64, n: usize) -> String {
    match read_from(path, offset) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(error) => format!("(could not read {}: {error})", path.display()),
    }
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
