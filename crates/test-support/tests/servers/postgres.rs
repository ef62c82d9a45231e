//! A private cluster starts, stops, starts again and keeps its data.

use sqlx::{Connection, Executor, PgConnection};
use test_support::{Postgres, free_port};

async fn connect(postgres: &Postgres) -> sqlx::Result<PgConnection> {
    PgConnection::connect(&postgres.url()).await
}

#[tokio::test]
async fn a_stopped_cluster_refuses_connections_and_keeps_its_data_when_started_again() {
    let mut postgres = Postgres::start().unwrap();
    let mut connection = connect(&postgres).await.unwrap();
    connection
        .execute("create table kept (value text); insert into kept values ('still here');")
        .await
        .unwrap();
    connection.close().await.unwrap();

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
        let mut connection = connect(&postgres).await.unwrap();
        connection
            .execute("create database docket_kept")
            .await
            .unwrap();
        connection.close().await.unwrap();
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();

    let error = Postgres::start_in(dir.path(), port).unwrap_err();

    assert!(
        format!("{error:#}").contains(&format!("port {port} on 127.0.0.1 is taken")),
        "unexpected error: {error:#}"
    );
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
