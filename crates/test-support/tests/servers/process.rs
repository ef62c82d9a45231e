//! Process liveness as the leftover clean-up sees it.

use std::time::{Duration, Instant};

use test_support::process_is_running;

#[test]
fn a_child_runs_until_it_exits_even_before_it_is_reaped() {
    let mut child = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    assert!(process_is_running(pid));

    child.kill().unwrap();
    // Not waited for yet: a zombie, which must not count as running.
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_is_running(pid) {
        assert!(
            Instant::now() < deadline,
            "a killed child still counts as running"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait().unwrap();
}
