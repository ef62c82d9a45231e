//! The per-scenario figures: printed, and collected in
//! `target/faults/report.md` for the README's "What survives what".

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What one scenario's ledger counted.
#[derive(Debug, Clone)]
pub struct Figures {
    pub scenario: String,
    /// Create requests the load sent.
    pub sent: usize,
    /// Answered 201: the app promised to keep them.
    pub acknowledged: usize,
    /// Todos in PostgreSQL at the end (acknowledged plus any whose answer was lost).
    pub stored: usize,
    /// Messages in `TODOS`.
    pub published: usize,
    /// Distinct events the receiver accepted.
    pub delivered: usize,
    /// Accepted requests beyond the first per event id (the ledger checks
    /// each `webhook-id` is its event's id). Counted at the receiver, after
    /// every stage: JetStream's duplicate window hides a second publish of
    /// an event in `TODOS`, so counting there could never find one.
    pub duplicates: usize,
    /// Acknowledged but not stored, stored but not published, or published
    /// but not delivered. Must be 0.
    pub lost: usize,
    /// From the end of the fault until everything was delivered.
    pub recovery: Duration,
    /// Scenario-specific observations.
    pub note: String,
}

const HEADER: &str = "| scenario | sent | acknowledged | stored | published | delivered | duplicates | lost | recovery | notes |\n|---|---|---|---|---|---|---|---|---|---|\n";

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} |",
            self.scenario,
            self.sent,
            self.acknowledged,
            self.stored,
            self.published,
            self.delivered,
            self.duplicates,
            self.lost,
            self.recovery.as_secs_f64(),
            self.note
        )
    }
}

impl Figures {
    /// Prints the line and records it: each scenario (a process of its own
    /// under nextest) writes its own file, then rebuilds `report.md` from all
    /// of them, so parallel scenarios never interleave.
    pub fn record(&self) -> anyhow::Result<()> {
        println!("{HEADER}{self}");
        let dir = folder();
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(format!("{}.line", self.scenario)),
            format!("{self}\n"),
        )?;
        let mut lines: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "line"))
            .filter_map(|p| std::fs::read_to_string(&p).ok().map(|text| (p, text)))
            .collect();
        lines.sort();
        let body: String = lines.into_iter().map(|(_, text)| text).collect();
        std::fs::write(dir.join("report.md"), format!("{HEADER}{body}"))?;
        Ok(())
    }

    /// Every acknowledged todo was stored, published and delivered.
    #[track_caller]
    pub fn assert_nothing_lost(&self) {
        assert_eq!(self.lost, 0, "{self:?}");
    }

    /// No event reached the receiver twice. Counted at the receiver by event
    /// id: neither a republished event nor a second delivery may reach it
    /// when no part of NATS or the broadcaster fails.
    #[track_caller]
    pub fn assert_no_duplicates(&self) {
        assert_eq!(self.duplicates, 0, "{self:?}");
    }
}

fn folder() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| test_support::workspace_root().join("target"))
        .join("faults")
}
