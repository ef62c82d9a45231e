//! `gitops`: moves a Docket release along through the config repository.
//!
//! Docket keeps deployment configuration in its own repository, watched by
//! Argo CD: staging follows `main`, production follows `vX.Y.Z` tags. This
//! crate is the one way CI and people change it (see the README's "Release
//! flow"): [`commands`] holds one module per subcommand; [`overlay`] the
//! surgical `images:` edits; [`verified`] the marker `promote` requires;
//! [`analysis`] judges a canary with the project's AnalysisTemplates as Argo
//! Rollouts would, against a real Prometheus; [`verification`] holds the
//! checks `verify-env` makes (through [`argocd`], Prometheus and the
//! environment's URL) before it writes that marker.

pub mod analysis;
pub mod argocd;
pub mod commands;
pub mod delivery;
pub mod error;
pub mod git;
pub mod overlay;
pub mod verification;
pub mod verified;

pub use error::{GitopsError, exit_code};
