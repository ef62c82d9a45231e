//! What a bench run found: `target/bench/results.json` (everything, for
//! tools), `target/bench/summary.md` (for people and the README) and the
//! table printed at the end of the run.

use std::fmt::Write as _;

use serde::Serialize;

use super::process::Usage;
use super::replication::EngineRun;
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
    /// The table sizes measured, smallest first.
    pub rows: Vec<u64>,
    pub runs: Vec<Run>,
    pub startup: Startup,
    pub events: Events,
    /// The app after everything, including the event path.
    pub app_at_end: Usage,
    /// Creates and commit → webhook on one nats-server and on a cluster.
    pub replication: Vec<EngineRun>,
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

/// How the bench's PostgreSQL commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `fsync=off`: nothing waits for the disk (how tests run).
    FsyncOff,
    /// `fsync=on`, `synchronous_commit=on`: each commit waits for its WAL
    /// to reach the disk, as in production.
    FsyncOn,
}

impl Durability {
    pub fn name(self) -> &'static str {
        match self {
            Durability::FsyncOff => "fsync off",
            Durability::FsyncOn => "fsync on",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub scenario: Scenario,
    pub connections: u32,
    pub server: Server,
    /// Todos in the table when the run started.
    pub rows: u64,
    pub durability: Durability,
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
    /// Of those, creates (the rest are the toggles of the toggled seeds,
    /// each todo's events delivered one at a time, and deletes).
    pub creates: u64,
    /// How fast a freshly started broadcaster delivered that backlog.
    pub delivered_per_s: f64,
    pub broadcaster_cpu_s: f64,
    /// nats-server's CPU time while the broadcaster delivered the backlog.
    pub nats_cpu_s: f64,
    /// Whether every event the app ever wrote reached the sink.
    pub all_delivered: bool,
    pub rate_per_s: u32,
    pub sent: usize,
    pub failed: usize,
    /// Commit → webhook received.
    pub latency: Option<Summary>,
    /// Commit → stored in the stream, and stored → webhook received.
    pub to_stream: Option<Summary>,
    pub from_stream: Option<Summary>,
}

impl Events {
    /// The event path's figures, one list item each.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    md,
                    "- commit → webhook received, {} events at {}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} failed to create)",
                    l.count, self.rate_per_s, l.p50_ms, l.p99_ms, l.max_ms, self.failed
                );
            }
            None => {
                let _ = writeln!(md, "- commit → webhook received: no events arrived");
            }
        }
        for (what, part) in [
            ("commit → stored in the stream", &self.to_stream),
            ("stored → webhook received", &self.from_stream),
        ] {
            if let Some(l) = part {
                let _ = writeln!(
                    md,
                    "  - {what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    l.p50_ms, l.p99_ms, l.max_ms
                );
            }
        }
        let _ = writeln!(
            md,
            "- broadcaster delivering a backlog of {} events ({} creates; the rest toggles of the same 50 todos, each todo's events in order, one at a time, and deletes) to a receiver that answers at once: {:.0} deliveries/s ({:.1} CPU s, nats-server {:.1} CPU s meanwhile); every event the app wrote was delivered: {}",
            self.backlog,
            self.creates,
            self.delivered_per_s,
            self.broadcaster_cpu_s,
            self.nats_cpu_s,
            if self.all_delivered { "yes" } else { "NO" }
        );
        md
    }
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

/// Which run: everything but the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub scenario: Scenario,
    pub connections: u32,
    pub server: Server,
    pub rows: u64,
    pub durability: Durability,
}

impl Run {
    pub fn point(&self) -> Point {
        Point {
            scenario: self.scenario,
            connections: self.connections,
            server: self.server,
            rows: self.rows,
            durability: self.durability,
        }
    }

    /// The reference's run this one is compared with.
    pub fn reference_point(&self) -> Point {
        Point {
            scenario: self.scenario.compared_with(),
            server: Server::Reference,
            ..self.point()
        }
    }

    /// What was sent: the reference's runs beside a write are its insert.
    pub fn label(&self) -> &'static str {
        match self.server {
            Server::Docket => self.scenario.label(),
            Server::Reference => self.scenario.reference().label(),
        }
    }
}

impl Results {
    pub fn find(&self, point: Point) -> Option<&Run> {
        self.runs.iter().find(|run| run.point() == point)
    }

    /// The app's highest RSS over the whole run, MiB. Each run resets the
    /// app's high-water mark to measure its own peak, so the mark left at
    /// the end covers only the last run and the event path.
    pub fn app_peak_mib(&self) -> f64 {
        self.runs
            .iter()
            .filter(|run| run.server == Server::Docket)
            .map(|run| run.server_peak_rss_mib)
            .fold(mib(self.app_at_end.peak_rss_kib), f64::max)
    }

    /// Docket's run over the reference's, in requests per second.
    pub fn vs_reference(&self, run: &Run) -> Option<f64> {
        let reference = self.find(run.reference_point())?;
        Some(run.wrk.requests_per_s / reference.wrk.requests_per_s)
    }

    /// The Markdown table of Docket's figures at the fewest and the most
    /// rows side by side, fsync off; empty with one table size.
    fn by_rows(&self) -> String {
        let (Some(&fewest), Some(&most)) = (self.rows.first(), self.rows.last()) else {
            return String::new();
        };
        if fewest == most {
            return String::new();
        }
        let mut md = format!(
            "| scenario | conns | req/s, {fewest} rows | p99 ms | vs ref | req/s, {most} rows | p99 ms | vs ref | {most} vs {fewest} |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        );
        for small in self.runs.iter().filter(|run| {
            run.server == Server::Docket
                && run.rows == fewest
                && run.durability == Durability::FsyncOff
        }) {
            let Some(large) = self.find(Point {
                rows: most,
                ..small.point()
            }) else {
                continue;
            };
            let ratio = |run: &Run| {
                self.vs_reference(run)
                    .map(|r| format!("{r:.2}×"))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {:.0} | {:.2} | {} | {:.0} | {:.2} | {} | {:+.0} % |",
                small.scenario.label(),
                small.connections,
                small.wrk.requests_per_s,
                small.wrk.p99_ms,
                ratio(small),
                large.wrk.requests_per_s,
                large.wrk.p99_ms,
                ratio(large),
                (large.wrk.requests_per_s / small.wrk.requests_per_s - 1.0) * 100.0
            );
        }
        md
    }

    /// The Markdown table of the writes with fsync on beside fsync off.
    fn by_durability(&self) -> String {
        let durable: Vec<&Run> = self
            .runs
            .iter()
            .filter(|run| run.durability == Durability::FsyncOn)
            .collect();
        if durable.is_empty() {
            return String::new();
        }
        let mut md = String::from(
            "| scenario | conns | server | rows | req/s, fsync off | p99 ms | req/s, fsync on | p99 ms | on vs off |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for on in durable {
            let Some(off) = self.find(Point {
                durability: Durability::FsyncOff,
                ..on.point()
            }) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:+.0} % |",
                on.label(),
                on.connections,
                on.server.name(),
                on.rows,
                off.wrk.requests_per_s,
                off.wrk.p99_ms,
                on.wrk.requests_per_s,
                on.wrk.p99_ms,
                (on.wrk.requests_per_s / off.wrk.requests_per_s - 1.0) * 100.0
            );
        }
        md
    }

    /// The Markdown summary; its first table is the one the README shows.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(
            md,
            "# Docket benchmark ({} run)\n\n{} cores ({}), {}, Linux {}; PostgreSQL, NATS, \
             the load generator (wrk, 2 threads) and the services all on this machine. \
             {} s per run, with {} todos in the table. Reproduce with `cargo xtask bench`. \
             \"machine CPU s\" is every process's busy time during the run \
             (at most cores × run length): well above server + PostgreSQL + wrk means \
             something else was running. \"vs ref\" compares with the reference server's \
             page (reads) or bare insert (writes) in the same conditions; each write \
             with the reference's insert run right after it.\n",
            self.mode,
            m.cores,
            m.cpu,
            m.os,
            m.kernel,
            self.seconds_per_run,
            self.rows
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
        );
        let by_rows = self.by_rows();
        if !by_rows.is_empty() {
            let _ = writeln!(md, "## As the table grows (fsync off)\n\n{by_rows}");
        }
        let by_durability = self.by_durability();
        if !by_durability.is_empty() {
            let _ = writeln!(md, "## Writes with a durable database\n\n{by_durability}");
        }
        md.push_str(
            "## Every run\n\n\
             | scenario | conns | server | rows | durability | req/s | p50 ms | p99 ms | max ms | errors | KiB/resp | server CPU s | machine CPU s | peak RSS MiB |\n\
             |---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for run in &self.runs {
            let mut cells = vec![
                format!("`{}`", run.label()),
                run.connections.to_string(),
                run.server.name().to_owned(),
                run.rows.to_string(),
                run.durability.name().to_owned(),
            ];
            cells.extend(run.figures());
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        let _ = write!(md, "\n## Event path\n\n{}", self.events.markdown());
        let _ = writeln!(
            md,
            "\n## App\n\n- ready (`/readyz` 200) {:.0} ms after start with migrations applied ({:.0} ms on a fresh database)\n\
             - at the end of the run: RSS {:.1} MiB, peak over the whole run {:.1} MiB, {:.1} CPU s in all",
            self.startup.ready_ms,
            self.startup.first_ready_ms,
            mib(self.app_at_end.rss_kib),
            self.app_peak_mib(),
            self.app_at_end.cpu_s
        );
        let _ = writeln!(
            md,
            "\n## Replication\n\n{}",
            super::replication::markdown(&self.replication)
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
            "{:<18} {:>5} {:<9} {:>7} {:<9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6} {:>8} {:>7} {:>7}\n",
            "scenario",
            "conns",
            "server",
            "rows",
            "",
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
            let ratio = match run.server {
                Server::Docket => self
                    .vs_reference(run)
                    .map(|r| format!("{r:.2}×"))
                    .unwrap_or_default(),
                Server::Reference => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<18} {:>5} {:<9} {:>7} {:<9} {} {:>7}",
                run.label(),
                run.connections,
                run.server.name(),
                run.rows,
                run.durability.name(),
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
                    "{} at {} connections, {} rows, {}: p99 {:.1} ms (limit {limit} ms), {} errors",
                    run.scenario.label(),
                    run.connections,
                    run.rows,
                    run.durability.name(),
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
            rows: 50,
            durability: Durability::FsyncOff,
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

    /// A run's results with these runs and nothing else of note.
    fn results(runs: Vec<Run>) -> Results {
        Results {
            machine: Machine::this(),
            mode: "test",
            seconds_per_run: 1,
            rows: vec![50, 1_000_000],
            runs,
            startup: Startup {
                first_ready_ms: 1.0,
                ready_ms: 1.0,
            },
            events: Events {
                backlog: 0,
                creates: 0,
                delivered_per_s: 0.0,
                broadcaster_cpu_s: 0.0,
                nats_cpu_s: 0.0,
                all_delivered: true,
                rate_per_s: 1,
                sent: 0,
                failed: 0,
                latency: None,
                to_stream: None,
                from_stream: None,
            },
            app_at_end: Usage {
                cpu_s: 0.0,
                rss_kib: 0,
                peak_rss_kib: 0,
            },
            replication: Vec::new(),
            slo: slo(&[]),
            targets: Vec::new(),
        }
    }

    #[test]
    fn the_apps_peak_is_the_highest_of_its_runs_and_the_end_and_never_the_references() {
        let mut busy = run(Scenario::PageUncached, Server::Docket, 1.0, 0);
        busy.server_peak_rss_mib = 40.0;
        let mut reference = run(Scenario::Page, Server::Reference, 1.0, 0);
        reference.server_peak_rss_mib = 90.0;
        let mut results = results(vec![busy, reference]);
        results.app_at_end.peak_rss_kib = 20 * 1024;
        assert_eq!(results.app_peak_mib(), 40.0, "a run's peak, reset since");
        results.app_at_end.peak_rss_kib = 50 * 1024;
        assert_eq!(results.app_peak_mib(), 50.0, "the event path's peak");
    }

    #[test]
    fn the_side_by_side_table_pairs_each_docket_run_with_its_larger_table_and_reference() {
        let mut small = run(Scenario::Toggle, Server::Docket, 10.0, 0);
        small.wrk.requests_per_s = 2000.0;
        let mut large = run(Scenario::Toggle, Server::Docket, 12.0, 0);
        large.rows = 1_000_000;
        large.wrk.requests_per_s = 1800.0;
        let mut reference = run(Scenario::Toggle, Server::Reference, 5.0, 0);
        reference.rows = 1_000_000;
        reference.wrk.requests_per_s = 1500.0;
        let results = results(vec![small, large, reference]);
        let table = results.by_rows();
        let line = table
            .lines()
            .find(|line| line.starts_with("| `PUT"))
            .expect(&table);
        assert_eq!(
            line,
            "| `PUT /todos/{id}` | 64 | 2000 | 10.00 |  | 1800 | 12.00 | 1.20× | -10 % |"
        );
    }

    #[test]
    fn each_write_is_compared_with_the_reference_insert_run_beside_it() {
        let at = |scenario, server, requests_per_s| {
            let mut run = run(scenario, server, 5.0, 0);
            run.wrk.requests_per_s = requests_per_s;
            run
        };
        let results = results(vec![
            at(Scenario::Toggle, Server::Docket, 2000.0),
            at(Scenario::Create, Server::Docket, 3000.0),
            at(Scenario::Create, Server::Reference, 1000.0),
            at(Scenario::Toggle, Server::Reference, 2500.0),
            at(Scenario::PageUncached, Server::Docket, 500.0),
            at(Scenario::Page, Server::Reference, 1000.0),
        ]);
        let [toggles, creates, _, beside_toggles, uncached, _] = &results.runs[..] else {
            panic!("six runs");
        };
        assert_eq!(results.vs_reference(toggles), Some(0.8));
        assert_eq!(results.vs_reference(creates), Some(3.0));
        assert_eq!(results.vs_reference(uncached), Some(0.5));
        // What the reference was sent beside the toggles: its insert.
        assert_eq!(beside_toggles.label(), "POST /todos");
        let table = results.table();
        let inserts = table
            .lines()
            .filter(|line| line.starts_with("POST /todos") && line.contains("reference"));
        assert_eq!(inserts.count(), 2, "{table}");
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
