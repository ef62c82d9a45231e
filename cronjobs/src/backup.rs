//! `cronjobs backup` and `cronjobs restore <file>`.
//!
//! A backup is `pg_dump --format=custom` of `DATABASE_URL`, written under a
//! hidden temporary name in `BACKUP_DIR`, verified by listing its contents
//! with `pg_restore --list`, and only then renamed to
//! `docket-<UTC timestamp>.dump`. A failed or interrupted run therefore never
//! leaves a file that looks like a backup, and retention (the newest
//! `BACKUP_KEEP` are kept) only ever counts verified ones. Files in
//! `BACKUP_DIR` that are not named like a backup are left alone.
//!
//! A restore replaces what the dump holds in `DATABASE_URL` (`--clean
//! --if-exists`), in one transaction: it either all lands or nothing changes.
//! Objects are owned by the restoring user (`--no-owner --no-privileges`),
//! so a dump restores into any cluster.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::macros::format_description;

use crate::cli::RestoreArgs;
use service_kit::Env;

use crate::config::{BackupConfig, DatabaseConfig};
use crate::error::{Error, Result};
use crate::pg_tools::{self, Connection};

const PREFIX: &str = "docket-";
const SUFFIX: &str = ".dump";

/// What one backup run did.
#[derive(Debug)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    /// Entries in the dump's table of contents.
    pub entries: usize,
    pub removed: Vec<PathBuf>,
}

/// `cronjobs backup`.
pub async fn run_backup() -> anyhow::Result<()> {
    let config = BackupConfig::read(&Env::process())?;
    let report = backup(&config).await?;
    tracing::info!(
        file = %report.file.display(),
        bytes = report.bytes,
        entries = report.entries,
        removed = report.removed.len(),
        "backup written and verified"
    );
    Ok(())
}

/// `cronjobs restore <file>`.
pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let database = DatabaseConfig::read(&Env::process())?;
    restore(&database, &args.file).await?;
    tracing::info!(file = %args.file.display(), "backup restored");
    Ok(())
}

pub async fn backup(config: &BackupConfig) -> Result<BackupReport> {
    let pg_dump = pg_tools::find("pg_dump", config.database.pg_bin_dir.as_deref())?;
    let pg_restore = pg_tools::find("pg_restore", config.database.pg_bin_dir.as_deref())?;
    let dir = &config.backup_dir;
    // A dump holds every todo: only the job's own user may read it. A new
    // folder is made private too; an existing one is the operator's call.
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(Error::io(dir))?;

    let name = backup_name(OffsetDateTime::now_utc());
    let file = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let connection = Connection::new(&config.database.url);
    let written = async {
        // Created here with mode 0600 before pg_dump opens it: pg_dump keeps
        // an existing file's mode, and its own would follow the umask
        // (usually world-readable) for the whole time it writes.
        private_file(&partial).await?;
        pg_tools::run(
            "pg_dump",
            &pg_dump,
            Some(&connection),
            &[
                OsStr::new("--format=custom"),
                OsStr::new("--file"),
                partial.as_os_str(),
            ],
        )
        .await?;
        let entries = verify(&pg_restore, &partial).await?;
        tokio::fs::rename(&partial, &file)
            .await
            .map_err(Error::io(&file))?;
        Ok::<_, Error>(entries)
    }
    .await;
    let entries = match written {
        Ok(entries) => entries,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    let bytes = tokio::fs::metadata(&file)
        .await
        .map_err(Error::io(&file))?
        .len();
    let removed = apply_retention(dir, config.keep.get()).await?;
    Ok(BackupReport {
        file,
        bytes,
        entries,
        removed,
    })
}

pub async fn restore(database: &DatabaseConfig, file: &Path) -> Result<()> {
    let pg_restore = pg_tools::find("pg_restore", database.pg_bin_dir.as_deref())?;
    // A clear message for the common mistake, before pg_restore's own.
    tokio::fs::metadata(file).await.map_err(Error::io(file))?;
    pg_tools::run(
        "pg_restore",
        &pg_restore,
        Some(&Connection::new(&database.url)),
        &[
            OsStr::new("--clean"),
            OsStr::new("--if-exists"),
            OsStr::new("--no-owner"),
            OsStr::new("--no-privileges"),
            OsStr::new("--single-transaction"),
            OsStr::new("--exit-on-error"),
            file.as_os_str(),
        ],
    )
    .await?;
    Ok(())
}

/// An empty file only its owner can read or write.
async fn private_file(path: &Path) -> Result<()> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(Error::io(path))?;
    Ok(())
}

/// A dump pg_restore cannot list, or one that lists nothing, is no backup.
async fn verify(pg_restore: &Path, file: &Path) -> Result<usize> {
    let listing = pg_tools::run(
        "pg_restore",
        pg_restore,
        None,
        &[OsStr::new("--list"), file.as_os_str()],
    )
    .await?;
    let entries = listing
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with(';'))
        .count();
    if entries == 0 {
        return Err(Error::Other(anyhow::anyhow!(
            "the new backup {} lists no contents; it was not kept",
            file.display()
        )));
    }
    Ok(entries)
}

/// `docket-20261122T031500.123Z.dump`: names sort in time order.
fn backup_name(now: OffsetDateTime) -> String {
    let stamp = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
        ))
        .expect("a UTC timestamp formats");
    format!("{PREFIX}{stamp}{SUFFIX}")
}

fn is_backup_name(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(SUFFIX)
}

/// The backups beyond the newest `keep`, oldest last.
fn expired(mut names: Vec<String>, keep: usize) -> Vec<String> {
    names.retain(|name| is_backup_name(name));
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.split_off(keep.min(names.len()))
}

async fn apply_retention(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await.map_err(Error::io(dir))?;
    while let Some(entry) = entries.next_entry().await.map_err(Error::io(dir))? {
        if entry.file_type().await.is_ok_and(|t| t.is_file())
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    let mut removed = Vec::new();
    for name in expired(names, keep) {
        let path = dir.join(name);
        tokio::fs::remove_file(&path)
            .await
            .map_err(Error::io(&path))?;
        tracing::info!(file = %path.display(), "removed an old backup");
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn names_carry_a_sortable_utc_timestamp() {
        assert_eq!(
            backup_name(datetime!(2026-11-22 03:15:00.123 UTC)),
            "docket-20261122T031500.123Z.dump"
        );
        assert!(
            backup_name(datetime!(2026-11-22 03:15:00 UTC))
                < backup_name(datetime!(2026-11-22 03:15:00.001 UTC))
        );
    }

    #[test]
    fn retention_drops_the_oldest_backups_and_nothing_else() {
        let names = [
            "docket-20261120T000000.000Z.dump",
            "docket-20261122T000000.000Z.dump",
            "notes.txt",
            ".docket-20261123T000000.000Z.dump.partial",
            "docket-20261121T000000.000Z.dump",
        ]
        .map(String::from)
        .to_vec();

        assert_eq!(
            expired(names.clone(), 2),
            ["docket-20261120T000000.000Z.dump"]
        );
        assert!(expired(names, 3).is_empty());
    }
}
