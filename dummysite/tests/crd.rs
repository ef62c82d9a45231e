//! The committed CRD is the one the Rust types generate.

#[test]
fn the_committed_crd_is_generated_from_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kustomize/components/dummysite/crd.yaml"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == dummysite::crd_yaml(),
        "{path} is not what the types generate: run `cargo run -p dummysite -- crd > kustomize/components/dummysite/crd.yaml`"
    );
}
