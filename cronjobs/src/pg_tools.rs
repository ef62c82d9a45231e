//! Finding and running PostgreSQL's client tools (`pg_dump`, `pg_restore`).
//!
//! `pg_dump` must be at least as new as the server, so the newest installed
//! major version wins: Debian and the official `postgres` image keep each
//! version's tools in `/usr/lib/postgresql/<version>/bin` (the same place
//! the test-support crate finds the server). `PG_BIN_DIR` overrides the
//! search; `PATH` is the fallback.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

use service_kit::EnvError;

use crate::error::{Error, Result};
use crate::todo_api::one_line;

/// Where `tool` is: in `configured` (PG_BIN_DIR) only, if set.
pub fn find(tool: &'static str, configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = configured {
        let path = dir.join(tool);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(EnvError::invalid("PG_BIN_DIR", format!("{} has no {tool}", dir.display())).into())
        };
    }
    service_kit::postgres::newest_installed(tool)
        .or_else(|| on_path(tool))
        .ok_or(Error::ToolNotFound { tool })
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
}

/// A database URL split for the tools: the password travels in
/// `PGPASSWORD`, never on the command line where `ps` would show it.
pub struct Connection {
    url: String,
    password: Option<SecretString>,
}

impl Connection {
    pub fn new(url: &SecretString) -> Self {
        let raw = url.expose_secret();
        match Url::parse(raw) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let password = percent_decode(parsed.password().unwrap_or_default());
                if parsed.set_password(None).is_ok() {
                    return Self {
                        url: parsed.to_string(),
                        password: Some(SecretString::from(password)),
                    };
                }
                Self::as_is(raw)
            }
            _ => Self::as_is(raw),
        }
    }

    fn as_is(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            password: None,
        }
    }
}

/// Runs `tool` against `connection`; its stdout on success, its last
/// words (on one line) on failure. Never prompts for a password.
pub async fn run(
    tool: &'static str,
    program: &Path,
    connection: Option<&Connection>,
    args: &[&std::ffi::OsStr],
) -> Result<String> {
    let mut command = Command::new(program);
    command
        .arg("--no-password")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(connection) = connection {
        command.arg(format!("--dbname={}", connection.url));
        if let Some(password) = &connection.password {
            command.env("PGPASSWORD", password.expose_secret());
        }
    }
    let output = command.output().await.map_err(Error::io(program))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let tail = last_lines[last_lines.len().saturating_sub(3)..].join("; ");
    Err(Error::ToolFailed {
        tool,
        status: output.status.to_string(),
        stderr: one_line(&tail, 400),
    })
}

/// `%40` → `@`: URL passwords are percent-encoded, `PGPASSWORD` is not.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_decoded() {
        let connection = Connection::new(&SecretString::from(
            "postgres://docket:p%40ss%2Fw@db:5432/docket?sslmode=require",
        ));
        assert_eq!(
            connection.url,
            "postgres://docket@db:5432/docket?sslmode=require"
        );
        assert_eq!(connection.password.unwrap().expose_secret(), "p@ss/w");
    }

    #[test]
    fn a_url_without_password_is_passed_as_is() {
        let url = "postgres://postgres@127.0.0.1:5432/postgres";
        let connection = Connection::new(&SecretString::from(url));
        assert_eq!(connection.url, url);
        assert!(connection.password.is_none());
    }

    #[test]
    fn percent_decoding_leaves_stray_percent_signs() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%41b"), "Ab");
    }
}
