//! Each test gets a fresh, empty database of its own.

use sqlx::{Connection, PgConnection};
use test_support::{Postgres, ensure_database, test_database};

#[tokio::test]
async fn each_test_database_is_new_empty_and_reachable() {
    let first = test_database().await.unwrap();
    let second = test_database().await.unwrap();
    assert_ne!(first.name, second.name);
    assert!(first.name.starts_with("test_"));

    for database in [&first, &second] {
        let mut connection = PgConnection::connect(&database.url).await.unwrap();
        let (name, tables): (String, i64) = sqlx::query_as(
            "select current_database()::text, \
             (select count(*) from information_schema.tables where table_schema = 'public')",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        assert_eq!(name, database.name);
        assert_eq!(tables, 0);
    }
}

#[tokio::test]
async fn ensure_database_creates_once_and_then_reuses() {
    let postgres = Postgres::start().unwrap();

    let first = ensure_database(&postgres.url(), "docket").await.unwrap();
    let again = ensure_database(&postgres.url(), "docket").await.unwrap();

    assert_eq!(first, again);
    assert!(first.ends_with("/docket"), "unexpected URL {first}");
    let mut connection = PgConnection::connect(&first).await.unwrap();
    let name: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(name, "docket");
}

#[tokio::test]
async fn a_cluster_skips_fsync_but_alter_system_can_turn_it_on() {
    let postgres = Postgres::start().unwrap();
    let mut connection = PgConnection::connect(&postgres.url()).await.unwrap();
    assert_eq!(fsync(&mut connection).await, "off");

    sqlx::raw_sql("alter system set fsync = on")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::raw_sql("select pg_reload_conf()")
        .execute(&mut connection)
        .await
        .unwrap();
    // A new session starts after the reload, with the new setting.
    let mut fresh = PgConnection::connect(&postgres.url()).await.unwrap();
    assert_eq!(fsync(&mut fresh).await, "on");
}

async fn fsync(connection: &mut PgConnection) -> String {
    sqlx::query_scalar("show fsync")
        .fetch_one(connection)
        .await
        .unwrap()
}
