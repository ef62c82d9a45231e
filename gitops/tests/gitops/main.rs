//! Integration tests of `gitops`: real git (bare config repositories in
//! temp folders), the real binary, real apps and a real Prometheus, and
//! stand-ins for Argo CD and a Kubernetes Service (`environment.rs`).

mod analysis;
mod config_repo;
mod environment;
mod full_story;
mod helpers;
mod verify_env;
