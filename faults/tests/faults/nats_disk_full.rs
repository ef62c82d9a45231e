//! NATS's store on a disk that fills up: a small tmpfs (mounting needs
//! root, which the fault suite's machines have) holds the JetStream store;
//! a filler file takes every free byte while the load runs. Writes must keep
//! succeeding in the app (the outbox holds the events) and the events must
//! flow once the space returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use faults::scenario::{Scenario, Writes};
use faults::stack;
use test_support::Stack;
use test_support::{Nats, free_port};
use tokio::time::{Instant, sleep};

const FULL_FOR: Duration = Duration::from_secs(15);

#[tokio::test]
#[ignore = "fault suite: cargo xtask test --faults"]
async fn a_full_nats_disk_delays_events_but_loses_none() -> anyhow::Result<()> {
    // Declared first, dropped last: the server stops before the unmount.
    let disk = SmallDisk::mount("32m")?;
    let nats = Nats::start_secured_in(&disk.path.join("nats"), free_port())?;
    let mut stack = stack::start_on(nats).await?;
    let scenario = Scenario::under_load(&stack, "6 NATS disk full 15 s", Writes::STEADY);

    sleep(Duration::from_secs(5)).await;
    let filler = disk.path.join("filler");
    let filled = fill(&filler)?;
    sleep(FULL_FOR).await;
    std::fs::remove_file(&filler)?;
    let mut freed = Instant::now();
    // nats-server 2.9.10 whose store hit ENOSPC stops answering JetStream
    // requests, logs nothing, ignores SIGTERM and stays so when the space
    // returns: an operator restarts it (SIGKILL). Record whether that was
    // needed, and do it.
    let restarted = if jetstream_answers(&stack).await {
        None
    } else {
        let log = std::fs::read_to_string(stack.nats.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let why = lines[lines.len().saturating_sub(6)..].to_vec();
        stack.kill_nats()?;
        stack.nats.start_again()?;
        freed = Instant::now();
        Some(why.join("\n"))
    };

    let (results, mut figures) = scenario.settle(&stack, freed).await?;
    figures.note = format!(
        "tmpfs 32 MiB, filler {} MiB; writes rejected {}, cut off {}; {}",
        filled >> 20,
        results.rejected,
        results.broken.len(),
        match &restarted {
            None => "JetStream resumed by itself".to_owned(),
            Some(_) => "JetStream stopped answering until nats-server was SIGKILLed and restarted"
                .to_owned(),
        }
    );
    if let Some(why) = &restarted {
        println!("nats-server log after the disk filled: {why}");
    }
    figures.record()?;

    results.assert_all_acknowledged("writes succeed while NATS cannot store");
    figures.assert_nothing_lost();
    Ok(())
}

/// Whether JetStream answers a stream info request within 15 s.
async fn jetstream_answers(stack: &Stack) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(js) = stack.jetstream().await
            && let Ok(mut stream) = js.get_stream(events::STREAM).await
            && stream.info().await.is_ok()
        {
            return true;
        }
        sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Writes zeros to `path` until the disk is full; returns the bytes written.
fn fill(path: &Path) -> anyhow::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => return Ok(written),
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => return Ok(written), // ENOSPC
            Err(e) => return Err(e).context("filling the disk"),
        }
    }
}

/// A tmpfs of a given size on a temporary folder, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> anyhow::Result<SmallDisk> {
        let dir = tempfile::Builder::new()
            .prefix("docket-small-disk-")
            .tempdir()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mounting a tmpfs failed ({status}): this scenario needs root");
        }
        Ok(SmallDisk {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
