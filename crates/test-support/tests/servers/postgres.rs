//! A private cluster starts, stops, starts again and keeps its data.

use sqlx::{Connection, Executor, PgConnection};
use test_support::{Postgres, free_port};

use crate::helpers::assert_a_taken_port_is_reported;

async fn connect(postgres: &Postgres) -> sqlx::Result<PgConnection> {
    PgConnection::connect(&postgres.url()).await
}

/// Runs `sql` on a connection of its own, closed before returning.
async fn execute(postgres: &Postgres, sql: &str) {
    let mut connection = connect(postgres).await.unwrap();
    connection.execute(sql).await.unwrap();
    connection.close().await.unwrap();
}

#[tokio::test]
async fn a_stopped_cluster_refuses_connections_and_keeps_its_data_when_started_again() {
    let mut postgres = Postgres::start().unwrap();
    execute(
        &postgres,
        "create table kept (value text); insert into kept values ('still here');",
    )
    .await;

    postgres.stop().unwrap();
    assert!(!postgres.is_running());
    assert!(
        connect(&postgres).await.is_err(),
        "a stopped server answered"
    );

    postgres.start_again().unwrap();
    assert!(postgres.is_running());
    let mut connection = connect(&postgres).await.unwrap();
    let value: String = sqlx::query_scalar("select value from kept")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(value, "still here");
}

#[tokio::test]
async fn start_in_reuses_the_cluster_already_in_its_folder_even_on_another_port() {
    let dir = tempfile::tempdir().unwrap();
    {
        let postgres = Postgres::start_in(dir.path(), free_port()).unwrap();
        execute(&postgres, "create database docket_kept").await;
    } // dropped: stopped immediately, as a killed `cargo xtask up` would be

    let postgres = Postgres::start_in(dir.path(), free_port()).unwrap();
    let mut connection = connect(&postgres).await.unwrap();
    let exists: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_database where datname = 'docket_kept')",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert!(exists, "the database created in the first run is gone");
}

#[test]
fn a_taken_port_is_reported_as_taken() {
    assert_a_taken_port_is_reported(Postgres::start_in);
}

#[tokio::test]
async fn the_server_only_listens_on_loopback_and_speaks_utf8() {
    let postgres = Postgres::start().unwrap();
    let mut connection = connect(&postgres).await.unwrap();

    let (listen, encoding): (String, String) = sqlx::query_as(
        "select current_setting('listen_addresses'), current_setting('server_encoding')",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();

    assert_eq!(listen, "127.0.0.1");
    assert_eq!(encoding, "UTF8");
}
