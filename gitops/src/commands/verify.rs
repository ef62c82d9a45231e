//! `gitops verify`: renders every overlay and validates it, exactly as
//! `cargo xtask manifests` does (both call the `manifests` crate), for CI and
//! pre-commit hooks. Run it in the application repository: the checks also
//! read `docker/` and `.github/`; the schemas are vendored in `kustomize/schemas/`.

use std::path::PathBuf;

use crate::error::GitopsError;
use crate::git::Repo;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkout holding kustomize/ and argocd/.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = Repo::open(&args.repo)?;
    manifests::validate(repo.dir()).map_err(GitopsError::InvalidManifests)?;
    println!("the deployment tree is valid");
    Ok(())
}
