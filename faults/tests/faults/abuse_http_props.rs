//! Property tests at the HTTP level, against the real `todo-app` binary over
//! a socket: arbitrary form bodies for `POST /todos` and `PUT /todos/{id}`,
//! arbitrary JSON for the API's create and update, arbitrary query strings
//! for `GET /api/todos`; 10,000 cases each (`PROPTEST_CASES` overrides).
//!
//! The properties: never a 5xx and never a hang (every request has a
//! deadline); every refusal is a 4xx whose body says why; a request is
//! accepted exactly when its input is valid by the documented rules (text 1
//! to 140 characters after trimming, `done` is `true` or `false`, `limit` 1
//! to 200, `cursor` a UUID); and accepted text is stored exactly, trimmed.
//! The rules are restated here rather than imported from the app, so the
//! test checks the app against its documentation, not against itself.
//!
//! Only PostgreSQL, nats-server and the app run, not the broadcasters: they
//! would deliver the tens of thousands of events the cases cause while the
//! properties run. Todos a case creates are deleted again, so the page the
//! browser routes render stays small.

use std::time::{Duration, Instant};

use faults::stack::API_TOKEN;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Stack, StackBuilder};
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::abuse_parsers::json_value;

/// One request may take this long before the case fails as a hang.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// The app on a private PostgreSQL and nats-server, and one keep-alive client.
struct App {
    runtime: Runtime,
    client: reqwest::Client,
    base: String,
    stack: Stack,
}

impl App {
    fn start() -> anyhow::Result<App> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let stack = runtime.block_on(
            StackBuilder::new()
                .api_token(API_TOKEN)
                // Every refused case would otherwise log a warning.
                .logs("json", Some("error"))
                // Thousands of writes a minute from one client, on purpose.
                .app_env("WRITE_RATE_LIMIT", "off")
                .start(),
        )?;
        let base = stack.app.url();
        let client = reqwest::Client::builder()
            .no_proxy()
            // A 303 is the answer under test, not something to follow.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_DEADLINE)
            .build()?;
        Ok(App {
            runtime,
            client,
            base,
            stack,
        })
    }

    /// Sends a request; an error (a hang past the deadline, a dropped
    /// connection) fails the case.
    fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, TestCaseError> {
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e:#}")))?;
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .text()
                .await
                .map_err(|e| TestCaseError::fail(format!("body cut off: {e:#}")))?;
            Ok(Answer {
                status,
                location,
                body,
            })
        })
    }

    /// Posts or puts a form body to a page route, as htmx when `htmx`; the
    /// answer must be sound whatever the body.
    fn form_send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        htmx: bool,
    ) -> Result<Answer, TestCaseError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if htmx {
            request = request.header("hx-request", "true");
        }
        let answer = self.send(request)?;
        answer.is_sound()?;
        Ok(answer)
    }

    /// Sends `body` as JSON to the API with the token; the answer must be
    /// sound whatever the body.
    fn api_send(&self, method: Method, path: &str, body: &[u8]) -> Result<Answer, TestCaseError> {
        let answer = self.send(
            self.client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(API_TOKEN)
                .header("content-type", "application/json")
                .body(body.to_vec()),
        )?;
        answer.is_sound()?;
        Ok(answer)
    }

    fn api_create(&self, text: &str) -> Result<Value, TestCaseError> {
        let answer = self.send(
            self.client
                .post(format!("{}/api/todos", self.base))
                .bearer_auth(API_TOKEN)
                .json(&json!({ "text": text })),
        )?;
        prop_assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer);
        answer.json()
    }

    fn api_get(&self, id: &str) -> Result<Value, TestCaseError> {
        let answer = self.send(self.client.get(format!("{}/api/todos/{id}", self.base)))?;
        prop_assert_eq!(answer.status, StatusCode::OK, "{:?}", answer);
        answer.json()
    }

    /// The newest todo (the one a form post just created).
    fn newest(&self) -> Result<Value, TestCaseError> {
        let answer = self.send(self.client.get(format!("{}/api/todos?limit=1", self.base)))?;
        prop_assert_eq!(answer.status, StatusCode::OK, "{:?}", answer);
        Ok(answer.json()?["todos"][0].clone())
    }

    fn api_delete(&self, id: &str) -> Result<(), TestCaseError> {
        let answer = self.send(
            self.client
                .delete(format!("{}/api/todos/{id}", self.base))
                .bearer_auth(API_TOKEN),
        )?;
        prop_assert_eq!(answer.status, StatusCode::NO_CONTENT, "{:?}", answer);
        Ok(())
    }

    /// Runs `property` on 10,000 inputs; a failure names the smallest input
    /// found and shows the app's last log lines. Prints cases and time.
    fn check<S: Strategy>(
        &self,
        name: &str,
        strategy: S,
        property: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) where
        S::Value: std::fmt::Debug,
    {
        let config = Config {
            cases: cases(),
            failure_persistence: None,
            // Each shrinking step is a real request; bound the search.
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let cases = config.cases;
        let started = Instant::now();
        let result = TestRunner::new(config).run(&strategy, property);
        let took = started.elapsed();
        println!(
            "{name}: {cases} cases in {:.1} s ({:.2} ms per case)",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / f64::from(cases)
        );
        if let Err(failure) = result {
            let output = self
                .stack
                .app
                .service
                .as_ref()
                .map(|app| app.output())
                .unwrap_or_default();
            let tail: Vec<&str> = output.lines().rev().take(30).collect();
            panic!(
                "{name}: {failure}\n--- todo-app (last lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Result<Value, TestCaseError> {
        serde_json::from_str(&self.body)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {self:?}")))
    }

    /// Never a 5xx; a refusal is a 4xx that says why (a JSON `error` for
    /// the API, an error page for the browser routes).
    fn is_sound(&self) -> Result<(), TestCaseError> {
        prop_assert!(!self.status.is_server_error(), "a 5xx: {:?}", self);
        if self.status.is_client_error() {
            prop_assert!(
                !self.body.trim().is_empty(),
                "a refusal without a reason: {:?}",
                self
            );
        }
        Ok(())
    }

    /// Whether a form was accepted (303, or for htmx 200, or 204 for a
    /// change that answers only its trigger); anything but that or a 4xx
    /// fails the case.
    fn accepted_or_refused(&self) -> Result<bool, TestCaseError> {
        let accepted = self.status == StatusCode::SEE_OTHER
            || self.status == StatusCode::OK
            || self.status == StatusCode::NO_CONTENT;
        prop_assert!(accepted || self.status.is_client_error(), "{:?}", self);
        Ok(accepted)
    }

    /// A 422 with the API's error: read, and refused with a reason.
    fn unprocessable(&self) -> Result<String, TestCaseError> {
        prop_assert_eq!(self.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", self);
        self.api_error()
    }

    /// Any 4xx with the API's error.
    fn refused(&self) -> Result<String, TestCaseError> {
        prop_assert!(self.status.is_client_error(), "{:?}", self);
        self.api_error()
    }

    fn api_error(&self) -> Result<String, TestCaseError> {
        let message = self.json()?["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        prop_assert!(!message.is_empty(), "a refusal without `error`: {:?}", self);
        Ok(message)
    }
}

/// The documented rule: 1 to 140 characters after trimming, no NUL
/// character (which PostgreSQL cannot store).
fn valid_text(text: &str) -> bool {
    (1..=140).contains(&text.trim().chars().count()) && !text.contains('\0')
}

/// What the app says about an invalid text, in its own words.
fn says_why_text_is_invalid(body: &str) -> bool {
    body.contains("a todo cannot be empty")
        || body.contains("at most 140 characters")
        || body.contains("cannot contain the NUL character")
}

/// Todo texts: printable Unicode of every length around the limit, any
/// character at all, whitespace around, markup and SQL metacharacters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,160}",
        ".{0,150}",
        "\\s{0,4}[a-zA-Z0-9<>&'\";%+=/\\\\ -]{0,30}\\s{0,4}",
        "[a-z]{130,150}",
        "\\s{0,6}",
        prop::collection::vec(any::<char>(), 0..40).prop_map(|c| c.into_iter().collect()),
    ]
}

/// `application/x-www-form-urlencoded`, every byte but alphanumerics escaped,
/// so decoding gives back exactly the pairs.
fn form_encode(pairs: &[(String, String)], plus_for_space: bool) -> String {
    let encode = |s: &str| {
        let mut out = String::new();
        for byte in s.bytes() {
            match byte {
                b' ' if plus_for_space => out.push('+'),
                b if b.is_ascii_alphanumeric() => out.push(char::from(b)),
                b => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A form body: well-formed pairs (one field under test, maybe other
/// fields) or any bytes at all.
#[derive(Debug, Clone)]
enum FormBody {
    Pairs {
        value: Option<String>,
        others: Vec<(String, String)>,
        plus_for_space: bool,
    },
    Raw(Vec<u8>),
}

impl FormBody {
    fn bytes(&self, field: &str) -> Vec<u8> {
        match self {
            FormBody::Pairs {
                value,
                others,
                plus_for_space,
            } => {
                let mut pairs: Vec<(String, String)> = others.clone();
                if let Some(value) = value {
                    pairs.insert(pairs.len() / 2, (field.to_owned(), value.clone()));
                }
                form_encode(&pairs, *plus_for_space).into_bytes()
            }
            FormBody::Raw(bytes) => bytes.clone(),
        }
    }

    /// The field's value as the app must read it, when the body is well formed.
    fn value(&self) -> Option<Option<&str>> {
        match self {
            FormBody::Pairs { value, .. } => Some(value.as_deref()),
            FormBody::Raw(_) => None,
        }
    }
}

fn form_body(field: &'static str, value: BoxedStrategy<String>) -> impl Strategy<Value = FormBody> {
    let other_key = "[a-z_]{1,8}".prop_filter("another field", move |k| k != field);
    prop_oneof![
        4 => (
            prop::option::weighted(0.95, value),
            prop::collection::btree_map(other_key, "\\PC{0,12}", 0..3),
            any::<bool>(),
        )
            .prop_map(|(value, others, plus_for_space)| FormBody::Pairs {
                value,
                others: others.into_iter().collect(),
                plus_for_space,
            }),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(FormBody::Raw),
    ]
}

#[test]
fn any_form_body_posted_to_todos_is_stored_trimmed_or_refused_with_a_reason() {
    let app = App::start().unwrap();
    let strategy = (form_body("text", any_text().boxed()), any::<bool>());
    app.check("POST /todos", strategy, |(body, htmx)| {
        let answer = app.form_send(Method::POST, "/todos", body.bytes("text"), htmx)?;
        let accepted = answer.accepted_or_refused()?;
        if let Some(value) = body.value() {
            // A missing field is an empty text.
            let text = value.unwrap_or_default();
            let expected = if !valid_text(text) {
                StatusCode::UNPROCESSABLE_ENTITY
            } else if htmx {
                StatusCode::OK
            } else {
                StatusCode::SEE_OTHER
            };
            prop_assert_eq!(answer.status, expected, "text {:?}: {:?}", text, answer);
            if !accepted {
                prop_assert!(says_why_text_is_invalid(&answer.body), "{:?}", answer);
            }
        }
        if accepted {
            let todo = app.newest()?;
            if let Some(Some(text)) = body.value() {
                prop_assert_eq!(todo["text"].as_str(), Some(text.trim()));
            }
            app.api_delete(todo["id"].as_str().unwrap_or_default())?;
        }
        Ok(())
    });
}

/// Which todo a request names.
#[derive(Debug, Clone)]
enum Target {
    Existing,
    Unknown(Uuid),
    /// Any path segment (escaped); may not even reach the route.
    Garbage(String),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => Just(Target::Existing),
        1 => any::<u128>().prop_map(|n| Target::Unknown(Uuid::from_u128(n))),
        1 => "\\PC{0,40}".prop_map(Target::Garbage),
    ]
}

fn path_segment(target: &Target, existing: &str) -> String {
    match target {
        Target::Existing => existing.to_owned(),
        Target::Unknown(id) => id.to_string(),
        Target::Garbage(raw) => form_encode(&[(String::new(), raw.clone())], false)[1..].to_owned(),
    }
}

#[test]
fn any_form_body_put_to_a_todo_changes_done_or_is_refused_with_a_reason() {
    let app = App::start().unwrap();
    let existing = app.api_create("the todo under test").unwrap();
    let existing = existing["id"].as_str().unwrap().to_owned();
    let done = prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        "\\PC{0,10}",
        "(true|false|TRUE|1|0| true|false )",
    ];
    let strategy = (form_body("done", done.boxed()), target(), any::<bool>());
    app.check("PUT /todos/{id}", strategy, |(body, target, htmx)| {
        let path = format!("/todos/{}", path_segment(&target, &existing));
        let answer = app.form_send(Method::PUT, &path, body.bytes("done"), htmx)?;
        answer.accepted_or_refused()?;
        let Some(value) = body.value() else {
            return Ok(());
        };
        let done = match value {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        match (&target, done) {
            // Garbage may not match the route at all: any 4xx, never accepted.
            (Target::Garbage(raw), _) if Uuid::try_parse(raw).is_err() => {
                prop_assert!(answer.status.is_client_error(), "{:?}", answer);
            }
            (_, None) => {
                prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer);
                prop_assert!(answer.body.contains("done must be"), "{:?}", answer);
            }
            (Target::Existing, Some(done)) => {
                // htmx gets only the trigger to re-fetch its lists.
                let expected = if htmx {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::SEE_OTHER
                };
                prop_assert_eq!(answer.status, expected, "{:?}", answer);
                prop_assert_eq!(app.api_get(&existing)?["done"].as_bool(), Some(done));
            }
            (_, Some(_)) => {
                prop_assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer);
            }
        }
        Ok(())
    });
}

/// A JSON body: a well-formed `{"text": ..}`, one with a field too many or a
/// text of the wrong type, any JSON value, or any bytes.
fn create_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => any_text().prop_map(|text| json!({ "text": text }).to_string().into_bytes()),
        1 => (any_text(), "[a-z_]{1,8}", json_value()).prop_map(|(text, key, value)| {
            json!({ "text": text, key: value }).to_string().into_bytes()
        }),
        1 => json_value().prop_map(|value| json!({ "text": value }).to_string().into_bytes()),
        1 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn any_json_body_posted_to_the_api_is_stored_trimmed_or_refused_with_a_reason() {
    let app = App::start().unwrap();
    app.check("POST /api/todos", create_body(), |body| {
        let answer = app.api_send(Method::POST, "/api/todos", &body)?;
        // The oracle: exactly `{"text": <string>}` may be accepted.
        let text = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| fields(value, &["text"]))
            .and_then(|object| {
                (object.len() == 1).then_some(())?;
                object.get("text")?.as_str().map(str::to_owned)
            });
        match text {
            Some(text) if valid_text(&text) => {
                prop_assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer);
                let todo = answer.json()?;
                let id = todo["id"].as_str().unwrap_or_default().to_owned();
                prop_assert_eq!(todo["text"].as_str(), Some(text.trim()));
                let location = format!("/api/todos/{id}");
                prop_assert_eq!(answer.location.as_deref(), Some(location.as_str()));
                let stored = app.api_get(&id)?;
                prop_assert_eq!(stored["text"].as_str(), Some(text.trim()));
                app.api_delete(&id)?;
            }
            Some(_) => {
                let why = answer.unprocessable()?;
                prop_assert!(says_why_text_is_invalid(&why), "{:?}", answer);
            }
            None => {
                answer.refused()?;
            }
        }
        Ok(())
    });
}

/// An update body: `done` and/or `text` (each maybe null or of the wrong
/// type), sometimes a field too many, or any JSON, or any bytes.
fn update_body() -> impl Strategy<Value = Vec<u8>> {
    let done = prop_oneof![
        3 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json_value(),
    ];
    let text = prop_oneof![
        4 => any_text().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => json_value(),
    ];
    prop_oneof![
        6 => (prop::option::of(done), prop::option::of(text), prop::option::weighted(0.1, ("[a-z_]{1,8}", json_value())))
            .prop_map(|(done, text, extra)| {
                let mut object = serde_json::Map::new();
                if let Some(done) = done {
                    object.insert("done".into(), done);
                }
                if let Some(text) = text {
                    object.insert("text".into(), text);
                }
                if let Some((key, value)) = extra {
                    object.insert(key, value);
                }
                Value::Object(object).to_string().into_bytes()
            }),
        1 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn any_json_body_put_to_the_api_updates_exactly_or_is_refused_with_a_reason() {
    let app = App::start().unwrap();
    let existing = app.api_create("the todo under test").unwrap();
    let id = existing["id"].as_str().unwrap().to_owned();
    let state = std::sync::Mutex::new((existing["text"].as_str().unwrap().to_owned(), false));
    app.check("PUT /api/todos/{id}", update_body(), |body| {
        let answer = app.api_send(Method::PUT, &format!("/api/todos/{id}"), &body)?;
        // The oracle: an object of only `done` (bool or null) and `text`
        // (string or null), at least one given, the text valid.
        let update = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| {
                let object = fields(value, &["done", "text"])?;
                if object.keys().any(|k| k != "done" && k != "text") {
                    return None;
                }
                let done = match object.get("done") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(done)) => Some(*done),
                    Some(_) => return None,
                };
                let text = match object.get("text") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(_) => return None,
                };
                Some((done, text))
            });
        let mut state = state.lock().unwrap();
        match update {
            Some((done, text))
                if (done.is_some() || text.is_some()) && text.as_deref().is_none_or(valid_text) =>
            {
                prop_assert_eq!(answer.status, StatusCode::OK, "{:?}", answer);
                if let Some(text) = text {
                    state.0 = text.trim().to_owned();
                }
                if let Some(done) = done {
                    state.1 = done;
                }
                let todo = answer.json()?;
                prop_assert_eq!(todo["text"].as_str(), Some(state.0.as_str()));
                prop_assert_eq!(todo["done"].as_bool(), Some(state.1));
                let stored = app.api_get(&id)?;
                prop_assert_eq!(stored["text"].as_str(), Some(state.0.as_str()));
                prop_assert_eq!(stored["done"].as_bool(), Some(state.1));
            }
            Some(_) => {
                answer.unprocessable()?;
            }
            None => {
                answer.refused()?;
            }
        }
        Ok(())
    });
}

/// A body's fields: a JSON object, or (as serde reads a struct) an array
/// holding every field in declaration order.
fn fields(value: Value, names: &[&str]) -> Option<serde_json::Map<String, Value>> {
    match value {
        Value::Object(object) => Some(object),
        Value::Array(items) if items.len() == names.len() => Some(
            names
                .iter()
                .map(|name| name.to_string())
                .zip(items)
                .collect(),
        ),
        _ => None,
    }
}

/// Query strings: well-formed `limit` and `cursor` values of every kind
/// (each maybe absent), or any printable query at all.
#[derive(Debug, Clone)]
enum Query {
    Params {
        limit: Option<String>,
        cursor: Option<String>,
    },
    Raw(String),
}

fn query() -> impl Strategy<Value = Query> {
    let limit = prop_oneof![
        "[0-9]{1,3}",
        "\\s?[+-]?[0-9]{1,4}\\s?",
        "[0-9]{5,25}",
        "\\PC{0,10}",
    ];
    let cursor = prop_oneof![
        (any::<u128>(), "\\s{0,2}")
            .prop_map(|(n, pad)| format!("{pad}{}{pad}", Uuid::from_u128(n))),
        any::<u128>().prop_map(|n| Uuid::from_u128(n).simple().to_string()),
        "\\PC{0,40}",
    ];
    prop_oneof![
        4 => (prop::option::of(limit), prop::option::of(cursor))
            .prop_map(|(limit, cursor)| Query::Params { limit, cursor }),
        1 => "[ -~]{0,60}".prop_map(Query::Raw),
    ]
}

#[test]
fn any_query_string_for_the_list_gives_a_page_or_a_reason() {
    let app = App::start().unwrap();
    for i in 0..5 {
        app.api_create(&format!("todo {i}")).unwrap();
    }
    app.check("GET /api/todos?..", query(), |query| {
        let url = format!("{}/api/todos", app.base);
        let request = match &query {
            Query::Params { limit, cursor } => {
                let mut pairs = Vec::new();
                if let Some(limit) = limit {
                    pairs.push(("limit", limit.as_str()));
                }
                if let Some(cursor) = cursor {
                    pairs.push(("cursor", cursor.as_str()));
                }
                app.client.get(&url).query(&pairs)
            }
            Query::Raw(raw) => app.client.get(format!("{url}?{raw}")),
        };
        let answer = app.send(request)?;
        answer.is_sound()?;
        prop_assert!(
            answer.status == StatusCode::OK || answer.status == StatusCode::BAD_REQUEST,
            "{:?}",
            answer
        );
        if answer.status == StatusCode::BAD_REQUEST {
            answer.api_error()?;
        }
        if let Query::Params { limit, cursor } = &query {
            // The documented rules: limit 1 to 200 (default 50), cursor a UUID.
            let limit_ok = limit.as_deref().is_none_or(|l| {
                l.trim()
                    .parse::<u16>()
                    .is_ok_and(|n| (1..=200).contains(&n))
            });
            let cursor_ok = cursor
                .as_deref()
                .is_none_or(|c| Uuid::try_parse(c.trim()).is_ok());
            let expected = if limit_ok && cursor_ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            prop_assert_eq!(answer.status, expected, "{:?}: {:?}", query, answer);
            if answer.status == StatusCode::OK {
                let page = answer.json()?;
                let max = limit
                    .as_deref()
                    .map_or(50, |l| l.trim().parse::<usize>().unwrap_or(0));
                prop_assert!(
                    page["todos"].as_array().is_some_and(|t| t.len() <= max),
                    "{:?}",
                    page
                );
            }
        }
        Ok(())
    });
}
