//! Loopback ports for the servers tests start, handed out so that two
//! starts never race for one.
//!
//! A port the kernel picks (`bind` to port 0) is free only until the probe
//! releases it, and the kernel hands the same range out at random to every
//! other port-0 listener on the machine: a parallel test's in-process server
//! could take it before the server it was picked for bound it (a sign-in test
//! failed so, "127.0.0.1:46217 … Address already in use"). So ports come from
//! below the kernel's ephemeral range, where it never picks for `bind` or
//! `connect`, in turn across every process on the machine through a counter
//! in a locked file: a port is handed out again only after the whole range
//! has been, and only if nothing listens on it then.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::ops::Range;
use std::path::PathBuf;

use crate::port_is_free;

/// How many ports below the ephemeral range are taken turns on.
const SPAN: u16 = 16_384;

/// The lowest port handed out: below it lie well-known and privileged ones.
const LOWEST: u16 = 1_024;

/// A loopback TCP port that nothing listens on and that no other test on this
/// machine has been handed since the whole range was last gone through.
///
/// Where the range or the counter cannot be had (no `/proc`, no temp
/// folder), the kernel picks, as every caller did before.
pub fn free_port() -> u16 {
    taken_in_turn().unwrap_or_else(|| {
        TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("the OS should hand out a free loopback port")
    })
}

fn taken_in_turn() -> Option<u16> {
    let range =
        below_ephemeral(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?)?;
    let mut counter = Counter::open().ok()?;
    let (index, port) = next_free(&range, counter.read(), port_is_free)?;
    counter.write(index + 1).ok()?;
    Some(port)
}

/// The first port of `range` from the `next`th on, going round, that
/// `is_free`, with its index.
fn next_free(range: &Range<u16>, next: u64, is_free: impl Fn(u16) -> bool) -> Option<(u64, u16)> {
    let size = u64::from(range.end - range.start);
    (0..size).find_map(|step| {
        let index = (next + step) % size;
        let port = range.start + u16::try_from(index).expect("an index within the range");
        is_free(port).then_some((index, port))
    })
}

/// The ports just below the kernel's ephemeral range ("32768\t60999"), or
/// none when it starts too low to leave room.
fn below_ephemeral(ip_local_port_range: &str) -> Option<Range<u16>> {
    let low: u16 = ip_local_port_range
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let start = low.saturating_sub(SPAN).max(LOWEST);
    (low.saturating_sub(start) >= SPAN / 4).then_some(start..low)
}

/// The machine-wide turn, in the temp folder, locked while read and written.
struct Counter(File);

impl Counter {
    fn open() -> std::io::Result<Counter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(Counter::path())?;
        // Released when the file is closed, on drop.
        file.lock()?;
        Ok(Counter(file))
    }

    fn path() -> PathBuf {
        std::env::temp_dir().join("docket-test-ports")
    }

    /// The next index; a missing or unreadable count starts at the beginning.
    fn read(&mut self) -> u64 {
        let mut text = String::new();
        let _ = self.0.read_to_string(&mut text);
        text.trim().parse().unwrap_or(0)
    }

    fn write(&mut self, next: u64) -> std::io::Result<()> {
        self.0.seek(SeekFrom::Start(0))?;
        self.0.set_len(0)?;
        self.0.write_all(next.to_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_below_the_ephemeral_range() {
        assert_eq!(below_ephemeral("32768\t60999\n"), Some(16_384..32_768));
        assert_eq!(below_ephemeral("10000 60999"), Some(1_024..10_000));
        assert_eq!(below_ephemeral("2000 60999"), None, "too little room");
        assert_eq!(below_ephemeral("garbage"), None);
    }

    #[test]
    fn consecutive_ports_differ_and_are_free() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        assert!(ports.iter().all(|&port| port_is_free(port)));
    }

    #[test]
    fn the_turn_passes_over_taken_ports_and_goes_round() {
        let range = 20_000..20_004;
        let all_free = |_| true;
        assert_eq!(next_free(&range, 0, all_free), Some((0, 20_000)));
        assert_eq!(next_free(&range, 5, all_free), Some((1, 20_001)));
        let taken = |port| port != 20_003 && port != 20_000;
        assert_eq!(next_free(&range, 3, taken), Some((1, 20_001)));
        assert_eq!(next_free(&range, 0, |_| false), None);
    }
}
