//! What replication costs: creates under load and the commit → webhook
//! latency, on one nats-server with the streams at R1 (staging, and
//! `cargo xtask up`) and on a three-server cluster with them at R3
//! (production's `components/nats-cluster`).
//!
//! Both engines run the shipped `nats.conf` (users, `sync_interval:
//! always`), each under a stack of its own: a fresh PostgreSQL, the app
//! and, once the creates are in, the broadcaster. The runs follow each
//! other on the same machine, single server first; on loopback the
//! cluster's routes cost CPU, not network latency, so production's
//! round trips between nodes come on top of the R3 figures.

use std::fmt::Write as _;
use std::fs;

use anyhow::Context;
use serde::Serialize;
use test_support::{Nats, StackBuilder, start_secured_cluster};

use super::stats::Summary;
use super::wrk::{self, Inputs, Scenario, WrkResult};
use super::{
    Broadcaster, Dirs, Plan, commit_to_webhook, connect, drain_outbox, events_published, start_app,
};

/// The variable every service reads its streams' replica count from
/// (`events::STREAM_REPLICAS_VARIABLE`; xtask does not depend on the event
/// contract crate for one name).
const REPLICAS_VARIABLE: &str = "NATS_STREAM_REPLICAS";
/// The creates run at the connection count the targets use.
const CONNECTIONS: u32 = 64;
/// Events per second for the latency: below what either engine delivers.
/// The shipped `nats.conf` flushes every JetStream write to disk
/// (`sync_interval: always`), so the backlog shows a delivery rate bound by
/// the disk (about 1,000/s here); offered more than that, the latency would
/// measure the queue, not replication.
const EVENT_RATE: u32 = 500;

/// The two ways Docket runs NATS.
#[derive(Debug, Clone, Copy)]
enum Engine {
    Single,
    Cluster,
}

impl Engine {
    fn servers(self) -> usize {
        match self {
            Engine::Single => 1,
            Engine::Cluster => 3,
        }
    }

    /// As the streams are kept: one copy per server.
    fn replicas(self) -> u8 {
        match self {
            Engine::Single => 1,
            Engine::Cluster => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Single => "one nats-server, R1",
            Engine::Cluster => "three-node cluster, R3",
        }
    }

    /// Its servers, started; the first is the one the services connect to
    /// (they learn the others from it).
    async fn start(self) -> anyhow::Result<Vec<Nats>> {
        match self {
            Engine::Single => Ok(vec![Nats::start_secured()?]),
            Engine::Cluster => start_secured_cluster(self.servers()).await,
        }
    }
}

/// One engine's figures.
#[derive(Debug, Serialize)]
pub struct EngineRun {
    pub engine: &'static str,
    pub servers: usize,
    pub replicas: u8,
    /// `POST /todos` through the page's form, at 64 connections.
    pub create: WrkResult,
    /// The creates' events, delivered by a broadcaster started after them.
    pub backlog: u64,
    pub delivered_per_s: f64,
    pub all_delivered: bool,
    /// Todos created at the plan's steady rate: commit → webhook received.
    pub rate_per_s: u32,
    pub failed: usize,
    pub latency: Option<Summary>,
}

/// Both engines, single server first.
pub async fn measure(
    plan: &Plan,
    dirs: &Dirs,
    client: &reqwest::Client,
    binaries: &std::path::Path,
) -> anyhow::Result<Vec<EngineRun>> {
    let mut runs = Vec::new();
    for engine in [Engine::Single, Engine::Cluster] {
        runs.push(
            measure_one(engine, plan, dirs, client, binaries)
                .await
                .with_context(|| format!("measuring on {}", engine.name()))?,
        );
    }
    Ok(runs)
}

async fn measure_one(
    engine: Engine,
    plan: &Plan,
    dirs: &Dirs,
    client: &reqwest::Client,
    binaries: &std::path::Path,
) -> anyhow::Result<EngineRun> {
    println!(
        "{}: starting its servers, PostgreSQL and the app",
        engine.name()
    );
    let mut servers = engine.start().await?;
    let first = servers.remove(0);
    // The other servers stay up until the stack on the first is dropped.
    let _peers = servers;
    let stack = StackBuilder::new()
        .without_app()
        .binaries_in(binaries)
        .on_nats(first)
        .sink(None, false)
        .start()
        .await?;
    let replicas = (REPLICAS_VARIABLE, engine.replicas().to_string());
    let app = start_app(&stack, dirs, client, std::slice::from_ref(&replicas)).await?;
    let pool = connect(&stack).await?;

    let inputs = Inputs {
        ids: &[],
        cursor: None,
        etag: None,
        tag: "docket",
        write_marker: None,
    };
    let script = dirs.out.join(format!("Create-r{}.lua", engine.replicas()));
    fs::write(&script, wrk::script(Scenario::Create, &inputs, CONNECTIONS))
        .with_context(|| format!("failed to write {}", script.display()))?;
    let create = wrk::run(&script, &app.url, CONNECTIONS, plan.per_run).await?;
    println!(
        "{:<24} create at {CONNECTIONS} conns: {:>7.0} req/s  p99 {:>7.2} ms  {} errors",
        engine.name(),
        create.requests_per_s,
        create.p99_ms,
        create.errors
    );

    drain_outbox(&pool).await?;
    let backlog = events_published(&stack.nats).await?;
    let sink_url = stack
        .sink
        .as_ref()
        .context("the bench stack runs the sink")?
        .url();
    let broadcaster = Broadcaster::start(&stack, &sink_url, dirs, client, &[replicas]).await?;
    let delivered = broadcaster.deliver_backlog(client, backlog).await?;
    let super::Latency {
        sent,
        failed,
        total: latency,
        ..
    } = commit_to_webhook(
        &stack,
        &app,
        &broadcaster,
        &sink_url,
        (plan, EVENT_RATE),
        client,
        &dirs
            .logs
            .join(format!("latency-r{}.csv", engine.replicas())),
    )
    .await?;
    if let Some(latency) = &latency {
        println!(
            "{:<24} commit → webhook at {EVENT_RATE}/s: p50 {:.1} ms  p99 {:.1} ms ({sent} sent, {failed} failed)",
            engine.name(),
            latency.p50_ms,
            latency.p99_ms
        );
    }
    broadcaster.proc.stop().await?;
    app.proc.stop().await?;
    drop(pool);
    drop(stack);
    Ok(EngineRun {
        engine: engine.name(),
        servers: engine.servers(),
        replicas: engine.replicas(),
        create,
        backlog,
        delivered_per_s: delivered.delivered_per_s,
        all_delivered: delivered.drained,
        rate_per_s: EVENT_RATE,
        failed,
        latency,
    })
}

/// The section of `summary.md` (and of `replication.md` when run alone).
pub fn markdown(runs: &[EngineRun]) -> String {
    let rate = runs.first().map_or(EVENT_RATE, |run| run.rate_per_s);
    let mut md = format!(
        "| NATS | creates/s (64 conns) | create p99 ms | backlog delivered/s | commit → webhook at {rate}/s: p50 ms | p99 ms | max ms |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let latency = |pick: fn(&Summary) -> f64| {
            run.latency
                .as_ref()
                .map_or_else(|| "–".to_owned(), |l| format!("{:.1}", pick(l)))
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {:.0}{} | {} | {} | {} |",
            run.engine,
            run.create.requests_per_s,
            run.create.p99_ms,
            run.delivered_per_s,
            if run.all_delivered { "" } else { " (NOT all)" },
            latency(|l| l.p50_ms),
            latency(|l| l.p99_ms),
            latency(|l| l.max_ms),
        );
    }
    if let [single, cluster] = runs {
        let _ = writeln!(
            md,
            "\nAt R3 the creates run at {:.0} % of R1's rate; the commit → webhook p99 is {}.",
            cluster.create.requests_per_s / single.create.requests_per_s * 100.0,
            match (&single.latency, &cluster.latency) {
                (Some(one), Some(three)) =>
                    format!("{:+.1} ms against R1", three.p99_ms - one.p99_ms),
                _ => "not measured (no events arrived)".to_owned(),
            }
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(engine: Engine, creates_per_s: f64, p99_ms: f64) -> EngineRun {
        EngineRun {
            engine: engine.name(),
            servers: engine.servers(),
            replicas: engine.replicas(),
            create: WrkResult {
                requests: 0,
                requests_per_s: creates_per_s,
                bytes_per_response: 0.0,
                errors: 0,
                bad_status: 0,
                p50_ms: 1.0,
                p99_ms: 4.0,
                max_ms: 9.0,
            },
            backlog: 10,
            delivered_per_s: 5000.0,
            all_delivered: engine.replicas() == 1,
            rate_per_s: 2000,
            failed: 0,
            latency: Some(Summary {
                count: 10,
                p50_ms: 1.0,
                p99_ms,
                max_ms: 20.0,
            }),
        }
    }

    #[test]
    fn the_section_sets_r3_against_r1_and_flags_an_undelivered_backlog() {
        let md = markdown(&[
            run(Engine::Single, 2000.0, 3.0),
            run(Engine::Cluster, 1500.0, 7.5),
        ]);
        assert!(
            md.contains("| one nats-server, R1 | 2000 | 4.0 | 5000 | 1.0 | 3.0 | 20.0 |"),
            "{md}"
        );
        assert!(md.contains("| 5000 (NOT all) |"), "{md}");
        assert!(
            md.contains("creates run at 75 % of R1's rate; the commit → webhook p99 is +4.5 ms"),
            "{md}"
        );
    }
}
