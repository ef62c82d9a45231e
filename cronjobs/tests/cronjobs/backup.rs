//! `cronjobs backup` and `cronjobs restore <file>` against real PostgreSQL.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sqlx::PgPool;
use test_support::test_database;

use crate::helpers::{TodoApp, assert_success, cronjobs, one_line_failure};

/// Backups in `dir`, by name, oldest first.
fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

async fn all_todos(db: &PgPool) -> Vec<(uuid::Uuid, String, bool)> {
    sqlx::query_as("select id, text, done from todos order by id")
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn backup_then_restore_into_an_empty_database_gives_back_every_todo() {
    let app = TodoApp::spawn().await;
    for text in [
        "Buy milk",
        "Read a book",
        "Call mum",
        "Ünïcödé ✓",
        "Water plants",
    ] {
        app.create(text).await;
    }
    sqlx::query("update todos set done = true where text = 'Call mum'")
        .execute(&app.db)
        .await
        .unwrap();
    let original = all_todos(&app.db).await;
    let parent = tempfile::tempdir().unwrap();
    let folder = parent.path().join("backups");

    let output = cronjobs(
        &["backup"],
        &[
            ("DATABASE_URL", app.database.url.clone()),
            ("BACKUP_DIR", folder.display().to_string()),
        ],
    )
    .await;
    assert_success(&output);
    let files = backups(&folder);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &names(&files)[0];
    assert!(
        name.starts_with("docket-") && name.ends_with("Z.dump"),
        "{name}"
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&files[0]),
        0o600,
        "a dump is readable by its owner only"
    );
    assert_eq!(mode(&folder), 0o700, "the folder the job made is private");

    let empty = test_database().await.unwrap();
    let output = cronjobs(
        &["restore", files[0].to_str().unwrap()],
        &[("DATABASE_URL", empty.url.clone())],
    )
    .await;
    assert_success(&output);

    let restored = PgPool::connect(&empty.url).await.unwrap();
    assert_eq!(all_todos(&restored).await, original);
    assert_eq!(original.len(), 5);
}

#[tokio::test]
async fn retention_keeps_the_newest_backups_and_leaves_other_files_alone() {
    let app = TodoApp::spawn().await;
    app.create("Something to back up").await;
    let dir = tempfile::tempdir().unwrap();
    // An older backup and a file that is not a backup at all.
    std::fs::write(dir.path().join("docket-20000101T000000.000Z.dump"), b"old").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
    let env = [
        ("DATABASE_URL", app.database.url.clone()),
        ("BACKUP_DIR", dir.path().display().to_string()),
        ("BACKUP_KEEP", "2".to_owned()),
    ];

    assert_success(&cronjobs(&["backup"], &env).await);
    let after_first = names(&backups(dir.path()));
    assert_success(&cronjobs(&["backup"], &env).await);
    let after_second = names(&backups(dir.path()));

    assert_eq!(after_first.len(), 3, "{after_first:?}");
    assert_eq!(after_second.len(), 3, "{after_second:?}");
    assert!(!after_second.contains(&"docket-20000101T000000.000Z.dump".to_owned()));
    assert!(after_second.contains(&"notes.txt".to_owned()));
    // The first real backup survives next to the second: the newest two.
    assert!(
        after_second.contains(&after_first[1]),
        "{after_first:?} {after_second:?}"
    );
}

#[tokio::test]
async fn a_backup_that_fails_leaves_no_file_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::free_port();

    let output = cronjobs(
        &["backup"],
        &[
            (
                "DATABASE_URL",
                format!("postgres://postgres:hunter2@127.0.0.1:{port}/docket"),
            ),
            ("BACKUP_DIR", dir.path().display().to_string()),
        ],
    )
    .await;

    let stderr = one_line_failure(&output);
    assert!(
        stderr.starts_with("cronjobs backup: pg_dump failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(backups(dir.path()).is_empty(), "{:?}", backups(dir.path()));
}

#[tokio::test]
async fn restoring_a_missing_file_names_it() {
    let database = test_database().await.unwrap();

    let output = cronjobs(
        &["restore", "/nonexistent/docket-x.dump"],
        &[("DATABASE_URL", database.url.clone())],
    )
    .await;

    let stderr = one_line_failure(&output);
    assert!(stderr.contains("/nonexistent/docket-x.dump"), "{stderr}");
}
