//! Secrets are never logged: a full stack (app, three broadcasters,
//! PostgreSQL, nats-server, a receiver) runs with known secrets (the API
//! token, the webhook signing secret, every NATS user's password, a
//! password in `DATABASE_URL`, a token in `WEBHOOK_URL`), writes go
//! through the UI form and the API (with the token, and with near misses of
//! it), every event is delivered, and then every process's log (app,
//! broadcasters, nats-server, PostgreSQL) is searched for each secret in
//! every form it could be printed in.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use faults::eventually;
use faults::stack::{self, API_TOKEN};
use secrecy::ExposeSecret;
use test_support::Role;
use test_support::Stack;
use test_support::webhook::SECRET;

/// The password in the app's `DATABASE_URL`.
const DATABASE_PASSWORD: &str = "dbpw7Q2xVt9LmK4s";
/// The token in each broadcaster's `WEBHOOK_URL`.
const WEBHOOK_TOKEN: &str = "hooktok3Rf8Zp1Wq6Yd";

/// Each secret of the stack, named, in every form a log line could carry it:
/// as given, and for the signing secret its key alone, re-encoded in the
/// other base64 alphabets and as hex. The NATS passwords are the stack's
/// own, fresh for each server (every user's, the services' and `admin`'s).
fn secret_forms(stack: &Stack) -> Vec<(String, String)> {
    let mut forms = vec![
        ("API_TOKEN".to_owned(), API_TOKEN.to_owned()),
        ("WEBHOOK_SECRET".to_owned(), SECRET.to_owned()),
        (
            "DATABASE_URL password".to_owned(),
            DATABASE_PASSWORD.to_owned(),
        ),
        ("WEBHOOK_URL token".to_owned(), WEBHOOK_TOKEN.to_owned()),
    ];
    for role in Role::ALL {
        let credentials = stack
            .nats
            .credentials(role)
            .expect("the fault stack's nats-server runs secured");
        forms.push((
            format!("NATS password of `{}`", role.user()),
            credentials.password().expose_secret().to_owned(),
        ));
    }
    let key = SECRET.strip_prefix("whsec_").unwrap_or(SECRET);
    forms.push(("WEBHOOK_SECRET key (base64)".to_owned(), key.to_owned()));
    let bytes = STANDARD
        .decode(key)
        .expect("the receiver's secret is base64");
    for (name, encoded) in [
        ("base64 without padding", STANDARD_NO_PAD.encode(&bytes)),
        ("URL-safe base64", URL_SAFE.encode(&bytes)),
        (
            "URL-safe base64 without padding",
            URL_SAFE_NO_PAD.encode(&bytes),
        ),
        ("hex", bytes.iter().map(|b| format!("{b:02x}")).collect()),
    ] {
        forms.push((format!("WEBHOOK_SECRET key ({name})"), encoded));
    }
    forms
}

/// Every `(secret name, log name)` where the log contains the secret.
fn leaks(secrets: &[(String, String)], logs: &[(String, String)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (secret, value) in secrets {
        for (log, text) in logs {
            if text.contains(value.as_str()) {
                found.push((secret.clone(), log.clone()));
            }
        }
    }
    found
}

#[tokio::test]
async fn no_process_logs_a_secret_during_a_full_run() -> anyhow::Result<()> {
    // At debug level every process writes the most it ever writes.
    let stack = stack::start_logging_debug_with_secrets(DATABASE_PASSWORD, WEBHOOK_TOKEN).await?;
    let base = stack.app.url();
    let client = faults::http(Duration::from_secs(20));
    let api = format!("{base}/api/todos");

    // The UI form, as a browser on the page sends it.
    for text in ["form todo one", "form todo two"] {
        let answer = client
            .post(format!("{base}/todos"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("text", text)])
            .send()
            .await?;
        assert!(
            answer.status().is_success(),
            "form post: {}",
            answer.status()
        );
    }

    // The API with the token: create, update, delete.
    let mut ids = Vec::new();
    for i in 0..3 {
        let created: serde_json::Value = client
            .post(&api)
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "text": format!("api todo {i}") }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    client
        .put(format!("{api}/{}", ids[0]))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({ "done": true }))
        .send()
        .await?
        .error_for_status()?;
    client
        .delete(format!("{api}/{}", ids[1]))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .error_for_status()?;

    // Near misses: a refused token must not be logged either, since it
    // contains (nearly all of) the real one.
    for token in [format!("{API_TOKEN}x"), format!("x{API_TOKEN}")] {
        let answer = client
            .post(&api)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "text": "refused" }))
            .send()
            .await?;
        assert_eq!(answer.status(), 401);
    }

    // 5 creates, 1 update, 1 delete: all delivered, so every broadcaster
    // code path that handles the signing secret has run.
    eventually(
        Duration::from_secs(60),
        "all 7 events delivered",
        || async {
            let delivered = stack
                .receiver()
                .seen()
                .iter()
                .filter(|s| s.accepted() && s.verified)
                .count();
            (delivered >= 7).then_some(())
        },
    )
    .await?;

    let mut logs = Vec::new();
    if let Some(app) = &stack.app.service {
        logs.push(("todo-app".to_owned(), app.output()));
    }
    for (i, replica) in stack.broadcasters.iter().enumerate() {
        if let Some(replica) = replica {
            logs.push((format!("broadcaster {i}"), replica.output()));
        }
    }
    for (name, path) in [
        ("nats-server", stack.nats.log_path()),
        ("postgres", stack.postgres().log_path()),
    ] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            logs.push((name.to_owned(), text));
        }
    }
    // The logs are real: the app logged the requests above (one line per
    // response, at debug level).
    assert!(
        logs.iter()
            .any(|(name, text)| name == "todo-app" && text.contains("/api/todos")),
        "the app's log was captured"
    );

    let found = leaks(&secret_forms(&stack), &logs);
    assert!(found.is_empty(), "secrets in logs (secret, log): {found:?}");
    Ok(())
}

#[test]
fn a_secret_in_a_log_is_found_in_any_of_its_forms() {
    let secrets = vec![("KEY".to_owned(), "s3cr3t-value".to_owned())];
    let logs = vec![
        ("clean".to_owned(), "nothing here".to_owned()),
        ("leaky".to_owned(), r#"{"token":"s3cr3t-value"}"#.to_owned()),
    ];
    assert_eq!(
        leaks(&secrets, &logs),
        vec![("KEY".to_owned(), "leaky".to_owned())]
    );
}
