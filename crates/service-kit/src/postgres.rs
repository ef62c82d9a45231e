//! Where the PostgreSQL programs are: Debian installs each major version's
//! under `/usr/lib/postgresql/VERSION/bin`, beside each other and off the
//! `PATH`.

use std::fs;
use std::path::PathBuf;

/// `tool` (`pg_dump`, `initdb`) of the newest PostgreSQL installed under
/// `/usr/lib/postgresql` that has it, if any.
pub fn newest_installed(tool: &str) -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let path = entry.path().join("bin").join(tool);
            path.is_file().then_some((version, path))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, path)| path)
}
