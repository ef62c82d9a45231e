//! `cargo xtask bench [--quick]`: how many requests Docket serves, how
//! little memory it needs and how fast its events reach a webhook, measured
//! on this machine against a plain axum + sqlx reference server.
//!
//! It starts a private stack (PostgreSQL, NATS, the app built with
//! `--release`, the broadcaster's webhook sink, and `bench-reference`),
//! seeds 50 todos through the API, then for each scenario and connection
//! count runs wrk against Docket and, where the reference has the same
//! handler, against the reference right after it (interleaved, so drift in
//! the machine's load hits both alike). Before every run the database is
//! put back to the 50 seeded todos and the outbox is drained, so each run
//! starts from the same state and none pays for the previous one's events.
//!
//! The broadcaster is started only after the HTTP scenarios: it then
//! delivers their whole backlog (its sustained delivery rate, and proof
//! that every event the app wrote arrives), and finally todos created at a
//! steady rate give the commit → webhook latency.
//!
//! Writes `target/bench/results.json` and `target/bench/summary.md`, and
//! prints the table, the targets and the SLO verdict. Not part of
//! `cargo xtask test`: speed is shown here, not asserted in tests.

mod events;
mod process;
mod report;
mod stats;
mod wrk;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{Stack, StackBuilder, free_port};
use uuid::Uuid;

use self::process::{Proc, Spec, loopback, machine_busy_s, reset_peak, usage};
use self::report::{Results, Run, Server, Target};
use self::wrk::Scenario;
use crate::install::{self, Tool};
use crate::workspace::{Workspace, run_checked};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A smoke run: 64 connections only, 2 s per run, a short event path.
    #[arg(long)]
    quick: bool,
}

/// How much to measure.
struct Plan {
    mode: &'static str,
    connections: &'static [u32],
    per_run: Duration,
    event_rate: u32,
    event_seconds: u32,
}

/// 4 scenarios × 3 levels for Docket + 2 × 3 for the reference, 10 s each,
/// plus set-up and the event path: about 5 minutes on 2 cores.
const FULL: Plan = Plan {
    mode: "full",
    connections: &[16, 64, 256],
    per_run: Duration::from_secs(10),
    event_rate: 500,
    event_seconds: 10,
};

const QUICK: Plan = Plan {
    mode: "quick",
    connections: &[64],
    per_run: Duration::from_secs(2),
    event_rate: 500,
    event_seconds: 2,
};

const SEEDED_TODOS: usize = 50;
/// Text of the todos whose events the latency is measured on.
const EVENT_PREFIX: &str = "event-path-";
/// The app's JetStream stream (`events::STREAM`; xtask does not depend on
/// the event contract crate for one name).
pub(crate) const STREAM: &str = "TODOS";
/// `events::EventType::Created.subject()`.
const CREATED_SUBJECT: &str = "todos.created";

pub fn run(workspace: &Workspace, args: Args) -> anyhow::Result<()> {
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
    let plan = if args.quick { QUICK } else { FULL };
    tokio::runtime::Runtime::new()
        .context("failed to start a tokio runtime")?
        .block_on(bench(workspace.root(), &plan))
}

/// The whole run, phase by phase.
async fn bench(root: &Path, plan: &Plan) -> anyhow::Result<()> {
    let dirs = Dirs::prepare(root)?;
    let client = reqwest::Client::new();
    let stack = start_stack(root).await?;
    let app = start_app(&stack, &dirs, &client).await?;
    let seeds = events::create_todos(&client, &app.url, &stack.api_token, SEEDED_TODOS, |i| {
        format!("Seeded todo {i}: water the plants, then call the bank")
    })
    .await
    .context("seeding todos")?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&stack.database_url)
        .await
        .context("connecting to the bench database")?;

    let runs = http_scenarios(&stack, &app, &pool, &seeds, plan, &dirs, &client).await?;
    let (events, broadcaster) = event_path(&stack, &app, &pool, plan, &dirs, &client).await?;
    let app_at_end = usage(app.proc.pid())?;

    broadcaster.stop().await?;
    app.proc.stop().await?;
    drop(pool);
    drop(stack);

    let mut results = Results {
        machine: report::Machine::this(),
        mode: plan.mode,
        seconds_per_run: plan.per_run.as_secs(),
        seeded_todos: SEEDED_TODOS,
        slo: report::slo(&runs),
        runs,
        startup: app.startup,
        events,
        app_at_end,
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
        .binaries_in(&root.join("target/release"))
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
/// second is the one a redeploy sees, and stays up.
async fn start_app(stack: &Stack, dirs: &Dirs, client: &reqwest::Client) -> anyhow::Result<App> {
    let port = free_port();
    let binary = release_binary(stack, "todo-app");
    let spec = || Spec {
        name: "app",
        program: &binary,
        port,
        envs: vec![
            ("DATABASE_URL", stack.database_url.clone()),
            ("NATS_URL", stack.nats.url()),
            ("API_TOKEN", stack.api_token.clone()),
            ("LOG_FORMAT", "json".to_string()),
            // wrk is one client; a limit it never reaches keeps the
            // limiter's cost in every write measured.
            ("WRITE_RATE_LIMIT", "1000000/second".to_string()),
        ],
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

/// Each scenario at each connection count against Docket, and against the
/// reference right after where it has the same handler.
async fn http_scenarios(
    stack: &Stack,
    app: &App,
    pool: &PgPool,
    seeds: &[Uuid],
    plan: &Plan,
    dirs: &Dirs,
    client: &reqwest::Client,
) -> anyhow::Result<Vec<Run>> {
    let reference_port = free_port();
    let reference_url = loopback(reference_port);
    let reference = Proc::spawn(
        Spec {
            name: "reference",
            program: &release_binary(stack, "bench-reference"),
            port: reference_port,
            envs: vec![("DATABASE_URL", stack.database_url.clone())],
        },
        &dirs.logs,
        client,
    )
    .await?;

    let mut runs = Vec::new();
    for scenario in Scenario::ALL {
        for &connections in plan.connections {
            for server in [Server::Docket, Server::Reference] {
                let (url, pid) = match server {
                    Server::Docket => (&app.url, app.proc.pid()),
                    Server::Reference if scenario.has_reference() => {
                        (&reference_url, reference.pid())
                    }
                    Server::Reference => continue,
                };
                drain_outbox(pool).await?;
                reset(pool, seeds).await?;
                let script = dirs.out.join(format!("{scenario:?}-{}.lua", server.name()));
                fs::write(&script, wrk::script(scenario, seeds, server.name()))
                    .with_context(|| format!("failed to write {}", script.display()))?;
                reset_peak(pid);
                let before = usage(pid)?;
                let machine_before = machine_busy_s()?;
                let result = wrk::run(&script, url, connections, plan.per_run).await?;
                let after = usage(pid)?;
                let machine_busy_cpu_s = machine_busy_s()? - machine_before;
                println!(
                    "{:<16} {connections:>4} conns  {:<9} {:>7.0} req/s  p99 {:>7.2} ms  {} errors",
                    scenario.label(),
                    server.name(),
                    result.requests_per_s,
                    result.p99_ms,
                    result.errors
                );
                runs.push(Run {
                    scenario,
                    connections,
                    server,
                    wrk: result,
                    server_cpu_s: after.cpu_s - before.cpu_s,
                    server_peak_rss_mib: report::mib(after.peak_rss_kib),
                    machine_busy_cpu_s,
                });
            }
        }
    }
    reference.stop().await?;
    Ok(runs)
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
    let nats_url = stack.nats.url();
    // Everything the scenarios wrote is in JetStream now.
    drain_outbox(pool).await?;
    let written = events_published(&nats_url).await?;
    // The stream holds the creates (one per todo) before the toggles of
    // the 50 seeded todos, whose events go out one at a time per todo.
    let creates = creates_published(&nats_url).await?;
    println!(
        "starting the broadcaster with {written} events waiting ({creates} creates, then {} toggles)",
        written - creates
    );
    let sink_url = stack
        .sink
        .as_ref()
        .context("the bench stack runs the sink")?
        .url();
    let broadcaster = Broadcaster::start(stack, &sink_url, dirs, client).await?;
    let backlog = broadcaster
        .deliver_backlog(client, creates, written)
        .await?;

    let (sent, failed, latency) =
        commit_to_webhook(stack, app, &broadcaster, &sink_url, plan, client).await?;
    drain_outbox(pool).await?;
    let all_delivered = backlog.drained
        && events::handled(client, &broadcaster.url).await? >= events_published(&nats_url).await?;
    let events = report::Events {
        backlog: written,
        creates,
        delivered_per_s: backlog.delivered_per_s,
        creates_per_s: backlog.creates_per_s,
        toggles_per_s: backlog.toggles_per_s,
        broadcaster_cpu_s: backlog.broadcaster_cpu_s,
        all_delivered,
        rate_per_s: plan.event_rate,
        sent,
        failed,
        latency,
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
    creates_per_s: f64,
    toggles_per_s: f64,
    broadcaster_cpu_s: f64,
}

impl Broadcaster {
    /// Forward mode, generic format, to the sink, signed as the sink expects.
    async fn start(
        stack: &Stack,
        sink_url: &str,
        dirs: &Dirs,
        client: &reqwest::Client,
    ) -> anyhow::Result<Broadcaster> {
        let port = free_port();
        let proc = Proc::spawn(
            Spec {
                name: "broadcaster",
                program: &release_binary(stack, "broadcaster"),
                port,
                envs: vec![
                    ("NATS_URL", stack.nats.url()),
                    ("BROADCASTER_MODE", "forward".to_string()),
                    ("WEBHOOK_FORMAT", "generic".to_string()),
                    ("WEBHOOK_URL", format!("{sink_url}/")),
                    ("WEBHOOK_SECRET", stack.webhook_secret.clone()),
                    ("LOG_FORMAT", "json".to_string()),
                ],
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

    /// Waits until the `creates`, then all `written` events are handled, and
    /// times each part from the moment the broadcaster was ready.
    async fn deliver_backlog(
        &self,
        client: &reqwest::Client,
        creates: u64,
        written: u64,
    ) -> anyhow::Result<Backlog> {
        let ready_at = Instant::now();
        let backlog_deadline = Duration::from_secs(240);
        let drained =
            events::wait_handled(client, &self.url, &[creates, written], backlog_deadline).await;
        let rate = |count: u64, from: Instant, to: Instant| {
            count as f64 / to.duration_since(from).as_secs_f64()
        };
        let (delivered_per_s, creates_per_s, toggles_per_s) = match drained.as_deref() {
            Ok(&[creates_done, all_done]) => (
                rate(written, ready_at, all_done),
                rate(creates, ready_at, creates_done),
                rate(written - creates, creates_done, all_done),
            ),
            Ok(_) => unreachable!("one instant per target"),
            Err(error) => {
                eprintln!("warning: {error:#}");
                (0.0, 0.0, 0.0)
            }
        };
        let broadcaster_cpu_s = usage(self.proc.pid())?.cpu_s;
        println!(
            "broadcaster delivered the backlog at {delivered_per_s:.0}/s: the creates at {creates_per_s:.0}/s, the toggles at {toggles_per_s:.0}/s"
        );
        Ok(Backlog {
            drained: drained.is_ok(),
            delivered_per_s,
            creates_per_s,
            toggles_per_s,
            broadcaster_cpu_s,
        })
    }
}

/// Creates todos at the plan's steady rate and reads each one's commit →
/// webhook latency from the sink: how many were sent, how many failed, and
/// the latency summary.
async fn commit_to_webhook(
    stack: &Stack,
    app: &App,
    broadcaster: &Broadcaster,
    sink_url: &str,
    plan: &Plan,
    client: &reqwest::Client,
) -> anyhow::Result<(usize, usize, Option<stats::Summary>)> {
    let base = events::handled(client, &broadcaster.url).await?;
    let count = (plan.event_rate * plan.event_seconds) as usize;
    println!(
        "creating {count} todos at {}/s for the commit → webhook latency",
        plan.event_rate
    );
    let failed = events::create_at_rate(
        client,
        &app.url,
        &stack.api_token,
        plan.event_rate,
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
    let latency = stats::summarize(events::latencies(&messages, EVENT_PREFIX)?);
    Ok((count, failed, latency))
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

/// The targets, as measured in this run.
fn targets(results: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let vs_reference = |scenario: Scenario, factor: f64, p99_ms: f64, out: &mut Vec<Target>| {
        let docket = results.find(scenario, 64, Server::Docket);
        let reference = results.find(scenario, 64, Server::Reference);
        if let (Some(d), Some(r)) = (docket, reference) {
            let ratio = d.wrk.requests_per_s / r.wrk.requests_per_s;
            out.push(Target {
                what: format!(
                    "`{}` at 64 connections ≥ {factor}× the reference",
                    scenario.label()
                ),
                measured: format!(
                    "{:.2}× ({:.0} vs {:.0} req/s)",
                    ratio, d.wrk.requests_per_s, r.wrk.requests_per_s
                ),
                met: ratio >= factor,
            });
            out.push(Target {
                what: format!("`{}` at 64 connections p99 < {p99_ms} ms", scenario.label()),
                measured: format!("{:.2} ms", d.wrk.p99_ms),
                met: d.wrk.p99_ms < p99_ms,
            });
        }
    };
    vs_reference(Scenario::Page, 1.0, 15.0, &mut out);
    vs_reference(Scenario::Create, 0.6, 25.0, &mut out);
    let e = &results.events;
    out.push(Target {
        what: "every event the app wrote delivered".into(),
        measured: if e.all_delivered { "yes" } else { "no" }.into(),
        met: e.all_delivered,
    });
    if let Some(latency) = &e.latency {
        out.push(Target {
            what: format!("commit → webhook p99 < 50 ms at {}/s", e.rate_per_s),
            measured: format!("{:.1} ms", latency.p99_ms),
            met: latency.p99_ms < 50.0,
        });
    }
    out.push(Target {
        what: "broadcaster ≥ 5,000 deliveries/s (the whole backlog)".into(),
        measured: format!(
            "{:.0}/s (creates {:.0}/s, toggles in per-todo order {:.0}/s)",
            e.delivered_per_s, e.creates_per_s, e.toggles_per_s
        ),
        met: e.delivered_per_s >= 5000.0,
    });
    let rss = report::mib(results.app_at_end.rss_kib);
    out.push(Target {
        what: "app RSS < 30 MiB at the end of the run".into(),
        measured: format!("{rss:.1} MiB"),
        met: rss < 30.0,
    });
    out.push(Target {
        what: "ready within 500 ms of start (migrations applied)".into(),
        measured: format!("{:.0} ms", results.startup.ready_ms),
        met: results.startup.ready_ms < 500.0,
    });
    out
}

/// Puts the todos back to the seeded ones (rows other runs created are
/// deleted; the seeds' `done` may differ, which no scenario depends on).
async fn reset(pool: &PgPool, seeds: &[Uuid]) -> anyhow::Result<()> {
    sqlx::query("delete from todos where id <> all($1)")
        .bind(seeds)
        .execute(pool)
        .await
        .context("resetting the todos")?;
    // Dead rows from the last run would otherwise slow the next one's scans.
    // A simple-protocol query: VACUUM cannot be prepared.
    sqlx::raw_sql("vacuum analyze todos, outbox")
        .execute(pool)
        .await
        .context("vacuuming")?;
    Ok(())
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

/// The app's JetStream stream, on a connection of its own.
async fn app_stream(nats_url: &str) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    let client = async_nats::connect(nats_url)
        .await
        .context("connecting to NATS")?;
    async_nats::jetstream::new(client)
        .get_stream(STREAM)
        .await
        .context("the app's stream")
}

/// Every event the app has published: the messages in its JetStream
/// stream. (Not the outbox's sequence: a request cancelled when wrk stops
/// rolls back and leaves a gap in it.)
async fn events_published(nats_url: &str) -> anyhow::Result<u64> {
    let mut stream = app_stream(nats_url).await?;
    let info = stream.info().await.context("the app's stream info")?;
    Ok(info.state.messages)
}

/// `todo.created` events in the app's stream.
async fn creates_published(nats_url: &str) -> anyhow::Result<u64> {
    let subjects: Vec<(String, usize)> = app_stream(nats_url)
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
