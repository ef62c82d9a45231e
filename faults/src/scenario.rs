//! The frame every fault scenario shares: a steady write load on the suite's
//! stack while the scenario injects its fault, then the ledger's count once
//! the stack has settled. With the checks every scenario makes
//! ([`Figures::assert_nothing_lost`] and its neighbours), a scenario file is
//! left with its fault and what it asserts.

use std::time::Duration;

use test_support::Stack;
use tokio::time::Instant;

use crate::ledger;
use crate::load::{Load, Results};
use crate::report::Figures;

/// How long the stack has to settle after the load ends, unless a scenario
/// says otherwise with [`Scenario::settle_within`].
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

/// How much a scenario's load writes: `total` creates, one every `every`.
#[derive(Debug, Clone, Copy)]
pub struct Writes {
    pub total: usize,
    pub every: Duration,
}

impl Writes {
    /// The suite's steady load: 300 creates, one every 100 ms, so writes go
    /// on for 30 s, through the fault and past it.
    pub const STEADY: Writes = Writes {
        total: 300,
        every: Duration::from_millis(100),
    };
}

/// A scenario under way: its load runs while the scenario injects its fault.
pub struct Scenario {
    name: String,
    load: Load,
}

impl Scenario {
    /// Starts the `writes` through `stack`'s app. `name` is the scenario's
    /// row in the report; it also labels the todos, so a row in the
    /// database tells which scenario wrote it.
    pub fn under_load(stack: &Stack, name: &str, writes: Writes) -> Scenario {
        Scenario {
            name: name.to_owned(),
            load: Load::start(stack.app.url(), name, writes.total, writes.every),
        }
    }

    /// Waits for the load to finish and `stack` to settle, then counts
    /// (see [`ledger::settle`]); recovery is measured from `fault_cleared`.
    /// The scenario sets the figures' note, records them, then checks.
    pub async fn settle(
        self,
        stack: &Stack,
        fault_cleared: Instant,
    ) -> anyhow::Result<(Results, Figures)> {
        self.settle_within(stack, fault_cleared, SETTLE_WITHIN)
            .await
    }

    /// As [`Scenario::settle`], for a fault that leaves a backlog slower to
    /// clear than the default allows.
    pub async fn settle_within(
        self,
        stack: &Stack,
        fault_cleared: Instant,
        within: Duration,
    ) -> anyhow::Result<(Results, Figures)> {
        let results = self.load.finish().await;
        let figures = ledger::settle(stack, &self.name, &results, fault_cleared, within).await?;
        Ok((results, figures))
    }
}
