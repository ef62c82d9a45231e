//! Locating the workspace and free ports.

use test_support::{free_port, port_is_free, workspace_root};

#[test]
fn the_workspace_root_holds_the_virtual_manifest() {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"));
}

#[test]
fn a_free_port_can_be_bound_and_a_bound_one_is_not_free() {
    let port = free_port();
    assert!(port_is_free(port));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    assert!(!port_is_free(port));
    drop(listener);
}
