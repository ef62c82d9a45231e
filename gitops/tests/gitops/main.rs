//! Integration tests of `gitops`: real git (bare config repositories in
//! temp folders), the real binary, real apps and a real Prometheus.

mod analysis;
mod config_repo;
mod full_story;
mod helpers;
