//! The broadcaster's log, for environments where it only logs (staging).
//!
//! Staging's broadcaster runs in `log` mode: it sends nothing, and writes one
//! JSON line per event (`"message": "log mode: logged, not sent"`, with the
//! body it would have sent in `webhook.body`). The suite reads that log by
//! running the command in `E2E_BROADCASTER_LOG` with `sh -c` and reading its
//! standard output, e.g.
//! `kubectl -n docket-staging logs -l app.kubernetes.io/name=broadcaster --tail=-1 --since=15m`.
//! Lines of Argo CD's application logs API (`{"result": {"content": "…"}}`)
//! are read too, so the command may also be a `curl` to it.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::process::Command;
use tokio::time::{Instant, sleep};

/// The broadcaster's log line for an event it logged instead of sending.
pub const LOGGED: &str = "log mode: logged, not sent";

/// Reads the broadcaster's log through a command.
#[derive(Debug, Clone)]
pub struct BroadcasterLog {
    command: String,
}

impl BroadcasterLog {
    pub fn new(command: String) -> BroadcasterLog {
        BroadcasterLog { command }
    }

    /// The command's standard output; fails when it does.
    pub async fn read(&self) -> anyhow::Result<String> {
        let output = Command::new("sh")
            .args(["-c", &self.command])
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("cannot run E2E_BROADCASTER_LOG `{}`", self.command))?;
        if !output.status.success() {
            bail!(
                "E2E_BROADCASTER_LOG `{}` failed ({}): {}",
                self.command,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Polls the log until the body of a logged event reads `message`, and
    /// returns that body; fails after `within`, saying how many were logged.
    pub async fn wait_for(&self, message: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let bodies = logged_bodies(&self.read().await?);
            if let Some(found) = bodies
                .iter()
                .find(|b| b.get("message").and_then(Value::as_str) == Some(message))
            {
                return Ok(found.clone());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the broadcaster logged no `{message}` within {within:?} ({} logged event(s) \
                     in what `{}` printed)",
                    bodies.len(),
                    self.command
                );
            }
            // Polling the log, bounded by the deadline above.
            sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The bodies of every event logged instead of sent, in `output`'s order.
/// Lines that are not the broadcaster's JSON (a pod prefix, other output)
/// are skipped.
pub fn logged_bodies(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter_map(|line| match line.pointer("/result/content") {
            // Argo CD's logs API wraps each line of the pod's log.
            Some(Value::String(content)) => serde_json::from_str(content).ok(),
            _ => Some(line),
        })
        .filter(|line| line.get("message").and_then(Value::as_str) == Some(LOGGED))
        .filter_map(|line| serde_json::from_str(line.get("webhook.body")?.as_str()?).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn logged(text: &str) -> String {
        let body = json!({"message": format!("Todo created: {text}"),
                          "event": {"type": "todo.created"}});
        json!({"level": "INFO", "message": LOGGED, "webhook.body": body.to_string(),
               "span": {"event.id": "0192"}})
        .to_string()
    }

    #[test]
    fn only_logged_events_are_read_from_a_pod_log() {
        let output = [
            logged("Buy milk"),
            json!({"message": "delivered", "webhook.body": "{}"}).to_string(),
            "not json".to_owned(),
            logged("Call mum"),
        ]
        .join("\n");
        let bodies = logged_bodies(&output);
        let messages: Vec<_> = bodies
            .iter()
            .map(|b| b["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            messages,
            ["Todo created: Buy milk", "Todo created: Call mum"]
        );
        assert_eq!(bodies[0]["event"]["type"], "todo.created");
    }

    #[test]
    fn lines_of_argo_cds_logs_api_are_unwrapped() {
        let output = json!({"result": {"content": logged("Buy milk"), "podName": "broadcaster-1"}});
        let bodies = logged_bodies(&output.to_string());
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0]["message"], "Todo created: Buy milk");
    }

    #[tokio::test]
    async fn the_command_output_is_read_and_its_failure_reported() {
        let line = logged("Buy milk");
        let log = BroadcasterLog::new(format!("printf '%s\\n' '{line}'"));
        let body = log
            .wait_for("Todo created: Buy milk", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(body["event"]["type"], "todo.created");
        let error = log
            .wait_for("Todo created: Call mum", Duration::ZERO)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("1 logged event(s)"), "{error}");

        let error = BroadcasterLog::new("echo denied >&2; exit 3".to_owned())
            .read()
            .await
            .unwrap_err();
        assert!(error.to_string().contains("denied"), "{error}");
    }
}
