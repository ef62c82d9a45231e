//! The signals that ask a Docket process to stop: SIGTERM (what Kubernetes
//! sends before a pod goes away) and Ctrl-C (a terminal). Each binary
//! decides what stopping means; this only says when.

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` once the process is asked to stop, logging `what`
/// stopping means for this service.
pub async fn cancel_on_request(shutdown: CancellationToken, what: &str) {
    requested().await;
    tracing::info!("stop requested: {what}");
    shutdown.cancel();
}

/// Returns once the process is asked to stop.
pub async fn requested() {
    let ctrl_c = async {
        // Without a Ctrl-C handler, SIGTERM still works.
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still works.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_is_a_request_to_stop() {
        // Installed first, so a SIGTERM that comes before `requested`
        // listens is handled by tokio instead of ending the test process.
        let _installed =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let stop = tokio::spawn(super::requested());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!stop.is_finished(), "returned before any signal");

        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());

        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("SIGTERM did not count as a request to stop")
            .unwrap();
    }
}
