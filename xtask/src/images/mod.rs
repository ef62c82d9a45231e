//! `cargo xtask images [--stand-ins]`: the three images built from the
//! unchanged `docker/services.Dockerfile` with podman, tagged with the commit,
//! exported as OCI layouts under `target/images/`, with their sizes.
//!
//! No Docker daemon is needed: podman builds the Dockerfiles as they are.
//! Where a base image cannot be pulled, a stand-in under the same name is
//! made from Debian packages first (see [`bases`]). podman's layer cache
//! keeps the dependency layers (cargo-chef) between runs, so a change to
//! Docket's own code rebuilds only its crates.

mod bases;
mod drain;
mod podman;
mod run;
mod scrape;
mod smoke;

use std::time::Instant;

use anyhow::Context;

use crate::install::{self, Tool};
use crate::workspace::Workspace;
use podman::{Podman, captured, images_dir};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Make every missing base image from Debian packages instead of trying
    /// to pull it (for machines that reach no container registry).
    #[arg(long)]
    pub stand_ins: bool,
    /// Then run the app's and the broadcaster's images as the staging
    /// overlay's pod templates run them, against a private PostgreSQL and
    /// nats-server, with the E2E suite against the app.
    #[arg(long)]
    pub smoke: bool,
}

/// The Dockerfile of the three images, one target each.
const DOCKERFILE: &str = "docker/services.Dockerfile";

/// An image this repository ships, and its target in [`DOCKERFILE`].
struct Image {
    name: &'static str,
    target: &'static str,
}

/// The images the cluster runs in every overlay. `docket-dummysite` (an
/// optional component's controller) is built by CI's `images` and
/// `dummysite-kind` jobs instead: it runs only against a real API server,
/// and its cold build would take `.ci/run` on a fresh machine past its
/// 45-minute budget.
const IMAGES: [Image; 3] = [
    Image {
        name: "docket-app",
        target: "app",
    },
    Image {
        name: "docket-broadcaster",
        target: "broadcaster",
    },
    Image {
        name: "docket-cronjobs",
        target: "cronjobs",
    },
];

/// What was built, for the report (and the smoke test).
#[derive(Debug)]
pub struct Built {
    /// `localhost/NAME:COMMIT`.
    pub reference: String,
    pub bytes: u64,
    pub seconds: f64,
}

pub fn run(workspace: &Workspace, args: &Args) -> anyhow::Result<()> {
    install::ensure(workspace, &[Tool::Containers])?;
    if args.smoke {
        install::ensure(
            workspace,
            &[
                Tool::Postgres,
                Tool::NatsServer,
                Tool::Nextest,
                Tool::Chromium,
                Tool::Node,
                Tool::PlaywrightDriver,
                Tool::PythonVenv,
            ],
        )?;
    }
    let podman = Podman::new(workspace)?;
    let built = build_all(workspace, &podman, args.stand_ins)?;
    let rows = built.iter().map(|image| {
        vec![
            image.reference.clone(),
            format!("{:.1} MB", image.bytes as f64 / 1e6),
            format!("{:.0} s", image.seconds),
        ]
    });
    print_table(&["image", "size", "build"], rows);
    if args.smoke {
        let outcomes = smoke::run(workspace, &podman, &built)?;
        let rows = outcomes.iter().map(|outcome| {
            vec![
                outcome.reference.clone(),
                format!("{:.1} MB", outcome.bytes as f64 / 1e6),
                format!("{:.1} s", outcome.ready_after.as_secs_f64()),
                outcome.e2e.clone(),
                outcome.analysis.clone(),
                outcome.checked.clone(),
            ]
        });
        print_table(
            &[
                "image",
                "size",
                "start to ready",
                "E2E",
                "analysis",
                "also checked",
            ],
            rows,
        );
    }
    println!(
        "\nOCI layouts: {}",
        images_dir(workspace).join("oci").display()
    );
    Ok(())
}

/// Makes the bases available, builds every image and exports it.
pub fn build_all(
    workspace: &Workspace,
    podman: &Podman,
    stand_ins: bool,
) -> anyhow::Result<Vec<Built>> {
    let commit = commit(workspace)?;
    let path = workspace.root().join(DOCKERFILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for base in bases::bases_of(&text)? {
        let origin = bases::ensure(workspace, podman, &base, stand_ins)?;
        println!("images: base {base}: {}", describe(&origin));
    }
    let mut built = Vec::new();
    // The first build compiles the three binaries in the shared builder
    // stage; the others take its layers from the cache.
    for image in &IMAGES {
        let reference = format!("localhost/{}:{commit}", image.name);
        let started = Instant::now();
        podman.run(
            &[
                "build",
                "--pull=never",
                // The builder stages download crates (cargo-chef, the crates.io index).
                "--network=host",
                "--layers",
                "--file",
                DOCKERFILE,
                "--target",
                image.target,
                "--build-arg",
                &format!("GIT_COMMIT={commit}"),
                "--tag",
                &reference,
                ".",
            ],
            &format!("building {}", image.name),
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let layout = images_dir(workspace).join("oci").join(image.name);
        podman.export_oci(&reference, &layout, &commit)?;
        built.push(Built {
            bytes: podman.size(&reference)?,
            reference,
            seconds,
        });
    }
    untag_older(podman, &commit)?;
    Ok(built)
}

/// Removes the tags of earlier commits' images, so one generation stays;
/// the build stages' cached layers are kept.
fn untag_older(podman: &Podman, commit: &str) -> anyhow::Result<()> {
    for image in &IMAGES {
        let listed = podman.output(&[
            "images",
            "--filter",
            &format!("reference=localhost/{}", image.name),
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])?;
        for reference in listed
            .lines()
            .filter(|r| !r.ends_with(&format!(":{commit}")))
        {
            // Named twice: `podman untag IMAGE` alone removes every name of
            // the image, and an image that came out byte for byte the same
            // (a reproducible build) carries this commit's tag as well.
            podman.output(&["untag", reference, reference])?;
        }
    }
    Ok(())
}

/// A Markdown table, so the report pastes into an issue or the README.
fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    println!("\n| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

fn describe(origin: &bases::Origin) -> &'static str {
    match origin {
        bases::Origin::Local => "local",
        bases::Origin::Pulled => "pulled",
        bases::Origin::CachedStandIn => "stand-in (kept from an earlier run)",
        bases::Origin::NewStandIn => "stand-in (made now from Debian packages)",
    }
}

/// The checked-out commit, which tags the images and is reported by
/// `GET /version`.
fn commit(workspace: &Workspace) -> anyhow::Result<String> {
    let output = captured(workspace.command("git").args(["rev-parse", "HEAD"]))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
