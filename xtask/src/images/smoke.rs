//! `cargo xtask images --smoke`: the images run the way the cluster runs
//! them.
//!
//! The staging overlay is rendered and the app's pod template is run under
//! podman with exactly its settings ([`super::run`]): its user, read-only
//! root, dropped capabilities, limits, environment from the ConfigMap and
//! the Secrets (stand-in values), command and arguments. A private
//! PostgreSQL and a nats-server with the shipped per-service users stand in
//! for the in-cluster Services, and a real OpenID provider (panva's
//! `oidc-provider`, as the tests run it) for staging's: its issuer and the
//! app's public address are the two values set over the rendered ones. The
//! Secret volumes are folders of stand-in files. The broadcaster's and `listen`'s pod
//! templates are run the same way. Each container must pass its readiness
//! probe as the kubelet checks it. A private Prometheus scrapes them as the
//! monitoring component's PodMonitor says ([`super::scrape`]). Then:
//! - the E2E suite runs against the app (`E2E_BASE_URL`), signing in
//!   through the provider's form as it does against staging;
//! - the Rollout's analysis steps judge the app as the canary on what
//!   Prometheus scraped, and must pass;
//! - the broadcaster, in staging's log mode, must log every event the suite
//!   made;
//! - the `wikipedia-todo` CronJob's pod must exit 0 having created its todo
//!   in the app, with a stand-in for Wikipedia's random article;
//! - production's `postgres-backup` CronJob's pod (the backup component)
//!   must exit 0 leaving a dump that lists the `todos` table, in a folder
//!   standing in for its claimed volume;
//! - the app is stopped as the kubelet stops a pod, under load: the preStop
//!   sleep, SIGTERM, exit 0 within the grace period, and every request that
//!   started before the signal answered 2xx ([`super::drain`]).
//!
//! The logs are kept under `target/images/smoke/logs/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use gitops::analysis::prometheus::Prometheus as PrometheusClient;
use manifests::pod::{self, Container, PodSpec, PortRef, ProbeAction, Workload};
use manifests::render::{Render, describe};
use test_support::articles::{Answer, ArticleServer};
use test_support::{
    Nats, OidcClient, OidcProvider, Postgres, Prometheus, Role, eventually, free_port,
    postgres_bin_dir, stored_messages,
};
use tokio::runtime::Runtime;

use super::Built;
use super::drain::Load;
use super::podman::{Podman, images_dir};
use super::run::{self, HOST_FROM_CONTAINER, Placement};
use super::scrape::{self, PodMonitor};
use crate::bench::STREAM;
use crate::install;
use crate::workspace::{Workspace, run_checked};

/// The overlay whose pod templates are run.
const OVERLAY: &str = "overlay/staging";
/// Where the backup component is (staging leaves it out).
const PRODUCTION: &str = "overlay/production";
/// A workload's container the smoke test runs, and its image.
struct Part {
    workload: &'static str,
    container: &'static str,
    image: &'static str,
}

impl Part {
    const fn new(workload: &'static str, container: &'static str, image: &'static str) -> Part {
        Part {
            workload,
            container,
            image,
        }
    }
}

const APP: Part = Part::new("Rollout/todo-app", "todo-app", "docket-app");
const BROADCASTER: Part = Part::new(
    "Deployment/broadcaster",
    "broadcaster",
    "docket-broadcaster",
);
const LISTEN: Part = Part::new("Deployment/listen", "listen", "docket-cronjobs");
const WIKIPEDIA_TODO: Part = Part::new(
    "CronJob/wikipedia-todo",
    "wikipedia-todo",
    "docket-cronjobs",
);
const BACKUP: Part = Part::new("CronJob/postgres-backup", "backup", "docket-cronjobs");

/// The OpenID provider's host name. The app in its container and Chromium
/// here both reach the provider on this machine's loopback, each its own
/// way (`--add-host` to 10.0.2.2, `--host-resolver-rules` to 127.0.0.1), so
/// both see one issuer URL, as they would a real provider's.
const OIDC_HOST: &str = "oidc.smoke.test";
/// Who the E2E suite signs in as.
const E2E_USER: &str = "ada";

/// Where the stand-in for `Special:Random` redirects.
const ARTICLE: &str = "https://en.wikipedia.org/wiki/Smoke_testing";
/// How long a job may run (the wikipedia job's retries take seconds).
const JOB_WITHIN: Duration = Duration::from_secs(120);

/// How long the broadcaster may take to log the events the E2E suite made.
const LOGGED_WITHIN: Duration = Duration::from_secs(30);
/// The analysis templates' 1m interval between measurements, compressed
/// (Prometheus scrapes every second here; queries and conditions are kept).
const ANALYSIS_INTERVAL: Duration = Duration::from_secs(1);
/// How long the load runs before the app is stopped.
const LOAD_BEFORE_STOP: Duration = Duration::from_secs(2);

/// One image's line in the report.
pub struct Outcome {
    pub reference: String,
    pub bytes: u64,
    /// Start to ready, or to a job's exit 0.
    pub ready_after: Duration,
    pub e2e: String,
    pub analysis: String,
    /// What else was checked against the running container.
    pub checked: String,
}

impl Outcome {
    fn new(part: &Prepared<'_>, ready_after: Duration) -> Outcome {
        Outcome {
            reference: part.image.reference.clone(),
            bytes: part.image.bytes,
            ready_after,
            e2e: "–".into(),
            analysis: "–".into(),
            checked: String::new(),
        }
    }
}

/// Runs the smoke test against the images just built.
pub fn run(
    workspace: &Workspace,
    podman: &Podman,
    built: &[Built],
) -> anyhow::Result<Vec<Outcome>> {
    let root = workspace.root();
    let tools = manifests::tools::Tools::ensure(root)?;
    // Where `cargo xtask manifests` renders: the generated kustomizations
    // there reach the tree by fixed relative paths.
    let renders = manifests::render::render_all(root, &tools, &root.join("target/manifests"))?;
    let staging = renders.get(OVERLAY)?;
    let production = renders.get(PRODUCTION)?;
    let workloads = pod::workloads(&staging.docs)?;
    let production_workloads = pod::workloads(&production.docs)?;

    // One runtime for the whole run: the article stand-in and the load
    // serve from it in the background while the waits below block on it.
    let runtime = tokio::runtime::Runtime::new().context("starting a tokio runtime")?;
    let postgres = Postgres::start().context("starting the private PostgreSQL")?;
    let nats = Nats::start_secured().context("starting the private nats-server")?;

    let app = Prepared::new(&APP, &workloads, built)?;
    let broadcaster = Prepared::new(&BROADCASTER, &workloads, built)?;
    let listen = Prepared::new(&LISTEN, &workloads, built)?;
    let job = Prepared::new(&WIKIPEDIA_TODO, &workloads, built)?;
    let backup = Prepared::new(&BACKUP, &production_workloads, built)?;
    let http = app.host_port(&PortRef::Name("http".into()))?;
    // Staging signs people in (AUTH=oidc): its provider is one on loopback
    // that knows the app as a client at the address it is published on.
    let public_url = format!("http://127.0.0.1:{http}");
    let client = OidcClient {
        redirect_uris: vec![format!("{public_url}/auth/callback")],
        post_logout_redirect_uris: vec![format!("{public_url}/")],
        ..OidcClient::default()
    };
    let provider = runtime
        .block_on(OidcProvider::start_named(client, OIDC_HOST))
        .context("starting the OpenID provider")?;
    let stand_ins = Secrets::new(&postgres, &nats, &provider)?;
    let logs = images_dir(workspace).join("smoke").join("logs");
    let mapping = BTreeMap::from([
        (
            "nats:4222".to_owned(),
            format!("{HOST_FROM_CONTAINER}:{}", nats.port()),
        ),
        (
            "todo-app:8080".to_owned(),
            format!("{HOST_FROM_CONTAINER}:{http}"),
        ),
    ]);
    let mut overlay = Overlay::new(podman, staging, &logs, &mapping, &stand_ins)?;
    overlay
        .hosts
        .insert(OIDC_HOST.to_owned(), HOST_FROM_CONTAINER.to_owned());
    // The two settings the overlay takes from kustomize/settings: where
    // this run's provider and app are instead.
    let app_settings = [
        ("OIDC_ISSUER_URL", provider.issuer_url().to_owned()),
        ("PUBLIC_URL", public_url.clone()),
    ];

    let mut outcomes = Vec::new();
    let mut running = Vec::new();
    for part in [&app, &broadcaster, &listen] {
        let started = Instant::now();
        let overrides = if part.workload.name == APP.workload {
            &app_settings[..]
        } else {
            &[]
        };
        let container = overlay.start(part, overrides)?;
        container.wait_ready(&runtime, part)?;
        let ready_after = started.elapsed();
        println!(
            "smoke: {} ready after {:.1} s",
            part.image.reference,
            ready_after.as_secs_f64()
        );
        running.push(container);
        outcomes.push(Outcome::new(part, ready_after));
    }
    let [app_container, broadcaster_container, _listen] = &running[..] else {
        unreachable!("three containers were started");
    };

    let monitor = PodMonitor::read(&staging.docs)?;
    let mut targets = Vec::new();
    for (part, extra) in [
        (&app, &scrape::canary_label()[..]),
        (&broadcaster, &[][..]),
        (&listen, &[][..]),
    ] {
        let doc = staging
            .docs
            .iter()
            .find(|doc| describe(doc) == part.workload.name)
            .with_context(|| format!("{OVERLAY} renders no {}", part.workload.name))?;
        let port = part.host_port(&PortRef::Name(monitor.port().to_owned()))?;
        let target = monitor
            .target(doc, &part.container.name, port, extra)?
            .with_context(|| format!("the PodMonitor does not select {}", part.workload.name))?;
        targets.push(target);
    }
    let prometheus = runtime.block_on(Prometheus::scraping(&targets))?;
    let client = PrometheusClient::new(prometheus.url.clone())?;
    let scraped = targets.len();
    runtime.block_on(poll(&client, "sum(up)", move |values| {
        values == [scraped as f64]
    }))?;

    let mut e2e = workspace.cargo();
    e2e.args(["nextest", "run", "-p", "e2e", "--locked", "--no-fail-fast"])
        .env("SQLX_OFFLINE", "true")
        .env("E2E_BASE_URL", format!("http://127.0.0.1:{http}/"))
        .env("E2E_API_TOKEN", &stand_ins.api_token)
        .env("E2E_USERNAME", E2E_USER)
        .env("E2E_PASSWORD", &provider.user(E2E_USER).password)
        .env("E2E_RESOLVE", format!("{OIDC_HOST}=127.0.0.1"))
        // This is staging's broadcaster, in log mode: the webhook story
        // reads its log line, as it does against staging.
        .env(
            "E2E_BROADCASTER_LOG",
            podman.logs_command_line(&broadcaster_container.name),
        )
        .envs(install::playwright_env(workspace)?);
    let e2e = run_checked(&mut e2e, "the E2E suite against the app container");
    app_container.or_keep_log(e2e)?;
    outcomes[0].e2e = "passed".into();

    // What the suite did is in Prometheus once every target was scraped
    // after it ended.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let after = format!("min(timestamp(up)) > {:.3}", now + 0.01);
    runtime.block_on(poll(&client, &after, |values| !values.is_empty()))?;
    let runs = runtime.block_on(scrape::analyse(staging, &client, ANALYSIS_INTERVAL))?;
    let summary = scrape::summary(&runs);
    if !scrape::passed(&runs) {
        let runs: Vec<String> = runs.iter().map(ToString::to_string).collect();
        bail!(
            "the canary analysis of the app container did not pass:\n{}",
            runs.join("\n")
        );
    }
    println!("smoke: canary analysis of the app container: {summary}");
    outcomes[0].analysis = summary;
    outcomes[1].analysis = "scraped".into();
    outcomes[2].analysis = "scraped".into();

    let logged = broadcaster_container.logs_every_event(&runtime, &nats)?;
    outcomes[1].e2e = format!("logged all {logged} events");
    outcomes[2].checked = "ready: subscribed to its jobs".into();

    // Nothing here reaches Wikipedia: the job's one setting pointing
    // outside the cluster goes to a stand-in that redirects as it does.
    let articles = runtime.block_on(ArticleServer::start(Answer::Redirect(ARTICLE)));
    let article_url = articles
        .random_url()
        .replace("127.0.0.1", HOST_FROM_CONTAINER);
    let started = Instant::now();
    let container = overlay.start(&job, &[("RANDOM_ARTICLE_URL", article_url)])?;
    container.wait_success(&runtime, JOB_WITHIN)?;
    let finished_after = started.elapsed();
    let todos = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{http}/api/todos?limit=100"))
            .bearer_auth(&stand_ins.api_token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    })?;
    if !todos.contains(ARTICLE) {
        bail!("the wikipedia-todo job succeeded but the app lists no todo for {ARTICLE}");
    }
    let mut outcome = Outcome::new(&job, finished_after);
    outcome.checked = format!("wikipedia-todo ran to exit 0 and the app lists {ARTICLE}");
    println!("smoke: {}", outcome.checked);
    outcomes.push(outcome);
    container.keep_log()?;

    outcomes.push(run_backup(
        &runtime,
        &backup,
        Overlay::new(podman, production, &logs, &mapping, &stand_ins)?,
        &images_dir(workspace).join("smoke").join("backups"),
    )?);

    let [app_container, broadcaster_container, listen_container] =
        <[Running<'_>; 3]>::try_from(running)
            .map_err(|_| anyhow!("three containers were started"))?;
    let load = Load::start(
        &runtime,
        &format!("http://127.0.0.1:{http}/"),
        &stand_ins.api_token,
    )?;
    std::thread::sleep(LOAD_BEFORE_STOP);
    let stopped = app_container.terminate(&runtime, app.container);
    let stopped = app_container.or_keep_log(stopped)?;
    let database = postgres.url();
    let verdict = load.finish(&runtime, stopped.signalled, stopped.pause_began, |marker| {
        runtime.block_on(count_todos(&database, marker))
    });
    let verdict = app_container.or_keep_log(verdict)?;
    println!("smoke: {verdict}");
    outcomes[0].checked = format!(
        "{verdict}; exited 0 {:.1} s after SIGTERM",
        stopped.exited_after.as_secs_f64()
    );
    app_container.keep_log()?;

    for container in [broadcaster_container, listen_container] {
        container.stop()?;
    }
    Ok(outcomes)
}

/// Runs production's backup CronJob pod with a fresh folder standing in for
/// its claimed volume, which must then hold one dump that lists `todos`.
fn run_backup(
    runtime: &Runtime,
    backup: &Prepared<'_>,
    mut overlay: Overlay<'_>,
    folder: &Path,
) -> anyhow::Result<Outcome> {
    if folder.exists() {
        fs::remove_dir_all(folder).with_context(|| format!("removing {}", folder.display()))?;
    }
    fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    // What the kubelet does to a volume for a pod with `fsGroup`: the group
    // owns it, with setgid, so the pod's user may write. Without `fsGroup`
    // the folder stays root's, as a fresh volume is.
    if let Some(group) = backup.workload.pod.security_context.fs_group {
        std::os::unix::fs::chown(folder, None, Some(group))
            .with_context(|| format!("giving {} to group {group}", folder.display()))?;
        fs::set_permissions(folder, fs::Permissions::from_mode(0o2770))?;
    }
    for mount in &backup.container.volume_mounts {
        if let pod::VolumeSource::PersistentVolumeClaim { claim_name } =
            backup.workload.pod.volume(&mount.name)?
        {
            overlay.claims.insert(claim_name.clone(), folder.to_owned());
        }
    }
    let started = Instant::now();
    let container = overlay.start(backup, &[])?;
    container.wait_success(runtime, JOB_WITHIN)?;
    let finished_after = started.elapsed();
    container.keep_log()?;
    drop(container);

    let dumps: Vec<PathBuf> = fs::read_dir(folder)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dump"))
        .collect();
    let [dump] = &dumps[..] else {
        bail!(
            "the backup job exited 0 but left {} dumps in {}",
            dumps.len(),
            folder.display()
        );
    };
    let pg_restore = postgres_bin_dir()
        .context("PostgreSQL's programs are not installed")?
        .join("pg_restore");
    let listed = Command::new(&pg_restore)
        .arg("--list")
        .arg(dump)
        .output()
        .with_context(|| format!("running {}", pg_restore.display()))?;
    let listing = String::from_utf8_lossy(&listed.stdout);
    if !listed.status.success() || !listing.contains("TABLE public todos ") {
        bail!(
            "{} does not list the todos table: {}",
            dump.display(),
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let mut outcome = Outcome::new(backup, finished_after);
    outcome.checked = format!(
        "postgres-backup ran to exit 0; its dump ({} bytes) lists the todos table",
        fs::metadata(dump)?.len()
    );
    println!("smoke: {}", outcome.checked);
    Ok(outcome)
}

/// Todos whose text starts with `marker`, read straight from the database.
async fn count_todos(database_url: &str, marker: &str) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database_url).await?;
    let count: i64 = sqlx::query_scalar("select count(*) from todos where text like $1 || '%'")
        .bind(marker)
        .fetch_one(&mut connection)
        .await?;
    Ok(u64::try_from(count)?)
}

/// Polls `query` until `done` accepts its values, for up to 60 s.
async fn poll(
    client: &PrometheusClient,
    query: &str,
    done: impl Fn(&[f64]) -> bool,
) -> anyhow::Result<()> {
    let done = &done;
    eventually(
        Duration::from_secs(60),
        &format!("Prometheus to answer `{query}` as expected"),
        move || async move {
            match client.query(query).await {
                Ok(values) => done(&values).then_some(Ok(())),
                Err(error) => Some(Err(error)),
            }
        },
    )
    .await?
}

/// What every container of the overlay is started with: its ConfigMaps,
/// the stand-in Secrets, and the in-cluster Services mapped to the private
/// servers.
struct Overlay<'a> {
    podman: &'a Podman,
    logs: PathBuf,
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    services: BTreeSet<String>,
    mapping: BTreeMap<String, String>,
    stand_ins: &'a Secrets,
    /// Claim name → the folder standing in for its volume.
    claims: BTreeMap<String, PathBuf>,
    /// Host names resolved inside the containers (`--add-host`).
    hosts: BTreeMap<String, String>,
}

impl<'a> Overlay<'a> {
    /// `render`'s ConfigMaps and Services, with `mapping` from in-cluster
    /// addresses to the private servers.
    fn new(
        podman: &'a Podman,
        render: &Render,
        logs: &Path,
        mapping: &BTreeMap<String, String>,
        stand_ins: &'a Secrets,
    ) -> anyhow::Result<Overlay<'a>> {
        Ok(Overlay {
            podman,
            logs: logs.to_owned(),
            config_maps: pod::config_maps(&render.docs)?,
            services: run::service_addresses(&render.docs),
            mapping: mapping.clone(),
            stand_ins,
            claims: BTreeMap::new(),
            hosts: BTreeMap::new(),
        })
    }

    /// Runs `part`'s container as its pod template says, with `overrides`
    /// replacing rendered values.
    fn start(
        &self,
        part: &Prepared<'_>,
        overrides: &[(&str, String)],
    ) -> anyhow::Result<Running<'a>> {
        let mut environment = part
            .container
            .environment(&self.config_maps, |name, key| self.stand_ins.get(name, key))?;
        environment.extend(
            overrides
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone())),
        );
        let environment = run::map_addresses(&environment, &self.services, &self.mapping)?;
        let mut secret_volumes = BTreeMap::new();
        for mount in &part.container.volume_mounts {
            let source = part.workload.pod.volume(&mount.name)?;
            if matches!(source, pod::VolumeSource::Secret { .. }) {
                let folder = self
                    .logs
                    .with_file_name("secrets")
                    .join(&part.container.name)
                    .join(&mount.name);
                run::write_secret_volume(
                    &folder,
                    source,
                    part.workload.pod.security_context.fs_group,
                    |name, key| self.stand_ins.get(name, key),
                )?;
                secret_volumes.insert(mount.name.clone(), folder);
            }
        }
        Running::start(
            self.podman,
            &part.workload.pod,
            part.container,
            &Placement {
                name: &format!("docket-smoke-{}", part.container.name),
                image: &part.image.reference,
                environment: &environment,
                publish: &part.ports,
                claims: &self.claims,
                secret_volumes: &secret_volumes,
                hosts: &self.hosts,
            },
            self.logs.clone(),
        )
    }
}

/// A part of the overlay found, with its image and the host ports its
/// container ports are published on.
struct Prepared<'a> {
    workload: &'a Workload,
    container: &'a Container,
    image: &'a Built,
    ports: Vec<(u16, u16)>,
}

impl<'a> Prepared<'a> {
    fn new(part: &Part, workloads: &'a [Workload], built: &'a [Built]) -> anyhow::Result<Self> {
        let workload = workload(workloads, part.workload)?;
        let container = workload.pod.container(part.container)?;
        let image = built
            .iter()
            .find(|image| {
                image
                    .reference
                    .starts_with(&format!("localhost/{}:", part.image))
            })
            .with_context(|| format!("the {} image was not built", part.image))?;
        let ports = container
            .ports
            .iter()
            .map(|port| (free_port(), port.container_port))
            .collect();
        Ok(Prepared {
            workload,
            container,
            image,
            ports,
        })
    }

    fn host_port(&self, port: &pod::PortRef) -> anyhow::Result<u16> {
        host_port(&self.ports, self.container.port(port)?)
    }
}

fn workload<'a>(workloads: &'a [Workload], name: &str) -> anyhow::Result<&'a Workload> {
    workloads
        .iter()
        .find(|workload| workload.name == name)
        .with_context(|| format!("{OVERLAY} renders no {name}"))
}

fn host_port(ports: &[(u16, u16)], container_port: u16) -> anyhow::Result<u16> {
    ports
        .iter()
        .find(|(_, inside)| *inside == container_port)
        .map(|(host, _)| *host)
        .with_context(|| format!("container port {container_port} is not published"))
}

/// Stand-in values for the Secrets the overlay's pods read: what an
/// operator creates in the cluster (see the README's "Secrets").
struct Secrets {
    database_url: String,
    /// The jobs' token (`docket-api` key `token`).
    jobs_token: String,
    /// The E2E suite's token, listed beside the jobs' in the app's tokens
    /// file (`docket-api` key `tokens`), as the README tells operators.
    api_token: String,
    cookie_key: String,
    nats: BTreeMap<&'static str, String>,
    /// `docket-oidc`: the app's client at the provider.
    oidc_client_id: String,
    oidc_client_secret: String,
}

impl Secrets {
    fn new(postgres: &Postgres, nats: &Nats, provider: &OidcProvider) -> anyhow::Result<Secrets> {
        let password = |role: Role| {
            nats.service_env(role)
                .into_iter()
                .find_map(|(name, value)| (name == "NATS_PASSWORD").then_some(value))
                .context("the private nats-server runs without users")
        };
        Ok(Secrets {
            database_url: format!(
                "postgres://postgres@{HOST_FROM_CONTAINER}:{}/postgres",
                postgres.port()
            ),
            jobs_token: format!("smoke-jobs-{}", uuid::Uuid::new_v4().simple()),
            api_token: format!("smoke-e2e-{}", uuid::Uuid::new_v4().simple()),
            cookie_key: format!("smoke-cookie-key-{}", uuid::Uuid::new_v4().simple()),
            nats: BTreeMap::from([
                ("app-password", password(Role::App)?),
                ("broadcaster-password", password(Role::Broadcaster)?),
                ("jobs-password", password(Role::Jobs)?),
            ]),
            oidc_client_id: provider.client_id().to_owned(),
            oidc_client_secret: provider.client_secret().to_owned(),
        })
    }

    fn get(&self, name: &str, key: &str) -> Option<String> {
        match (name, key) {
            ("docket-database", "url") => Some(self.database_url.clone()),
            ("docket-api", "token") => Some(self.jobs_token.clone()),
            ("docket-api", "tokens") => Some(format!(
                "jobs write {}\ne2e write {}\n",
                self.jobs_token, self.api_token
            )),
            ("docket-api", "cookie-key") => Some(self.cookie_key.clone()),
            ("docket-nats", key) => self.nats.get(key).cloned(),
            ("docket-oidc", "client-id") => Some(self.oidc_client_id.clone()),
            ("docket-oidc", "client-secret") => Some(self.oidc_client_secret.clone()),
            _ => None,
        }
    }
}

/// A container started for the smoke test; removed when dropped.
struct Running<'a> {
    podman: &'a Podman,
    name: String,
    logs: PathBuf,
    /// `terminationGracePeriodSeconds`: how long `stop` waits after SIGTERM.
    grace: u64,
}

impl<'a> Running<'a> {
    fn start(
        podman: &'a Podman,
        pod: &PodSpec,
        container: &Container,
        placement: &Placement<'_>,
        logs: PathBuf,
    ) -> anyhow::Result<Running<'a>> {
        // A container left by an interrupted run would hold the name.
        let _ = podman.output(&["rm", "--force", placement.name]);
        let mut args = vec!["run".to_owned()];
        args.extend(run::podman_args(pod, container, placement)?);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman.output(&args)?;
        Ok(Running {
            podman,
            name: placement.name.to_owned(),
            logs,
            // The Kubernetes default.
            grace: pod.termination_grace_period_seconds.unwrap_or(30),
        })
    }

    /// Polls the readiness probe as the kubelet does, within the time the
    /// startup probe allows (or 60 s), failing at once if the container
    /// exits.
    fn wait_ready(&self, runtime: &Runtime, part: &Prepared<'_>) -> anyhow::Result<()> {
        let container = part.container;
        let probe = container
            .readiness_probe
            .as_ref()
            .with_context(|| format!("{} has no readiness probe", container.name))?;
        let ProbeAction::HttpGet { path, port } = &probe.action else {
            bail!(
                "{}: only an httpGet readiness probe is checked",
                container.name
            );
        };
        let url = format!("http://127.0.0.1:{}{path}", part.host_port(port)?);
        let allowed = container
            .startup_probe
            .as_ref()
            .map_or(Duration::from_secs(60), |startup| {
                Duration::from_secs(
                    startup.initial_delay_seconds
                        + startup.period_seconds * startup.failure_threshold,
                )
            });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(probe.timeout_seconds.max(1)))
            .build()?;
        let (client, url) = (&client, &url);
        let ready = runtime.block_on(eventually(
            allowed,
            &format!("{url} to answer 2xx"),
            move || async move {
                let answered = client.get(url).send().await;
                if answered.is_ok_and(|response| response.status().is_success()) {
                    return Some(Ok(()));
                }
                match self.inspect("{{.State.Status}}") {
                    Ok(state) if state == "running" => None,
                    Ok(state) => Some(Err(anyhow!("the container is {state}"))),
                    Err(error) => Some(Err(error)),
                }
            },
        ));
        self.or_keep_log(ready.and_then(|ready| ready))
    }

    /// Waits for a job's container to exit, which must be with 0.
    fn wait_success(&self, runtime: &Runtime, within: Duration) -> anyhow::Result<()> {
        let succeeded = self.wait_exit(runtime, within);
        self.or_keep_log(succeeded)
    }

    /// Waits up to `within` for the container to exit, which must be with 0.
    fn wait_exit(&self, runtime: &Runtime, within: Duration) -> anyhow::Result<()> {
        let exited = runtime.block_on(eventually(
            within,
            &format!("{} to exit", self.name),
            move || async move {
                match self.inspect("{{.State.Status}}") {
                    Ok(state) if state == "exited" => Some(self.inspect("{{.State.ExitCode}}")),
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                }
            },
        ));
        match exited??.as_str() {
            "0" => Ok(()),
            code => bail!("exited with {code}"),
        }
    }

    /// A field of `podman inspect` (a Go template such as
    /// `{{.State.Status}}`).
    fn inspect(&self, format: &str) -> anyhow::Result<String> {
        self.podman
            .output(&["inspect", "--format", format, &self.name])
    }

    /// `result`, after keeping the log if it is an error, which then says
    /// where the log is.
    fn or_keep_log<T>(&self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        result.or_else(|error| {
            self.keep_log()?;
            Err(error.context(format!(
                "{} failed; its log is in {}",
                self.name,
                self.logs.display()
            )))
        })
    }

    /// What the container wrote to stdout and stderr so far.
    fn log(&self) -> anyhow::Result<Vec<u8>> {
        let mut command = self.podman.command();
        command.args(["logs", &self.name]);
        let output = command.output().context("reading the container's log")?;
        let mut log = output.stdout;
        log.extend(output.stderr);
        Ok(log)
    }

    /// Copies the container's log under `target/images/smoke/logs/`.
    fn keep_log(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.logs)
            .with_context(|| format!("creating {}", self.logs.display()))?;
        let path = self.logs.join(format!("{}.log", self.name));
        fs::write(&path, self.log()?).with_context(|| format!("writing {}", path.display()))
    }

    /// Waits until the log names the id of every event in the app's
    /// stream (the broadcaster in log mode logs each event it takes);
    /// returns how many there were.
    fn logs_every_event(&self, runtime: &Runtime, nats: &Nats) -> anyhow::Result<usize> {
        let ids = runtime.block_on(event_ids(nats))?;
        if ids.is_empty() {
            bail!("the app published no events during the E2E suite");
        }
        let missing = |log: &[u8]| {
            let log = String::from_utf8_lossy(log);
            ids.iter().filter(|id| !log.contains(id.as_str())).count()
        };
        let missing = &missing;
        let logged = runtime.block_on(eventually(
            LOGGED_WITHIN,
            &format!("{} to log all {} events", self.name, ids.len()),
            move || async move {
                match self.log() {
                    Ok(log) => (missing(&log) == 0).then_some(Ok(())),
                    Err(error) => Some(Err(error)),
                }
            },
        ));
        let logged = logged
            .and_then(|logged| logged)
            .map_err(|error| match self.log() {
                Ok(log) => error.context(format!("{} of {} not logged", missing(&log), ids.len())),
                Err(_) => error,
            });
        self.or_keep_log(logged).map(|()| ids.len())
    }

    /// Stops the container as the kubelet stops a pod: the preStop sleep
    /// (the container keeps serving meanwhile), SIGTERM, and the rest of
    /// the grace period for it to exit, which must be with 0.
    fn terminate(&self, runtime: &Runtime, container: &Container) -> anyhow::Result<Stopped> {
        let pause = container
            .lifecycle
            .as_ref()
            .and_then(|lifecycle| lifecycle.pre_stop.as_ref())
            .map_or(0, |pre_stop| pre_stop.sleep.seconds);
        let pause_began = Instant::now();
        std::thread::sleep(Duration::from_secs(pause));
        let signalled = Instant::now();
        self.podman
            .output(&["kill", "--signal", "TERM", &self.name])?;
        let left = Duration::from_secs(self.grace.saturating_sub(pause));
        self.wait_exit(runtime, left)
            .context("after SIGTERM, within the grace period")?;
        Ok(Stopped {
            pause_began,
            signalled,
            exited_after: signalled.elapsed(),
        })
    }

    /// SIGTERM, at most the pod's grace period, then removal; the log is
    /// kept.
    fn stop(self) -> anyhow::Result<()> {
        self.podman
            .output(&["stop", "--time", &self.grace.to_string(), &self.name])
            .map(drop)?;
        self.keep_log()
    }
}

/// When [`Running::terminate`] paused, signalled, and how long the exit took.
struct Stopped {
    pause_began: Instant,
    signalled: Instant,
    exited_after: Duration,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.podman.output(&["rm", "--force", &self.name]);
    }
}

/// The ids of the events in the app's stream (each message's
/// `Nats-Msg-Id`, the event id the app sets).
async fn event_ids(nats: &Nats) -> anyhow::Result<Vec<String>> {
    let client = nats.connect(Role::Admin).await?;
    let js = async_nats::jetstream::new(client);
    stored_messages(&js, STREAM)
        .await?
        .iter()
        .map(|message| {
            message
                .headers
                .get("Nats-Msg-Id")
                .map(|id| id.to_string())
                .with_context(|| format!("message {} has no Nats-Msg-Id", message.sequence))
        })
        .collect()
}
