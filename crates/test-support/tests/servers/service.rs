//! Spawned binaries: readiness, captured output, early exits, signals.
//!
//! nats-server stands in for a workspace service: it is a real binary with a
//! real HTTP readiness endpoint (`/healthz` on its monitoring port).

use std::path::Path;
use std::time::Duration;

use test_support::{Service, ServiceCommand, free_port, nats_server_path};

use crate::helpers::assert_error_mentions;

#[tokio::test]
async fn a_service_is_ready_once_its_url_answers_and_stops_on_sigterm() {
    let monitor = free_port();
    let nats = nats_server_path().unwrap();
    let (port, monitor_arg) = (free_port().to_string(), monitor.to_string());
    let mut service = Service::spawn(
        &nats,
        &["-a", "127.0.0.1", "-p", &port, "-m", &monitor_arg],
        &[],
        &format!("http://127.0.0.1:{monitor}/healthz"),
    )
    .await
    .unwrap();

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = client
        .get(format!("http://127.0.0.1:{monitor}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(service.try_wait().unwrap().is_none());

    service.terminate();
    service.wait(Duration::from_secs(10)).await.unwrap();
    assert!(
        service.output().contains("Server is ready"),
        "output was:\n{}",
        service.output()
    );
}

#[tokio::test]
async fn a_service_that_exits_early_fails_with_its_output() {
    let error = Service::spawn(
        Path::new("/bin/sh"),
        &["-c", "echo 'config is broken' >&2; exit 3"],
        &[],
        &format!("http://127.0.0.1:{}/readyz", free_port()),
    )
    .await
    .unwrap_err();

    assert_error_mentions(&error, "exited");
    assert_error_mentions(&error, "config is broken");
}

#[tokio::test]
async fn a_service_that_never_gets_ready_fails_at_the_deadline() {
    let error = ServiceCommand::new("/bin/sleep", format!("http://127.0.0.1:{}/", free_port()))
        .arg("30")
        .ready_timeout(Duration::from_millis(500))
        .spawn()
        .await
        .unwrap_err();

    assert_error_mentions(&error, "was not ready within");
}

#[tokio::test]
async fn environment_variables_reach_the_service() {
    let mut service = ServiceCommand::new("/bin/sh", format!("http://127.0.0.1:{}/", free_port()))
        .arg("-c")
        .arg("echo \"greeting=$GREETING\"; exit 0")
        .env("GREETING", "hello")
        .spawn()
        .await;
    // It exits at once, so spawning fails; the error carries what it printed.
    let error = service.as_mut().unwrap_err();
    assert_error_mentions(error, "greeting=hello");
}

#[tokio::test]
async fn a_readiness_url_off_the_machine_is_refused() {
    let error = ServiceCommand::new("/bin/true", "http://example.com/readyz")
        .spawn()
        .await
        .unwrap_err();

    assert_error_mentions(&error, "loopback");
}
