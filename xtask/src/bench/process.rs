//! The measured processes: spawned with their output in a log file under
//! `target/bench/logs/`, timed from spawn to their readiness URL answering
//! 200, and read from `/proc` for CPU time and memory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

/// How often readiness is polled: fine enough to time a 500 ms target.
const READY_POLL: Duration = Duration::from_millis(5);
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// Linux reports `/proc/<pid>/stat` times in USER_HZ, which is 100 on every
/// architecture Linux supports today (it is an ABI constant, not CONFIG_HZ).
const USER_HZ: f64 = 100.0;

/// A running service, SIGKILLed when dropped.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
    /// From spawn until the readiness URL first answered 200.
    pub ready_after: Duration,
}

/// What to start: every measured process is an HTTP service that listens on
/// the loopback `port` it is given as `PORT` and is ready once `/readyz`
/// answers 200.
pub struct Spec<'a> {
    pub name: &'a str,
    pub program: &'a Path,
    pub port: u16,
    /// Besides `PORT`.
    pub envs: Vec<(&'static str, String)>,
}

/// The base URL of a service listening on the loopback `port`.
pub fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl Proc {
    pub async fn spawn(
        spec: Spec<'_>,
        log_dir: &Path,
        client: &reqwest::Client,
    ) -> anyhow::Result<Proc> {
        let log = log_dir.join(format!("{}.log", spec.name));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let ready_url = format!("{}/readyz", loopback(spec.port));
        let started = Instant::now();
        let mut child = tokio::process::Command::new(spec.program)
            .env("PORT", spec.port.to_string())
            .envs(spec.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to run {}", spec.program.display()))?;
        let pid = child.id().context("a just-spawned process has an id")?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready; its log ({}) ends:\n{}",
                    spec.name,
                    log.display(),
                    tail(&log)
                );
            }
            let answer = client
                .get(&ready_url)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                break;
            }
            if started.elapsed() > READY_DEADLINE {
                bail!(
                    "{} was not ready at {} within {READY_DEADLINE:?}; its log ends:\n{}",
                    spec.name,
                    ready_url,
                    tail(&log)
                );
            }
            tokio::time::sleep(READY_POLL).await;
        }
        Ok(Proc {
            name: spec.name.to_string(),
            child,
            pid,
            log,
            ready_after: started.elapsed(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!(
                    "{} did not stop within 10 s of SIGTERM ({})",
                    self.name,
                    self.log.display()
                )
            }
        }
    }
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// CPU time and memory of one process, from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Usage {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    pub rss_kib: u64,
    /// The resident set's high-water mark (since start or the last
    /// [`reset_peak`]).
    pub peak_rss_kib: u64,
}

pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    Ok(Usage {
        cpu_s: cpu_seconds(&stat)?,
        rss_kib: status_kib(&status, "VmRSS")?,
        peak_rss_kib: status_kib(&status, "VmHWM")?,
    })
}

/// Busy CPU seconds of the whole machine since boot (every process, ours
/// and others'), from the first line of `/proc/stat`: a run's delta shows
/// whether the box was saturated and how much of it was someone else's.
pub fn machine_busy_s() -> anyhow::Result<f64> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    busy_seconds(&stat)
}

/// user + nice + system + irq + softirq + steal (not idle, not iowait).
fn busy_seconds(stat: &str) -> anyhow::Result<f64> {
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .context("no `cpu` line in /proc/stat")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Ok(busy as f64 / USER_HZ)
}

/// Starts a new peak-RSS window (`echo 5 > clear_refs`, Linux ≥ 4.0), so
/// each scenario's peak is its own. Best effort: without it the peak is
/// the process's lifetime peak, which is still an upper bound.
pub fn reset_peak(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// utime + stime from `/proc/<pid>/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    let rest = stat
        .rsplit_once(')')
        .context("no `)` in /proc/<pid>/stat")?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14, 15.
    let tick = |index: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(index - 3)
            .with_context(|| format!("/proc/<pid>/stat has no field {index}"))?
            .parse::<u64>()? as f64)
    };
    Ok((tick(14)? + tick(15)?) / USER_HZ)
}

fn status_kib(status: &str, key: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/<pid>/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parens() {
        let stat =
            "4242 (todo app (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_seconds(stat).unwrap(), 3.25);
    }

    #[test]
    fn memory_is_read_in_kib_from_status() {
        let status = "Name:\ttodo-app\nVmHWM:\t   24576 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(status_kib(status, "VmRSS").unwrap(), 20480);
        assert_eq!(status_kib(status, "VmHWM").unwrap(), 24576);
        assert!(status_kib(status, "VmSwap").is_err());
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 10 50 9000 300 5 5 30 0 0\ncpu0 1 2 3\n";
        assert_eq!(busy_seconds(stat).unwrap(), 2.0);
        assert!(busy_seconds("intr 1 2\n").is_err());
    }

    #[test]
    fn this_process_can_be_measured() {
        let usage = usage(std::process::id()).unwrap();
        assert!(usage.rss_kib > 0 && usage.peak_rss_kib >= usage.rss_kib);
    }
}
