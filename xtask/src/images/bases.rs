//! The images the Dockerfiles build `FROM`, and stand-ins for them where
//! they cannot be pulled.
//!
//! Where a registry is unreachable (this machine reaches only the package
//! registries), each base is made from Debian packages under the very name
//! the Dockerfile uses, so the Dockerfiles build unchanged:
//! - `rust:…-slim-bookworm`: Debian minbase (debootstrap), gcc and libc6-dev,
//!   and the toolchain of the machine, with cargo on the same PATH as the
//!   real image; the machine's extra CA certificates too, so `cargo install`
//!   reaches crates.io through an intercepting proxy.
//! - `gcr.io/distroless/cc-debian12:nonroot`: the Debian packages distroless
//!   `cc` is made of, unpacked into an empty image, with the `nonroot` user
//!   (65532) and no shell.
//! - `postgres:…-bookworm`: Debian minbase with Debian's PostgreSQL client
//!   (15 on bookworm): the cronjobs image needs `pg_dump` and `psql` only.
//!
//! Stand-ins carry the label [`STAND_IN_LABEL`] and are kept between runs.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

use super::podman::{Podman, captured, images_dir};
use crate::workspace::{Workspace, run_checked};

/// Set on every stand-in image, saying what it was made from.
pub const STAND_IN_LABEL: &str = "dev.docket.stand-in";

/// The Debian release every base is built on.
const SUITE: &str = "bookworm";
const MINBASE: &str = "localhost/debian:bookworm-minbase";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// Where a base came from, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Already in local storage (pulled earlier, or the real one).
    Local,
    Pulled,
    /// A stand-in from a previous run.
    CachedStandIn,
    /// A stand-in made now.
    NewStandIn,
}

/// The external images a Dockerfile builds `FROM`, fully qualified, with
/// `ARG` defaults declared before the first `FROM` substituted. Stages the
/// file names itself (`FROM chef AS builder`) are not images.
pub fn bases_of(dockerfile: &str) -> anyhow::Result<Vec<String>> {
    let mut args = BTreeMap::new();
    let mut stages = Vec::new();
    let mut bases = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("ARG") if stages.is_empty() && bases.is_empty() => {
                if let Some((name, value)) = words.next().and_then(|a| a.split_once('=')) {
                    args.insert(name.to_owned(), value.to_owned());
                }
            }
            Some("FROM") => {
                let image = words
                    .find(|word| !word.starts_with("--"))
                    .with_context(|| format!("`{line}` names no image"))?;
                let image = substitute(image, &args)?;
                if !stages.contains(&image)
                    && image != "scratch"
                    && !bases.contains(&qualified(&image))
                {
                    bases.push(qualified(&image));
                }
                if let (Some(as_word), Some(stage)) = (words.next(), words.next())
                    && as_word.eq_ignore_ascii_case("AS")
                {
                    stages.push(stage.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(bases)
}

/// `${NAME}` and `$NAME` replaced by the ARG defaults.
fn substitute(text: &str, args: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = text.to_owned();
    for (name, value) in args {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    if out.contains('$') {
        bail!("`{text}` uses an ARG with no default");
    }
    Ok(out)
}

/// Docker's short names in full: `rust:1` is `docker.io/library/rust:1`.
pub fn qualified(image: &str) -> String {
    match image.split_once('/') {
        None => format!("docker.io/library/{image}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            image.to_owned()
        }
        Some(_) => format!("docker.io/{image}"),
    }
}

/// Makes `base` available locally: as it is, pulled (unless `stand_ins`),
/// or as a stand-in.
pub fn ensure(
    workspace: &Workspace,
    podman: &Podman,
    base: &str,
    stand_ins: bool,
) -> anyhow::Result<Origin> {
    if podman.image_exists(base) {
        let is_stand_in = podman.label(base, STAND_IN_LABEL)?.is_some();
        return Ok(if is_stand_in {
            Origin::CachedStandIn
        } else {
            Origin::Local
        });
    }
    if !stand_ins {
        let mut pull = podman.command();
        pull.args(["pull", "--quiet", base]);
        match captured(&mut pull) {
            Ok(_) => return Ok(Origin::Pulled),
            Err(error) => println!("images: cannot pull {base} ({error:#}); making a stand-in"),
        }
    }
    let recipe = StandIn::for_base(base)?;
    make_minbase(workspace, podman)?;
    let context = images_dir(workspace).join(format!("stand-in-{}", recipe.short_name()));
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&context)?;
    if recipe == StandIn::RustBuilder {
        fill_rust_context(workspace, &context)?;
    }
    std::fs::write(context.join("Containerfile"), recipe.containerfile())?;
    podman.run(
        &[
            "build",
            "--pull=never",
            "--network=host",
            "--label",
            &format!("{STAND_IN_LABEL}={}", recipe.description()),
            "--tag",
            base,
            &context.to_string_lossy(),
        ],
        &format!("building the stand-in for {base}"),
    )?;
    std::fs::remove_dir_all(&context)?;
    Ok(Origin::NewStandIn)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StandIn {
    RustBuilder,
    Distroless,
    PostgresClient,
}

impl StandIn {
    fn for_base(base: &str) -> anyhow::Result<StandIn> {
        let repository = base.rsplit_once(':').map_or(base, |(repo, _)| repo);
        match repository {
            "docker.io/library/rust" => Ok(StandIn::RustBuilder),
            "gcr.io/distroless/cc-debian12" => Ok(StandIn::Distroless),
            "docker.io/library/postgres" => Ok(StandIn::PostgresClient),
            _ => bail!("{base} cannot be pulled and there is no stand-in for it"),
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            StandIn::RustBuilder => "rust",
            StandIn::Distroless => "distroless",
            StandIn::PostgresClient => "postgres",
        }
    }

    fn description(self) -> &'static str {
        match self {
            StandIn::RustBuilder => {
                "Debian bookworm minbase, gcc, libc6-dev and this machine's Rust toolchain"
            }
            StandIn::Distroless => {
                "the Debian bookworm packages distroless cc is made of, user nonroot (65532), no shell"
            }
            StandIn::PostgresClient => {
                "Debian bookworm minbase with Debian's postgresql-client (15)"
            }
        }
    }

    fn containerfile(self) -> String {
        match self {
            StandIn::RustBuilder => format!(
                "FROM {MINBASE}\n\
                 RUN apt-get update \\\n \
                 && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \\\n \
                 && rm -rf /var/lib/apt/lists/*\n\
                 COPY ca/ /usr/local/share/ca-certificates/\n\
                 RUN update-ca-certificates\n\
                 COPY toolchain/ /usr/local/rust/\n\
                 RUN mkdir -p /usr/local/cargo/bin \\\n \
                 && for tool in /usr/local/rust/bin/*; do ln -s \"$tool\" /usr/local/cargo/bin/; done\n\
                 ENV CARGO_HOME=/usr/local/cargo \
                 PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            ),
            StandIn::Distroless => format!(
                "FROM {MINBASE} AS packages\n\
                 RUN apt-get update \\\n \
                 && apt-get install -y --no-install-recommends ca-certificates \\\n \
                 && mkdir /rootfs /debs && cd /debs \\\n \
                 && apt-get download libc6 libgcc-s1 libstdc++6 libssl3 ca-certificates tzdata netbase base-files \\\n \
                 && for deb in *.deb; do dpkg -x \"$deb\" /rootfs; done \\\n \
                 && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/man /rootfs/usr/share/info /rootfs/usr/share/lintian \\\n \
                 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot \\\n \
                 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \\\n \
                 && printf 'root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\\n' > /rootfs/etc/passwd \\\n \
                 && printf 'root:x:0:\\nnobody:x:65534:\\nnonroot:x:65532:\\n' > /rootfs/etc/group \\\n \
                 && chmod 1777 /rootfs/tmp && chown 65532:65532 /rootfs/home/nonroot\n\
                 FROM scratch\n\
                 COPY --from=packages /rootfs/ /\n\
                 USER 65532:65532\n\
                 WORKDIR /home/nonroot\n"
            ),
            StandIn::PostgresClient => format!(
                "FROM {MINBASE}\n\
                 RUN apt-get update \\\n \
                 && apt-get install -y --no-install-recommends postgresql-client \\\n \
                 && rm -rf /var/lib/apt/lists/*\n"
            ),
        }
    }
}

/// Debian minbase, made once with debootstrap and imported.
fn make_minbase(workspace: &Workspace, podman: &Podman) -> anyhow::Result<()> {
    if podman.image_exists(MINBASE) {
        return Ok(());
    }
    let rootfs = images_dir(workspace).join("minbase-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    run_checked(
        workspace
            .command("debootstrap")
            .args(["--variant=minbase", SUITE])
            .arg(&rootfs)
            .arg(DEBIAN_MIRROR),
        "debootstrap of the Debian minbase",
    )?;
    let mut import = podman.command();
    import.args(["import", "-", MINBASE]);
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running tar")?;
    import.stdin(tar.stdout.context("tar's output")?);
    captured(&mut import).context("importing the Debian minbase")?;
    std::fs::remove_dir_all(&rootfs)?;
    Ok(())
}

/// The build context of the Rust stand-in: the running toolchain (hard
/// links: no copy) and the machine's extra CA certificates.
fn fill_rust_context(workspace: &Workspace, context: &Path) -> anyhow::Result<()> {
    let sysroot = captured(workspace.command("rustc").args(["--print", "sysroot"]))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let toolchain = context.join("toolchain");
    // Hard links when on one filesystem, a copy otherwise.
    let linked = std::process::Command::new("cp")
        .arg("-al")
        .arg(format!("{sysroot}/."))
        .arg(&toolchain)
        .status()
        .is_ok_and(|status| status.success());
    if !linked {
        let _ = std::fs::remove_dir_all(&toolchain);
        run_checked(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{sysroot}/."))
                .arg(&toolchain),
            "copying the Rust toolchain",
        )?;
    }
    // Documentation is not needed to build.
    let _ = std::fs::remove_dir_all(toolchain.join("share/doc"));
    let ca = context.join("ca");
    std::fs::create_dir_all(&ca)?;
    if let Ok(entries) = std::fs::read_dir("/usr/local/share/ca-certificates") {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                std::fs::copy(&path, ca.join(entry.file_name()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bases_of_each_dockerfile_are_its_external_images_with_args_filled_in() {
        let root = test_support::workspace_root();
        let read = |name: &str| std::fs::read_to_string(root.join("docker").join(name)).unwrap();
        let services = bases_of(&read("services.Dockerfile")).unwrap();
        assert_eq!(
            services,
            [
                "docker.io/library/rust:1.95-slim-bookworm",
                "gcr.io/distroless/cc-debian12:nonroot",
                "docker.io/library/postgres:17.6-bookworm"
            ]
        );
        for base in services {
            StandIn::for_base(&base).unwrap();
        }
    }

    #[test]
    fn an_arg_without_a_default_is_refused() {
        let error = bases_of("ARG TAG\nFROM rust:${TAG}\n").unwrap_err();
        assert!(error.to_string().contains("no default"), "{error}");
    }

    #[test]
    fn short_names_are_qualified_as_docker_does() {
        assert_eq!(qualified("rust:1"), "docker.io/library/rust:1");
        assert_eq!(qualified("bitnami/nats:2"), "docker.io/bitnami/nats:2");
        assert_eq!(qualified("gcr.io/distroless/cc"), "gcr.io/distroless/cc");
        assert_eq!(qualified("localhost/debian:12"), "localhost/debian:12");
    }
}
