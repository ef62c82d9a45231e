//! `cargo xtask bench [--quick] [--rows N]`: how many requests Docket
//! serves, how little memory it needs and how fast its events reach a
//! webhook, measured on this machine against a plain axum + sqlx reference
//! server.
//!
//! It starts a private stack (PostgreSQL, NATS, the app built with
//! `--release`, the broadcaster's webhook sink, and `bench-reference`).
//! For each table size (50 todos, then a million; `--rows N` for one size
//! of your own) it seeds the table, then for each scenario and connection
//! count runs wrk against Docket and, where the reference has the same
//! handler, against the reference right after it (interleaved, so drift in
//! the machine's load hits both alike). Every write scenario is compared
//! with the reference's insert run right after it, not with one insert run
//! shared by all writes. Before every run the table is put
//! back to the seeded todos and the outbox is drained, so each run starts
//! from the same state and none pays for the previous one's events. At the
//! last size the writes run again with `fsync=on` and
//! `synchronous_commit=on`, as production's database commits.
//!
//! The broadcaster is started only after the HTTP scenarios: it then
//! delivers their whole backlog (its sustained delivery rate, and proof
//! that every event the app wrote arrives), and finally todos created at a
//! steady rate give the commit → webhook latency.
//!
//! Last, the replication runs (`bench/replication.rs`): creates and the
//! commit → webhook latency again, on one nats-server at R1 and on a
//! three-node cluster at R3, each under a fresh stack
//! (`--replication-only` runs just these).
//!
//! The bench itself runs from a release build of xtask (it builds one and
//! runs it in its place): its own work, above all the latency run's steady
//! creates, shares the machine's cores with what it measures.
//!
//! Writes `target/bench/results.json` and `target/bench/summary.md`, and
//! prints the table, the targets and the SLO verdict. Not part of
//! `cargo xtask test`: speed is shown here, not asserted in tests.

mod events;
mod process;
mod replication;
mod report;
mod seed;
mod stats;
mod wrk;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{Nats, Role, Stack, StackBuilder, free_port};

use self::process::{Proc, Spec, loopback, machine_busy_s, reset_peak, usage};
use self::report::{Durability, Point, Results, Run, Server, Target};
use self::seed::Seeds;
use self::wrk::{Inputs, Scenario};
use crate::install::{self, Tool};
use crate::workspace::{Workspace, run_checked};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A smoke run: 64 connections only, 2 s per run, 50 todos, a short
    /// event path.
    #[arg(long)]
    quick: bool,
    /// Measure with this many todos in the table only (a third of them
    /// done), instead of 50 and then 1,000,000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rows: Option<u64>,
    /// Only the replication runs (creates and commit → webhook on one
    /// nats-server at R1 and on a three-node cluster at R3), written to
    /// `target/bench/replication.md`.
    #[arg(long, conflicts_with = "rows")]
    replication_only: bool,
    /// Only the event path, on a backlog of its own: the three write
    /// scenarios for a few seconds each, then the broadcaster's delivery
    /// of their events and the commit → webhook latency, as in the full
    /// run. Printed and written to `target/bench/events.md`.
    #[arg(long, conflicts_with_all = ["rows", "replication_only", "quick"])]
    events_only: bool,
}

/// How much to measure.
struct Plan {
    mode: &'static str,
    connections: &'static [u32],
    per_run: Duration,
    event_rate: u32,
    event_seconds: u32,
    /// Table sizes, smallest first.
    rows: &'static [u64],
}

/// 7 scenarios × 3 levels for Docket + 2 × 3 for the reference, at two
/// table sizes, then the writes with fsync on, 10 s each, plus seeding and
/// the event path: about 20 minutes on 2 cores.
const FULL: Plan = Plan {
    mode: "full",
    connections: &[16, 64, 256],
    per_run: Duration::from_secs(10),
    event_rate: 2000,
    event_seconds: 10,
    rows: &[50, 1_000_000],
};

/// `--events-only`: writes for a backlog of a few hundred thousand events
/// (the full run's mix: creates, the toggles of the same 50 todos, deletes),
/// and the full run's rate for the latency.
const EVENTS: Plan = Plan {
    mode: "events",
    connections: &[64],
    per_run: Duration::from_secs(5),
    event_rate: 2000,
    event_seconds: 10,
    rows: &[50],
};

const QUICK: Plan = Plan {
    mode: "quick",
    connections: &[64],
    per_run: Duration::from_secs(2),
    event_rate: 2000,
    event_seconds: 2,
    rows: &[50],
};

/// Todos added for each delete run, per second of it: more than Docket
/// deletes, so no request finds its todo gone. At 30,000 a full run ran
/// out: Docket deleted 32,193 a second at 256 connections, and 25,018
/// requests found no todo.
const DELETES_PER_S: usize = 50_000;
/// Text of the todos whose events the latency is measured on.
const EVENT_PREFIX: &str = "event-path-";
/// The app's JetStream stream (`events::STREAM`; xtask does not depend on
/// the event contract crate for one name).
pub(crate) const STREAM: &str = "TODOS";
/// `events::EventType::Created.subject()`.
const CREATED_SUBJECT: &str = "todos.created";

pub fn run(workspace: &Workspace, args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        return run_from_release_build(workspace);
    }
    install::ensure(workspace, &[Tool::Postgres, Tool::NatsServer, Tool::Wrk])?;
    run_checked(
        workspace.cargo().args([
            "build",
            "--release",
            "-p",
            "app",
            "--bin",
            "todo-app",
            "-p",
            "broadcaster",
            "--bin",
            "broadcaster",
            "-p",
            "bench-reference",
            // `--bin` filters every selected package's targets.
            "--bin",
            "bench-reference",
        ]),
        "building the services with --release",
    )?;
    let plan = match (args.quick, args.events_only) {
        (true, _) => QUICK,
        (_, true) => EVENTS,
        _ => FULL,
    };
    let rows = args
        .rows
        .map_or_else(|| plan.rows.to_vec(), |rows| vec![rows]);
    let runtime = tokio::runtime::Runtime::new().context("failed to start a tokio runtime")?;
    if args.replication_only {
        return runtime.block_on(replication_only(workspace.root(), &plan));
    }
    if args.events_only {
        return runtime.block_on(events_only(workspace.root(), &plan));
    }
    runtime.block_on(bench(workspace.root(), &plan, rows))
}

/// Builds xtask with `--release` and runs this same command from that
/// build instead. From the debug build, the latency run's 2,000 creates a
/// second took 60-75 % of one of this machine's two cores, beside a stack
/// that needed the rest: every part of the event path waited for a core,
/// and the commit -> webhook p99 measured 17.9 and 25.6 ms in two
/// `--events-only` runs (14.2-21.3 ms in three the day before) against
/// 10.8-17.1 ms in six from the release build, whose creates need about
/// 20 % of a core.
fn run_from_release_build(workspace: &Workspace) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;

    run_checked(
        workspace
            .cargo()
            // Without `api-docs`, the one part of xtask that builds the app:
            // a change to the app then rebuilds only the app.
            .args([
                "build",
                "--release",
                "-p",
                "xtask",
                "--bin",
                "xtask",
                "--no-default-features",
            ]),
        "building xtask with --release to run the bench from",
    )?;
    let xtask = release_dir(workspace.root()).join("xtask");
    // Only returns if it could not start.
    let error = workspace
        .command(&xtask)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(error).with_context(|| format!("running {}", xtask.display()))
}

/// `--replication-only`: the replication runs, printed and written alone.
async fn replication_only(root: &Path, plan: &Plan) -> anyhow::Result<()> {
    let dirs = Dirs::prepare(root)?;
    let runs =
        replication::measure(plan, &dirs, &reqwest::Client::new(), &release_dir(root)).await?;
    let md = format!(
        "# Replication ({} run)\n\n{}",
        plan.mode,
        replication::markdown(&runs)
    );
    let path = dirs.out.join("replication.md");
    fs::write(&path, &md).with_context(|| format!("failed to write {}", path.display()))?;
    println!("\n{md}\nwrote {}", path.display());
    Ok(())
}

/// `--events-only`: the write scenarios against Docket alone, for their
/// backlog, then the event path.
async fn events_only(root: &Path, plan: &Plan) -> anyhow::Result<()> {
    let dirs = Dirs::prepare(root)?;
    let client = reqwest::Client::new();
    let stack = start_stack(root).await?;
    let app = start_app(&stack, &dirs, &client, &[]).await?;
    let pool = connect(&stack).await?;
    let seeds = seed::seed(&pool, plan.rows[0]).await?;
    let measure = Measure {
        app: &app,
        reference: None,
        pool: &pool,
        seeds: &seeds,
        cursor: None,
        plan,
        dirs: &dirs,
        client: &client,
    };
    measure
        .runs(&Scenario::WRITES, Durability::FsyncOff)
        .await?;
    let (events, broadcaster) = event_path(&stack, &app, &pool, plan, &dirs, &client).await?;
    broadcaster.stop().await?;
    app.proc.stop().await?;
    let md = format!("# Event path ({} run)\n\n{}", plan.mode, events.markdown());
    let path = dirs.out.join("events.md");
    fs::write(&path, &md).with_context(|| format!("failed to write {}", path.display()))?;
    println!("\n{md}\nwrote {}", path.display());
    Ok(())
}

/// The bench's own connections to the stack's database: seeding, and
/// checks between runs.
async fn connect(stack: &Stack) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&stack.database_url)
        .await
        .context("connecting to the bench database")
}

/// Where `cargo build --release` put the services.
fn release_dir(root: &Path) -> PathBuf {
    root.join("target/release")
}

/// The whole run, phase by phase.
async fn bench(root: &Path, plan: &Plan, rows: Vec<u64>) -> anyhow::Result<()> {
    let dirs = Dirs::prepare(root)?;
    let client = reqwest::Client::new();
    let stack = start_stack(root).await?;
    let app = start_app(&stack, &dirs, &client, &[]).await?;
    let pool = connect(&stack).await?;
    let reference = start_reference(&stack, &dirs, &client).await?;

    let mut runs = Vec::new();
    for (i, &n) in rows.iter().enumerate() {
        let seeds = seed::seed(&pool, n).await?;
        let cursor = seed::deep_cursor(&client, &app.url, n).await?;
        let measure = Measure {
            app: &app,
            reference: Some(&reference),
            pool: &pool,
            seeds: &seeds,
            cursor: cursor.as_deref(),
            plan,
            dirs: &dirs,
            client: &client,
        };
        runs.extend(measure.runs(&Scenario::ALL, Durability::FsyncOff).await?);
        if i + 1 == rows.len() {
            commit_with(&pool, Durability::FsyncOn).await?;
            let durable = measure.runs(&Scenario::WRITES, Durability::FsyncOn).await;
            commit_with(&pool, Durability::FsyncOff).await?;
            runs.extend(durable?);
        }
    }
    reference.proc.stop().await?;
    let (events, broadcaster) = event_path(&stack, &app, &pool, plan, &dirs, &client).await?;
    let app_at_end = usage(app.proc.pid())?;

    broadcaster.stop().await?;
    app.proc.stop().await?;
    drop(pool);
    drop(stack);
    let replication = replication::measure(plan, &dirs, &client, &release_dir(root)).await?;

    let mut results = Results {
        machine: report::Machine::this(),
        mode: plan.mode,
        seconds_per_run: plan.per_run.as_secs(),
        rows,
        slo: report::slo(&runs),
        runs,
        startup: app.startup,
        events,
        app_at_end,
        replication,
        targets: Vec::new(),
    };
    results.targets = targets(&results);
    write_and_print(&results, &dirs)
}

/// Where the results and the services' logs go.
struct Dirs {
    out: PathBuf,
    logs: PathBuf,
}

impl Dirs {
    /// `target/bench/`, with `logs/` emptied.
    fn prepare(root: &Path) -> anyhow::Result<Dirs> {
        let out = root.join("target/bench");
        let logs = out.join("logs");
        let _ = fs::remove_dir_all(&logs);
        fs::create_dir_all(&logs)
            .with_context(|| format!("failed to create {}", logs.display()))?;
        Ok(Dirs { out, logs })
    }
}

/// PostgreSQL, nats-server and the broadcaster's webhook sink, from
/// test-support's stack; the app, the reference and the broadcaster are
/// started by the phases that measure them.
async fn start_stack(root: &Path) -> anyhow::Result<Stack> {
    println!("starting PostgreSQL and nats-server");
    StackBuilder::new()
        .without_app()
        .binaries_in(&release_dir(root))
        .sink(None, false)
        .start()
        .await
}

/// The app under measurement and how long it took to become ready.
struct App {
    proc: Proc,
    url: String,
    startup: report::Startup,
}

/// Starts the app twice: the first start migrates a fresh database; the
/// second is the one a redeploy sees, and stays up. `extra` comes on top of
/// the stack's settings.
async fn start_app(
    stack: &Stack,
    dirs: &Dirs,
    client: &reqwest::Client,
    extra: &[(&'static str, String)],
) -> anyhow::Result<App> {
    let port = free_port();
    let binary = release_binary(stack, "todo-app");
    let spec = || Spec {
        name: "app",
        program: &binary,
        port,
        envs: [
            ("DATABASE_URL", stack.database_url.clone()),
            ("API_TOKEN", stack.api_token.clone()),
            ("LOG_FORMAT", "json".to_string()),
            // wrk is one client; a limit it never reaches keeps the
            // limiter's cost in every write measured.
            ("WRITE_RATE_LIMIT", "1000000/second".to_string()),
        ]
        .into_iter()
        .chain(stack.nats.service_env(Role::App))
        .chain(extra.iter().cloned())
        .collect(),
    };
    let first = Proc::spawn(spec(), &dirs.logs, client).await?;
    let first_ready = first.ready_after;
    first.stop().await?;
    let proc = Proc::spawn(spec(), &dirs.logs, client).await?;
    println!(
        "app ready in {:.0} ms ({:.0} ms on the fresh database)",
        ms(proc.ready_after),
        ms(first_ready)
    );
    let startup = report::Startup {
        first_ready_ms: ms(first_ready),
        ready_ms: ms(proc.ready_after),
    };
    Ok(App {
        proc,
        url: loopback(port),
        startup,
    })
}

/// A release binary: the stack runs them from `target/release`.
fn release_binary(stack: &Stack, name: &str) -> PathBuf {
    stack.binaries_dir().join(name)
}

/// The reference server, up for every HTTP scenario.
struct Reference {
    proc: Proc,
    url: String,
}

async fn start_reference(
    stack: &Stack,
    dirs: &Dirs,
    client: &reqwest::Client,
) -> anyhow::Result<Reference> {
    let port = free_port();
    let proc = Proc::spawn(
        Spec {
            name: "reference",
            program: &release_binary(stack, "bench-reference"),
            port,
            envs: vec![
                ("DATABASE_URL", stack.database_url.clone()),
                ("REFERENCE_TABLE", seed::REFERENCE_TABLE.to_owned()),
            ],
        },
        &dirs.logs,
        client,
    )
    .await?;
    Ok(Reference {
        proc,
        url: loopback(port),
    })
}

/// Switches how the bench's PostgreSQL commits, and waits until its
/// sessions do so. `fsync` is off in the server's configuration file (see
/// `test_support::Postgres`), so `ALTER SYSTEM` can turn it on and reset it.
async fn commit_with(pool: &PgPool, durability: Durability) -> anyhow::Result<()> {
    let (statements, expected) = match durability {
        Durability::FsyncOn => (
            [
                "alter system set fsync = on",
                "alter system set synchronous_commit = on",
            ],
            "on",
        ),
        Durability::FsyncOff => (
            [
                "alter system reset fsync",
                "alter system reset synchronous_commit",
            ],
            "off",
        ),
    };
    println!("PostgreSQL: {}", durability.name());
    // One statement each: ALTER SYSTEM cannot run in a transaction block.
    for statement in statements.into_iter().chain(["select pg_reload_conf()"]) {
        sqlx::raw_sql(statement)
            .execute(pool)
            .await
            .with_context(|| format!("`{statement}`"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (fsync,): (String,) = sqlx::query_as("show fsync").fetch_one(pool).await?;
        if fsync == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("PostgreSQL still has fsync={fsync} 10 s after the reload");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the HTTP runs at one table size share.
struct Measure<'a> {
    app: &'a App,
    /// `None` measures Docket alone.
    reference: Option<&'a Reference>,
    pool: &'a PgPool,
    seeds: &'a Seeds,
    cursor: Option<&'a str>,
    plan: &'a Plan,
    dirs: &'a Dirs,
    client: &'a reqwest::Client,
}

impl Measure<'_> {
    /// Each scenario at each connection count against Docket, and against
    /// the reference right after where it is compared with its own
    /// reference run (`Scenario::compared_with`).
    async fn runs(
        &self,
        scenarios: &[Scenario],
        durability: Durability,
    ) -> anyhow::Result<Vec<Run>> {
        let mut runs = Vec::new();
        for &scenario in scenarios {
            for &connections in self.plan.connections {
                for server in [Server::Docket, Server::Reference] {
                    if server == Server::Reference
                        && (self.reference.is_none() || !scenario.runs_on_reference())
                    {
                        continue;
                    }
                    let point = Point {
                        scenario,
                        connections,
                        server,
                        rows: self.seeds.rows,
                        durability,
                    };
                    runs.push(self.run(point).await?);
                }
            }
        }
        Ok(runs)
    }

    async fn run(&self, point: Point) -> anyhow::Result<Run> {
        let Point {
            scenario,
            connections,
            server,
            ..
        } = point;
        let (url, pid) = match server {
            Server::Docket => (&self.app.url, self.app.proc.pid()),
            Server::Reference => {
                let reference = self.reference.context("no reference server in this run")?;
                (&reference.url, reference.proc.pid())
            }
        };
        // What this server is sent for the point: the reference does its
        // page or its insert.
        let scenario = match server {
            Server::Docket => scenario,
            Server::Reference => scenario.reference(),
        };
        drain_outbox(self.pool).await?;
        seed::reset(self.pool, self.seeds).await?;
        let deletable;
        let ids = match scenario {
            Scenario::Toggle => &self.seeds.toggled[..],
            Scenario::Delete => {
                let count = DELETES_PER_S * self.plan.per_run.as_secs() as usize;
                deletable = seed::deletable(self.pool, count).await?;
                &deletable[..]
            }
            _ => &[],
        };
        // A write marker lives a minute: each run that needs one earns a
        // fresh one, as a browser would, by writing.
        let marker = match (scenario, server) {
            (Scenario::PageUncached, Server::Docket) => {
                Some(write_marker(self.client, &self.app.url).await?)
            }
            _ => None,
        };
        // Taken after the reset above, so it names the page as it stands.
        let etag = match scenario {
            Scenario::ApiNotModified => Some(api_etag(self.client, url).await?),
            _ => None,
        };
        let inputs = Inputs {
            ids,
            cursor: self.cursor,
            etag: etag.as_deref(),
            tag: server.name(),
            write_marker: marker.as_deref(),
        };
        let script = self
            .dirs
            .out
            .join(format!("{scenario:?}-{}.lua", server.name()));
        fs::write(&script, wrk::script(scenario, &inputs, connections))
            .with_context(|| format!("failed to write {}", script.display()))?;
        reset_peak(pid);
        let before = usage(pid)?;
        let machine_before = machine_busy_s()?;
        let result = wrk::run(&script, url, connections, self.plan.per_run).await?;
        let after = usage(pid)?;
        let machine_busy_cpu_s = machine_busy_s()? - machine_before;
        println!(
            "{:<18} {connections:>4} conns  {:>7} rows  {:<9}  {:<9} {:>7.0} req/s  p99 {:>7.2} ms  {} errors",
            scenario.label(),
            point.rows,
            point.durability.name(),
            server.name(),
            result.requests_per_s,
            result.p99_ms,
            result.errors
        );
        Ok(Run {
            scenario: point.scenario,
            connections,
            server,
            rows: point.rows,
            durability: point.durability,
            wrk: result,
            server_cpu_s: after.cpu_s - before.cpu_s,
            server_peak_rss_mib: report::mib(after.peak_rss_kib),
            machine_busy_cpu_s,
        })
    }
}

/// The event path: a broadcaster started on the scenarios' whole backlog
/// (its sustained delivery rate), then todos created at a steady rate (the
/// commit → webhook latency). Returns the figures and the broadcaster,
/// still running.
async fn event_path(
    stack: &Stack,
    app: &App,
    pool: &PgPool,
    plan: &Plan,
    dirs: &Dirs,
    client: &reqwest::Client,
) -> anyhow::Result<(report::Events, Proc)> {
    // Everything the scenarios wrote is in JetStream now.
    drain_outbox(pool).await?;
    let written = events_published(&stack.nats).await?;
    let creates = creates_published(&stack.nats).await?;
    println!("starting the broadcaster with {written} events waiting ({creates} creates)");
    let sink_url = stack
        .sink
        .as_ref()
        .context("the bench stack runs the sink")?
        .url();
    let broadcaster = Broadcaster::start(stack, &sink_url, dirs, client, &[]).await?;
    let nats_before = nats_cpu_s(&stack.nats)?;
    let backlog = broadcaster.deliver_backlog(client, written).await?;
    let nats_cpu_s = nats_cpu_s(&stack.nats)? - nats_before;

    // Like every run, the latency run starts from vacuumed tables. Right
    // after the write runs it did not: in seven `--events-only` runs its p99
    // was 25-81 ms, and 14-21 ms in three runs that vacuumed first.
    seed::vacuum(pool).await?;
    let latency = commit_to_webhook(
        stack,
        app,
        &broadcaster,
        &sink_url,
        (plan, plan.event_rate),
        client,
        &dirs.logs.join("latency.csv"),
    )
    .await?;
    // The broadcaster's histograms (webhook attempts, delivery lag) and
    // counters, for whoever wants to know where a slow run spent its time.
    let metrics = client
        .get(format!("{}/metrics", broadcaster.url))
        .send()
        .await?
        .text()
        .await?;
    fs::write(dirs.logs.join("broadcaster-metrics.txt"), metrics)?;
    drain_outbox(pool).await?;
    let all_delivered = backlog.drained
        && events::handled(client, &broadcaster.url).await?
            >= events_published(&stack.nats).await?;
    let events = report::Events {
        backlog: written,
        creates,
        delivered_per_s: backlog.delivered_per_s,
        broadcaster_cpu_s: backlog.broadcaster_cpu_s,
        nats_cpu_s,
        all_delivered,
        rate_per_s: plan.event_rate,
        sent: latency.sent,
        failed: latency.failed,
        latency: latency.total,
        to_stream: latency.to_stream,
        from_stream: latency.from_stream,
    };
    Ok((events, broadcaster.proc))
}

/// The broadcaster under measurement.
struct Broadcaster {
    proc: Proc,
    /// Its operations port's URL (`/metrics` counts what it handled).
    url: String,
}

/// How the broadcaster delivered the backlog.
struct Backlog {
    drained: bool,
    delivered_per_s: f64,
    broadcaster_cpu_s: f64,
}

impl Broadcaster {
    /// Forward mode, generic format, to the sink, signed as the sink
    /// expects; `extra` comes on top.
    async fn start(
        stack: &Stack,
        sink_url: &str,
        dirs: &Dirs,
        client: &reqwest::Client,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Broadcaster> {
        let port = free_port();
        let proc = Proc::spawn(
            Spec {
                name: "broadcaster",
                program: &release_binary(stack, "broadcaster"),
                port,
                envs: [
                    ("BROADCASTER_MODE", "forward".to_string()),
                    ("WEBHOOK_FORMAT", "generic".to_string()),
                    ("WEBHOOK_URL", format!("{sink_url}/")),
                    ("WEBHOOK_SECRET", stack.webhook_secret.clone()),
                    ("LOG_FORMAT", "json".to_string()),
                ]
                .into_iter()
                .chain(stack.nats.service_env(Role::Broadcaster))
                .chain(extra.iter().cloned())
                .collect(),
            },
            &dirs.logs,
            client,
        )
        .await?;
        Ok(Broadcaster {
            proc,
            url: loopback(port),
        })
    }

    /// Waits until all `written` events are handled, timed from the moment
    /// the broadcaster was ready.
    async fn deliver_backlog(
        &self,
        client: &reqwest::Client,
        written: u64,
    ) -> anyhow::Result<Backlog> {
        let ready_at = Instant::now();
        // The runs leave millions of events at full size: allow 4,000/s.
        let backlog_deadline = Duration::from_secs((written / 4_000).max(240));
        let drained = events::wait_handled(client, &self.url, &[written], backlog_deadline).await;
        let delivered_per_s = match drained.as_deref() {
            Ok(&[all_done]) => written as f64 / all_done.duration_since(ready_at).as_secs_f64(),
            Ok(_) => unreachable!("one instant per target"),
            Err(error) => {
                eprintln!("warning: {error:#}");
                0.0
            }
        };
        let broadcaster_cpu_s = usage(self.proc.pid())?.cpu_s;
        println!("broadcaster delivered the backlog at {delivered_per_s:.0}/s");
        Ok(Backlog {
            drained: drained.is_ok(),
            delivered_per_s,
            broadcaster_cpu_s,
        })
    }
}

/// What [`commit_to_webhook`] measured.
pub(crate) struct Latency {
    pub sent: usize,
    pub failed: usize,
    /// Commit → webhook received.
    pub total: Option<stats::Summary>,
    /// Its two parts: commit → stored in the stream (the app's relay), and
    /// stored → webhook received (the broadcaster).
    pub to_stream: Option<stats::Summary>,
    pub from_stream: Option<stats::Summary>,
}

/// Creates todos at a steady `rate` for the plan's event seconds and reads
/// each one's commit → webhook latency from the sink, split at the moment
/// the stream stored the event; every event's timings go to `csv`.
async fn commit_to_webhook(
    stack: &Stack,
    app: &App,
    broadcaster: &Broadcaster,
    sink_url: &str,
    (plan, rate): (&Plan, u32),
    client: &reqwest::Client,
    csv: &Path,
) -> anyhow::Result<Latency> {
    let base = events::handled(client, &broadcaster.url).await?;
    let first_sequence = last_sequence(&stack.nats).await? + 1;
    let count = (rate * plan.event_seconds) as usize;
    println!("creating {count} todos at {rate}/s for the commit → webhook latency");
    let failed = events::create_at_rate(
        client,
        &app.url,
        &stack.api_token,
        rate,
        count,
        EVENT_PREFIX,
    )
    .await;
    events::wait_handled(
        client,
        &broadcaster.url,
        &[base + (count - failed) as u64],
        Duration::from_secs(60),
    )
    .await?;
    let messages: serde_json::Value = client
        .get(format!("{sink_url}/messages"))
        .send()
        .await?
        .json()
        .await
        .context("reading the sink's /messages")?;
    let stored = events::stored_at(&app_stream(&stack.nats).await?, first_sequence).await?;
    let timings = events::latencies(&messages, EVENT_PREFIX, &stored)?;
    fs::write(csv, events::timings_csv(&timings))
        .with_context(|| format!("failed to write {}", csv.display()))?;
    let latency = Latency {
        sent: count,
        failed,
        total: stats::summarize(timings.iter().map(|timing| timing.total).collect()),
        to_stream: stats::summarize(timings.iter().filter_map(|t| Some(t.split?.0)).collect()),
        from_stream: stats::summarize(timings.iter().filter_map(|t| Some(t.split?.1)).collect()),
    };
    for (what, summary) in [
        ("commit → webhook", &latency.total),
        ("commit → stream", &latency.to_stream),
        ("stream → webhook", &latency.from_stream),
    ] {
        if let Some(s) = summary {
            println!(
                "{what:<18} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
                s.p50_ms, s.p99_ms, s.max_ms
            );
        }
    }
    Ok(latency)
}

/// Writes `results.json` and `summary.md`, prints the table, the targets
/// and the SLO verdict; fails if the SLO did not hold.
fn write_and_print(results: &Results, dirs: &Dirs) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(results)?;
    fs::write(dirs.out.join("results.json"), json + "\n")?;
    fs::write(dirs.out.join("summary.md"), results.markdown())?;
    println!("\n{}", results.table());
    for target in &results.targets {
        println!(
            "{} {}: {}",
            if target.met { "✔" } else { "✘" },
            target.what,
            target.measured
        );
    }
    println!("\n{}", results.slo_line());
    println!(
        "\nwrote {} and {} (logs in {})",
        dirs.out.join("results.json").display(),
        dirs.out.join("summary.md").display(),
        dirs.logs.display()
    );
    if !results.slo.pass {
        bail!("the SLO did not hold at every measured point");
    }
    Ok(())
}

/// The targets, as measured in this run (fsync off unless said).
fn targets(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let fewest = results.rows.first().copied().unwrap_or_default();
    let most = results.rows.last().copied().unwrap_or_default();
    let docket = |scenario, connections, rows| {
        results.find(Point {
            scenario,
            connections,
            server: Server::Docket,
            rows,
            durability: Durability::FsyncOff,
        })
    };
    for rows in [fewest, most]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    {
        for (scenario, factor) in [
            (Scenario::Page, 1.0),
            (Scenario::Create, 0.6),
            (Scenario::Toggle, 1.0),
            (Scenario::Delete, 1.0),
            (Scenario::ApiList, 1.0),
        ] {
            let Some(run) = docket(scenario, 64, rows) else {
                continue;
            };
            let Some(ratio) = results.vs_reference(run) else {
                continue;
            };
            let against = if scenario.is_write() {
                "insert"
            } else {
                "page"
            };
            out.push(Target {
                what: format!(
                    "`{}` at 64 connections, {rows} rows ≥ {factor}× the reference's {against}",
                    scenario.label()
                ),
                measured: format!("{ratio:.2}× ({:.0} req/s)", run.wrk.requests_per_s),
                met: ratio >= factor,
            });
        }
        for scenario in [Scenario::Toggle, Scenario::Delete] {
            if let Some(run) = docket(scenario, 256, rows) {
                out.push(Target {
                    what: format!(
                        "`{}` at 256 connections, {rows} rows: p99 < 50 ms",
                        scenario.label()
                    ),
                    measured: format!("{:.2} ms", run.wrk.p99_ms),
                    met: run.wrk.p99_ms < 50.0,
                });
            }
        }
    }
    if most != fewest {
        for scenario in Scenario::ALL {
            let changes: Vec<(u32, f64)> = results
                .runs
                .iter()
                .filter(|run| {
                    run.server == Server::Docket
                        && run.scenario == scenario
                        && run.rows == fewest
                        && run.durability == Durability::FsyncOff
                })
                .filter_map(|small| {
                    let large = docket(scenario, small.connections, most)?;
                    Some((
                        small.connections,
                        large.wrk.requests_per_s / small.wrk.requests_per_s - 1.0,
                    ))
                })
                .collect();
            let Some(&(connections, worst)) = changes.iter().min_by(|a, b| a.1.total_cmp(&b.1))
            else {
                continue;
            };
            out.push(Target {
                what: format!(
                    "`{}` at {most} rows within 20 % of its throughput at {fewest} rows",
                    scenario.label()
                ),
                measured: format!(
                    "worst {:+.0} % (at {connections} connections)",
                    worst * 100.0
                ),
                met: worst >= -0.2,
            });
        }
    }
    let e = &results.events;
    out.push(Target {
        what: "every event the app wrote delivered".into(),
        measured: if e.all_delivered { "yes" } else { "no" }.into(),
        met: e.all_delivered,
    });
    if let Some(latency) = &e.latency {
        out.push(Target {
            what: format!("commit → webhook p99 < 10 ms at {}/s", e.rate_per_s),
            measured: format!("{:.1} ms", latency.p99_ms),
            met: latency.p99_ms < 10.0,
        });
    }
    out.push(Target {
        what: "broadcaster ≥ 15,000 deliveries/s (the whole backlog)".into(),
        measured: format!("{:.0}/s", e.delivered_per_s),
        met: e.delivered_per_s >= 15_000.0,
    });
    let rss = report::mib(results.app_at_end.rss_kib);
    out.push(Target {
        what: "app RSS < 30 MiB at the end of the run".into(),
        measured: format!("{rss:.1} MiB"),
        met: rss < 30.0,
    });
    let peak = results.app_peak_mib();
    out.push(Target {
        what: "app peak RSS < 48 MiB (over the whole run)".into(),
        measured: format!("{peak:.1} MiB"),
        met: peak < 48.0,
    });
    out.push(Target {
        what: "ready within 500 ms of start (migrations applied)".into(),
        measured: format!("{:.0} ms", results.startup.ready_ms),
        met: results.startup.ready_ms < 500.0,
    });
    out
}

/// The signed cookie (`docket_wrote=...`) a change through the page
/// answers with: its holder's page loads read the database.
async fn write_marker(client: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base_url}/todos"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("HX-Request", "true")
        .form(&[("text", "bench: a write for its marker")])
        .send()
        .await
        .context("posting a todo for a write marker")?;
    let set_cookie = header(&response, reqwest::header::SET_COOKIE, "a change")?;
    Ok(set_cookie.split(';').next().unwrap_or_default().to_owned())
}

/// The first API page's current `ETag`, checked to be answered 304.
async fn api_etag(client: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let url = format!("{base_url}{}", wrk::FIRST_API_PAGE);
    let response = client
        .get(&url)
        .send()
        .await
        .context("reading the first API page")?;
    let etag = header(&response, reqwest::header::ETAG, "the API page")?;
    let again = client
        .get(&url)
        .header(reqwest::header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .context("asking for the API page again")?;
    if again.status() != reqwest::StatusCode::NOT_MODIFIED {
        bail!("the API page's own ETag was answered {}", again.status());
    }
    Ok(etag)
}

/// `name` of `response`, which `what` must have answered with.
fn header(
    response: &reqwest::Response,
    name: reqwest::header::HeaderName,
    what: &str,
) -> anyhow::Result<String> {
    let value = response
        .headers()
        .get(&name)
        .with_context(|| format!("{what} answered {} without {name}", response.status()))?;
    Ok(value.to_str()?.to_owned())
}

/// Waits until the app's relay has published every outbox row, so a run
/// never competes with the previous run's relaying.
async fn drain_outbox(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (rows,): (i64,) = sqlx::query_as("select count(*) from outbox")
            .fetch_one(pool)
            .await?;
        if rows == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the app's outbox still holds {rows} rows after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app's JetStream stream, on a connection of its own (as `admin` on a
/// secured server).
async fn app_stream(nats: &Nats) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    let client = nats.connect(Role::Admin).await?;
    async_nats::jetstream::new(client)
        .get_stream(STREAM)
        .await
        .context("the app's stream")
}

/// The CPU time nats-server has used so far.
fn nats_cpu_s(nats: &Nats) -> anyhow::Result<f64> {
    let pid = nats.pid().context("nats-server is not running")?;
    Ok(usage(pid)?.cpu_s)
}

/// The sequence of the last message the app's stream stored.
async fn last_sequence(nats: &Nats) -> anyhow::Result<u64> {
    let mut stream = app_stream(nats).await?;
    let info = stream.info().await.context("the app's stream info")?;
    Ok(info.state.last_sequence)
}

/// Every event the app has published: the messages in its JetStream
/// stream. (Not the outbox's sequence: a request cancelled when wrk stops
/// rolls back and leaves a gap in it.)
async fn events_published(nats: &Nats) -> anyhow::Result<u64> {
    let mut stream = app_stream(nats).await?;
    let info = stream.info().await.context("the app's stream info")?;
    Ok(info.state.messages)
}

/// `todo.created` events in the app's stream.
async fn creates_published(nats: &Nats) -> anyhow::Result<u64> {
    let subjects: Vec<(String, usize)> = app_stream(nats)
        .await?
        .info_with_subjects(CREATED_SUBJECT)
        .await
        .context("the app's stream subjects")?
        .try_collect()
        .await
        .context("the app's stream subjects")?;
    Ok(subjects.iter().map(|(_, count)| *count as u64).sum())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
