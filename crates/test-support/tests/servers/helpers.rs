//! Checks more than one server kind's tests make.

use std::path::Path;

/// Fails the test unless `error`, with its causes, mentions `expected`.
#[track_caller]
pub fn assert_error_mentions(error: &anyhow::Error, expected: &str) {
    let message = format!("{error:#}");
    assert!(message.contains(expected), "unexpected error: {message}");
}

/// Starts a server with `start` in a fresh folder on a port another socket
/// holds, and checks the failure says the port is taken (rather than, say,
/// a server that died for a reason of its own).
#[track_caller]
pub fn assert_a_taken_port_is_reported<T>(start: impl FnOnce(&Path, u16) -> anyhow::Result<T>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();

    let Err(error) = start(dir.path(), port) else {
        panic!("a server started on the taken port {port}");
    };

    assert_error_mentions(&error, &format!("port {port} on 127.0.0.1 is taken"));
}
