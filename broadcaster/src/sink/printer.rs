//! The sink's readable lines, written to stdout by a thread of their own.
//!
//! A request must not wait on stdout. Whoever reads it can fall behind (a
//! terminal, a test harness reading the pipe while the machine is busy),
//! and once the pipe's buffer is full a `println!` in a handler blocks the
//! runtime thread it runs on; with every runtime thread blocked, every
//! request in flight stalls. The bench saw exactly that: all 128 deliveries
//! in flight unanswered for seconds. Lines are queued instead, up to
//! [`QUEUE`]; beyond that they are counted, and the count is printed once
//! stdout takes lines again. `GET /messages` keeps every message either way.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;

/// Lines waiting for stdout (about 100 bytes each).
pub const QUEUE: usize = 4096;

/// Where handlers hand their lines. Cheap to clone.
#[derive(Clone)]
pub struct Printer {
    lines: SyncSender<String>,
    skipped: Arc<AtomicU64>,
}

impl Printer {
    /// Starts the thread that writes to stdout; it ends when every clone
    /// of the printer is dropped.
    pub fn start() -> Printer {
        let (lines, queued) = mpsc::sync_channel(QUEUE);
        let skipped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&skipped);
        thread::Builder::new()
            .name("sink-stdout".into())
            .spawn(move || write_lines(&queued, &counted))
            .expect("a thread can be started");
        Printer { lines, skipped }
    }

    /// Queues `line` for stdout, or counts it if the queue is full.
    pub fn print(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.lines.try_send(line) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes whatever is queued in one go, then says how many lines were
/// skipped while stdout was behind. Stops when stdout is gone.
fn write_lines(queued: &Receiver<String>, skipped: &AtomicU64) {
    // Not locked for good: the process's other prints must still get through.
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout());
    while let Ok(first) = queued.recv() {
        let written = std::iter::once(first)
            .chain(queued.try_iter())
            .try_for_each(|line| writeln!(out, "{line}"))
            .and_then(|()| match skipped.swap(0, Ordering::Relaxed) {
                0 => Ok(()),
                n => writeln!(
                    out,
                    "… {n} lines not printed: stdout was behind (GET /messages has them)"
                ),
            })
            .and_then(|()| out.flush());
        if written.is_err() {
            return;
        }
    }
}
