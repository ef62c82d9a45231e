//! A private nats-server restarts on the same port and keeps JetStream data.

use async_nats::jetstream::{self, stream};
use test_support::{Nats, Role, free_port};

use crate::helpers::assert_a_taken_port_is_reported;

async fn publish_to_new_stream(url: &str, stream_name: &str, count: usize) {
    let client = async_nats::connect(url).await.unwrap();
    let context = jetstream::new(client);
    context
        .create_stream(stream::Config {
            name: stream_name.to_string(),
            subjects: vec![format!("{}.>", stream_name.to_lowercase())],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..count {
        context
            .publish(
                format!("{}.event", stream_name.to_lowercase()),
                format!("message {i}").into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn stored_messages(url: &str, stream_name: &str) -> u64 {
    let client = async_nats::connect(url).await.unwrap();
    let context = jetstream::new(client);
    let mut stream = context.get_stream(stream_name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn a_restarted_server_keeps_its_jetstream_streams_and_messages() {
    let mut nats = Nats::start().unwrap();
    publish_to_new_stream(&nats.url(), "KEPT", 3).await;

    nats.stop().unwrap();
    assert!(!nats.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", nats.port())).is_err(),
        "a stopped server still accepts connections"
    );

    nats.start_again().unwrap();
    assert!(nats.is_running());
    assert_eq!(stored_messages(&nats.url(), "KEPT").await, 3);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let stream = jetstream::new(client).get_stream("KEPT").await.unwrap();
    let first = stream.get_raw_message(1).await.unwrap();
    assert_eq!(&first.payload[..], b"message 0");
}

#[tokio::test]
async fn start_in_keeps_the_store_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let nats = Nats::start_in(dir.path(), free_port()).unwrap();
        publish_to_new_stream(&nats.url(), "RUNS", 2).await;
    }

    let nats = Nats::start_in(dir.path(), free_port()).unwrap();

    assert_eq!(stored_messages(&nats.url(), "RUNS").await, 2);
}

#[test]
fn a_taken_port_is_reported_as_taken() {
    assert_a_taken_port_is_reported(Nats::start_in);
}

#[test]
fn test_nats_uses_nats_url_or_a_private_server() {
    let nats = test_support::test_nats().unwrap();
    match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            assert_eq!(nats.url, url);
            assert!(nats.server.is_none());
        }
        _ => {
            let server = nats.server.as_ref().unwrap();
            assert_eq!(nats.url, server.url());
            assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_ok());
        }
    }
}

#[tokio::test]
async fn a_secured_server_lets_in_its_users_only_and_stays_secured_after_a_restart() {
    let mut nats = Nats::start_secured().unwrap();
    assert!(nats.is_secured());
    for role in Role::ALL {
        let env = nats.service_env(role);
        assert_eq!(env[0], ("NATS_URL", nats.url()));
        assert_eq!(env[1], ("NATS_USER", role.user().to_owned()));
        nats.connect(role).await.unwrap();
    }
    let anonymous = async_nats::connect(nats.url()).await;
    assert!(anonymous.is_err(), "an anonymous client got in");

    nats.stop().unwrap();
    nats.start_again().unwrap();

    nats.connect(Role::App).await.unwrap();
    assert!(async_nats::connect(nats.url()).await.is_err());
}

#[test]
fn an_open_server_has_no_users() {
    let nats = Nats::start().unwrap();
    assert!(!nats.is_secured());
    assert!(nats.credentials(Role::App).is_none());
    assert_eq!(nats.service_env(Role::App), [("NATS_URL", nats.url())]);
}

#[test]
fn debug_output_of_a_secured_server_shows_no_password() {
    let nats = Nats::start_secured().unwrap();
    let debug = format!("{nats:?}");
    for role in Role::ALL {
        let credentials = nats.credentials(role).unwrap();
        let password = secrecy::ExposeSecret::expose_secret(credentials.password());
        assert!(!debug.contains(password), "{debug}");
    }
    assert!(debug.contains("broadcaster"), "{debug}");
}
