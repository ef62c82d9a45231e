//! What a bench run found: `target/bench/results.json` (everything, for
//! tools), `target/bench/summary.md` (for people and the README) and the
//! table printed at the end of the run.

use std::fmt::Write as _;

use serde::Serialize;

use super::process::Usage;
use super::stats::Summary;
use super::wrk::{Scenario, WrkResult};

/// Docket's published objectives: p99 for reads and for writes, ms.
pub const SLO_READ_P99_MS: f64 = 150.0;
pub const SLO_WRITE_P99_MS: f64 = 300.0;

#[derive(Debug, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub mode: &'static str,
    pub seconds_per_run: u64,
    pub seeded_todos: usize,
    pub runs: Vec<Run>,
    pub startup: Startup,
    pub events: Events,
    /// The app after everything, including the event path.
    pub app_at_end: Usage,
    pub slo: Verdict,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let os = read("/etc/os-release");
        Machine {
            cpu: cpuinfo
                .lines()
                .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
                .unwrap_or_default(),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            os: os
                .lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|name| name.trim_matches('"').to_string())
                .unwrap_or_default(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    Docket,
    Reference,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Docket => "docket",
            Server::Reference => "reference",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub scenario: Scenario,
    pub connections: u32,
    pub server: Server,
    #[serde(flatten)]
    pub wrk: WrkResult,
    /// The server's CPU seconds during the run (of 2 × run length at most).
    pub server_cpu_s: f64,
    pub server_peak_rss_mib: f64,
    /// Busy CPU seconds of the whole machine during the run (2 cores ×
    /// run length is the most there is), everything included: the server,
    /// PostgreSQL, wrk and whatever else ran on the box.
    pub machine_busy_cpu_s: f64,
}

/// Widths of [`Run::figures`] in the terminal table.
const TABLE_WIDTHS: [usize; 9] = [8, 8, 8, 8, 6, 8, 6, 8, 7];

impl Run {
    /// req/s, p50, p99 and max ms, errors, KiB per response, server and
    /// machine CPU s, peak RSS MiB: formatted once for both tables.
    fn figures(&self) -> [String; 9] {
        let w = &self.wrk;
        [
            format!("{:.0}", w.requests_per_s),
            format!("{:.2}", w.p50_ms),
            format!("{:.2}", w.p99_ms),
            format!("{:.1}", w.max_ms),
            w.errors.to_string(),
            format!("{:.1}", w.bytes_per_response / 1024.0),
            format!("{:.1}", self.server_cpu_s),
            format!("{:.1}", self.machine_busy_cpu_s),
            format!("{:.1}", self.server_peak_rss_mib),
        ]
    }

    /// [`Run::figures`] padded to [`TABLE_WIDTHS`], as one table cell run.
    fn table_figures(&self) -> String {
        let padded: Vec<String> = self
            .figures()
            .iter()
            .zip(TABLE_WIDTHS)
            .map(|(figure, width)| format!("{figure:>width$}"))
            .collect();
        padded.join(" ")
    }
}

#[derive(Debug, Serialize)]
pub struct Startup {
    /// A fresh database: includes applying the migrations.
    pub first_ready_ms: f64,
    /// Migrations already applied: the number the target is about.
    pub ready_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Events {
    /// Events the app wrote to its outbox during the HTTP scenarios.
    pub backlog: u64,
    /// Of those, creates: one event per todo, delivered in parallel. They
    /// come first in the stream; the rest toggle the 50 seeded todos.
    pub creates: u64,
    /// How fast a freshly started broadcaster delivered that backlog.
    pub delivered_per_s: f64,
    /// ... its creates: the rate for independent events.
    pub creates_per_s: f64,
    /// ... the toggles after them: each todo's events one at a time, in order.
    pub toggles_per_s: f64,
    pub broadcaster_cpu_s: f64,
    /// Whether every event the app ever wrote reached the sink.
    pub all_delivered: bool,
    pub rate_per_s: u32,
    pub sent: usize,
    pub failed: usize,
    /// Commit → webhook received.
    pub latency: Option<Summary>,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub pass: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Results {
    pub fn find(&self, scenario: Scenario, connections: u32, server: Server) -> Option<&Run> {
        self.runs.iter().find(|run| {
            run.scenario == scenario && run.connections == connections && run.server == server
        })
    }

    /// The Markdown summary; its first table is the one the README shows.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(
            md,
            "# Docket benchmark ({} run)\n\n{} cores ({}), {}, Linux {}; PostgreSQL, NATS, \
             the load generator (wrk, 2 threads) and the services all on this machine. \
             {} s per run, {} seeded todos. Reproduce with `cargo xtask bench`. \
             \"machine CPU s\" is every process's busy time during the run \
             (at most cores × run length): well above server + PostgreSQL + wrk means \
             something else was running.\n",
            self.mode, m.cores, m.cpu, m.os, m.kernel, self.seconds_per_run, self.seeded_todos
        );
        md.push_str(
            "| scenario | conns | server | req/s | p50 ms | p99 ms | max ms | errors | KiB/resp | server CPU s | machine CPU s | peak RSS MiB |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for run in &self.runs {
            let mut cells = vec![
                format!("`{}`", run.scenario.label()),
                run.connections.to_string(),
                run.server.name().to_owned(),
            ];
            cells.extend(run.figures());
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        let e = &self.events;
        let _ = writeln!(md, "\n## Event path\n");
        match &e.latency {
            Some(l) => {
                let _ = writeln!(
                    md,
                    "- commit → webhook received, {} events at {}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} failed to create)",
                    l.count, e.rate_per_s, l.p50_ms, l.p99_ms, l.max_ms, e.failed
                );
            }
            None => {
                let _ = writeln!(md, "- commit → webhook received: no events arrived");
            }
        }
        let _ = writeln!(
            md,
            "- broadcaster delivering a backlog of {} events to a receiver that answers at once: {:.0} deliveries/s ({:.1} CPU s): its {} creates (one event per todo, in parallel) at {:.0}/s, then {} toggles of the 50 seeded todos (each todo's events in order, one at a time) at {:.0}/s; every event the app wrote was delivered: {}",
            e.backlog,
            e.delivered_per_s,
            e.broadcaster_cpu_s,
            e.creates,
            e.creates_per_s,
            e.backlog - e.creates,
            e.toggles_per_s,
            if e.all_delivered { "yes" } else { "NO" }
        );
        let _ = writeln!(
            md,
            "\n## App\n\n- ready (`/readyz` 200) {:.0} ms after start with migrations applied ({:.0} ms on a fresh database)\n\
             - at the end of the run: RSS {:.1} MiB, peak {:.1} MiB, {:.1} CPU s in all",
            self.startup.ready_ms,
            self.startup.first_ready_ms,
            mib(self.app_at_end.rss_kib),
            mib(self.app_at_end.peak_rss_kib),
            self.app_at_end.cpu_s
        );
        let _ = writeln!(md, "\n## Targets\n");
        for t in &self.targets {
            let _ = writeln!(
                md,
                "- {} {}: {}",
                if t.met { "✔" } else { "✘" },
                t.what,
                t.measured
            );
        }
        let _ = writeln!(md, "\n{}", self.slo_line());
        md
    }

    pub fn slo_line(&self) -> String {
        let mut line = format!(
            "SLO (p99 < {SLO_READ_P99_MS} ms for reads, < {SLO_WRITE_P99_MS} ms for writes, no errors, at every measured point): {}",
            if self.slo.pass { "PASS" } else { "FAIL" }
        );
        for failure in &self.slo.failures {
            let _ = write!(line, "\n  - {failure}");
        }
        line
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<16} {:>5} {:<9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>8} {:>7} {:>7}\n",
            "scenario",
            "conns",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "KiB/resp",
            "CPU s",
            "box CPU",
            "RSS MiB",
            "vs ref"
        );
        for run in &self.runs {
            let w = &run.wrk;
            let ratio = match run.server {
                Server::Docket => self
                    .find(run.scenario, run.connections, Server::Reference)
                    .map(|r| format!("{:.2}×", w.requests_per_s / r.wrk.requests_per_s))
                    .unwrap_or_default(),
                Server::Reference => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<16} {:>5} {:<9} {} {:>7}",
                run.scenario.label(),
                run.connections,
                run.server.name(),
                run.table_figures(),
                ratio
            );
        }
        out
    }
}

/// Docket's SLOs at every point it was measured.
pub fn slo(runs: &[Run]) -> Verdict {
    let failures: Vec<String> = runs
        .iter()
        .filter(|run| run.server == Server::Docket)
        .filter_map(|run| {
            let limit = if run.scenario.is_write() {
                SLO_WRITE_P99_MS
            } else {
                SLO_READ_P99_MS
            };
            (run.wrk.p99_ms >= limit || run.wrk.errors > 0).then(|| {
                format!(
                    "{} at {} connections: p99 {:.1} ms (limit {limit} ms), {} errors",
                    run.scenario.label(),
                    run.connections,
                    run.wrk.p99_ms,
                    run.wrk.errors
                )
            })
        })
        .collect();
    Verdict {
        pass: failures.is_empty(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: Scenario, server: Server, p99_ms: f64, errors: u64) -> Run {
        Run {
            scenario,
            connections: 64,
            server,
            wrk: WrkResult {
                requests: 1000,
                requests_per_s: 100.0,
                bytes_per_response: 100.0,
                errors,
                bad_status: errors,
                p50_ms: 1.0,
                p99_ms,
                max_ms: p99_ms,
            },
            server_cpu_s: 1.0,
            server_peak_rss_mib: 10.0,
            machine_busy_cpu_s: 2.0,
        }
    }

    #[test]
    fn the_slo_holds_reads_and_writes_to_their_own_limits_and_ignores_the_reference() {
        let ok = [
            run(Scenario::Page, Server::Docket, 149.0, 0),
            run(Scenario::Create, Server::Docket, 299.0, 0),
            run(Scenario::Page, Server::Reference, 900.0, 5),
        ];
        assert!(slo(&ok).pass);
        let slow_read = [run(Scenario::ApiList, Server::Docket, 200.0, 0)];
        assert!(!slo(&slow_read).pass);
        let errors = [run(Scenario::Toggle, Server::Docket, 1.0, 1)];
        assert_eq!(slo(&errors).failures.len(), 1);
    }

    #[test]
    fn a_runs_figures_are_padded_to_the_terminal_tables_widths_and_precisions() {
        let run = run(Scenario::Page, Server::Docket, 12.345, 3);
        let w = &run.wrk;
        assert_eq!(
            run.table_figures(),
            format!(
                "{:>8.0} {:>8.2} {:>8.2} {:>8.1} {:>6} {:>8.1} {:>6.1} {:>8.1} {:>7.1}",
                w.requests_per_s,
                w.p50_ms,
                w.p99_ms,
                w.max_ms,
                w.errors,
                w.bytes_per_response / 1024.0,
                run.server_cpu_s,
                run.machine_busy_cpu_s,
                run.server_peak_rss_mib
            )
        );
    }
}
