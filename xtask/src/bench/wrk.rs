//! The HTTP scenarios, driven by `wrk` (a separate process, so the load
//! generator's CPU is visible as such) with a Lua script per scenario.
//!
//! Every script ends with a `done` hook that prints one `BENCH key=value ...`
//! line: exact counters and percentiles from wrk itself, instead of scraping
//! its human-readable report whose units change with magnitude.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use uuid::Uuid;

/// What one scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /`: the full page, from the page cache while nothing changes.
    Page,
    /// `GET /` from a reader who just wrote: read from the database each time.
    PageUncached,
    /// htmx `POST /todos`: create, including the outbox write.
    Create,
    /// htmx `PUT /todos/{id}`: toggle one of the toggled seeds.
    Toggle,
    /// htmx `DELETE /todos/{id}`: each request deletes another todo.
    Delete,
    /// `GET /api/todos?limit=50`: the first page, as any client reads it.
    ApiList,
    /// `GET /api/todos?limit=50` with `If-None-Match` naming the page's
    /// current tag: a client polling an unchanged page, answered 304.
    ApiNotModified,
    /// `GET /api/todos?limit=50&cursor=…` half way down the list, read from
    /// the database each time.
    ApiDeep,
}

/// What a script needs besides the scenario.
pub struct Inputs<'a> {
    /// Ids to toggle, or to delete (each once).
    pub ids: &'a [Uuid],
    /// The cursor of the deep API page.
    pub cursor: Option<&'a str>,
    /// The first API page's current `ETag`, quotes included, for the
    /// conditional GETs.
    pub etag: Option<&'a str>,
    /// Goes into created todos' text, so the two servers' rows can be told apart.
    pub tag: &'a str,
    /// The cookie a change answers with (`docket_wrote=...`), for the reads
    /// that must go past the page cache; the reference ignores it.
    pub write_marker: Option<&'a str>,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Page,
        Scenario::PageUncached,
        Scenario::Create,
        Scenario::Toggle,
        Scenario::Delete,
        Scenario::ApiList,
        Scenario::ApiNotModified,
        Scenario::ApiDeep,
    ];

    /// The scenarios that write, measured again with a durable database.
    pub const WRITES: [Scenario; 3] = [Scenario::Create, Scenario::Toggle, Scenario::Delete];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Page => "GET /",
            Scenario::PageUncached => "GET / uncached",
            Scenario::Create => "POST /todos",
            Scenario::Toggle => "PUT /todos/{id}",
            Scenario::Delete => "DELETE /todos/{id}",
            Scenario::ApiList => "GET /api/todos",
            Scenario::ApiNotModified => "GET /api/todos 304",
            Scenario::ApiDeep => "GET /api deep",
        }
    }

    /// Writes are held to the write SLO, reads to the read SLO.
    pub fn is_write(self) -> bool {
        Self::WRITES.contains(&self)
    }

    /// What the reference server does when it is measured for this
    /// scenario: its page for reads, its bare insert for writes.
    pub fn reference(self) -> Scenario {
        if self.is_write() {
            Scenario::Create
        } else {
            Scenario::Page
        }
    }

    /// The scenario whose reference run this one is compared with. Each
    /// write has its own: the reference's insert, run right after Docket's
    /// write at the same point, so a machine that slows down or speeds up
    /// between scenarios (a VM's neighbours) moves both sides of the ratio
    /// alike. Reads share the one beside `GET /`.
    pub fn compared_with(self) -> Scenario {
        if self.is_write() {
            self
        } else {
            Scenario::Page
        }
    }

    /// Whether the reference is measured beside this scenario.
    pub fn runs_on_reference(self) -> bool {
        self.compared_with() == self
    }
}

/// wrk's threads for `connections` (two, as the issue's reference numbers
/// were taken).
fn threads(connections: u32) -> u32 {
    connections.min(2)
}

/// The API page the reads ask for, as any client would first.
pub const FIRST_API_PAGE: &str = "/api/todos?limit=50";

/// A script that sends the same `GET path` each time, with `header` if
/// given. Its value goes in Lua's single quotes: tags (`"` base64url `"`)
/// and cookies (`name=value`) hold no `'` or `\` to escape.
fn get(path: &str, header: Option<(&str, &str)>) -> String {
    let header = header
        .map(|(name, value)| format!("wrk.headers[\"{name}\"] = '{value}'\n"))
        .unwrap_or_default();
    format!("{header}wrk.method = \"GET\"\nwrk.path = \"{path}\"\n")
}

/// The Lua script for `scenario` run with `connections`.
pub fn script(scenario: Scenario, inputs: &Inputs, connections: u32) -> String {
    // htmx sends HX-Request; browsers send Sec-Fetch-Site, which Docket's
    // cross-site guard checks on every form post.
    const HTMX_FORM: &str = r#"wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["HX-Request"] = "true"
wrk.headers["Sec-Fetch-Site"] = "same-origin"
"#;
    let ids = || {
        let quoted: Vec<String> = inputs.ids.iter().map(|id| format!("\"{id}\"")).collect();
        quoted.join(", ")
    };
    let tag = inputs.tag;
    let body = match scenario {
        Scenario::Page => get("/", None),
        Scenario::PageUncached => get("/", inputs.write_marker.map(|cookie| ("Cookie", cookie))),
        Scenario::ApiList => get(FIRST_API_PAGE, None),
        Scenario::ApiNotModified => get(
            FIRST_API_PAGE,
            inputs.etag.map(|etag| ("If-None-Match", etag)),
        ),
        Scenario::ApiDeep => get(
            &format!(
                "{FIRST_API_PAGE}{}",
                inputs
                    .cursor
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default()
            ),
            None,
        ),
        Scenario::Create => format!(
            r#"{HTMX_FORM}local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/todos", nil, "text=bench-{tag}-" .. n)
end
"#
        ),
        Scenario::Toggle => format!(
            r#"{HTMX_FORM}local ids = {{{}}}
local n = 0
request = function()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  -- Each pass over the ids flips them all, so every PUT is a change.
  local done = (math.floor(n / #ids) % 2 == 0) and "true" or "false"
  return wrk.format("PUT", "/todos/" .. id, nil, "done=" .. done)
end
"#,
            ids()
        ),
        Scenario::Delete => format!(
            r#"{HTMX_FORM}local ids = {{{}}}
-- Each thread deletes every {threads}th id from its own first one, so no
-- todo is deleted twice; past the list's end a request is a 404, counted
-- as an error (the bench added too few).
local threads = 0
function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end
local n = 0
request = function()
  local id = ids[first + n * {threads} + 1] or "00000000-0000-0000-0000-000000000000"
  n = n + 1
  return wrk.format("DELETE", "/todos/" .. id)
end
"#,
            ids(),
            threads = threads(connections)
        ),
    };
    format!("{body}{DONE_HOOK}")
}

const DONE_HOOK: &str = r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)), math.floor(latency.max)))
end
"#;

/// One wrk run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_s: f64,
    /// Mean bytes read per response, headers included.
    pub bytes_per_response: f64,
    /// Socket errors, timeouts and non-2xx/3xx answers.
    pub errors: u64,
    /// Of those, answers that were not 2xx/3xx.
    pub bad_status: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Reads the `BENCH ...` line the script's `done` hook prints.
pub fn parse(stdout: &str) -> anyhow::Result<WrkResult> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH "))
        .context("wrk printed no BENCH line (did the script's done hook run?)")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("no `{name}` in wrk's BENCH line: {line}"))?
            .parse()
            .with_context(|| format!("`{name}` is not a number in: {line}"))
    };
    let requests = field("requests")?;
    let duration_us = field("duration_us")?;
    if duration_us == 0 {
        bail!("wrk ran for 0 µs: {line}");
    }
    let bad_status = field("status")?;
    let errors =
        field("connect")? + field("read")? + field("write")? + field("timeout")? + bad_status;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(WrkResult {
        requests,
        requests_per_s: requests as f64 / (duration_us as f64 / 1e6),
        bytes_per_response: field("bytes")? as f64 / requests.max(1) as f64,
        errors,
        bad_status,
        p50_ms: ms(field("p50_us")?),
        p99_ms: ms(field("p99_us")?),
        max_ms: ms(field("max_us")?),
    })
}

/// Runs wrk with [`threads`].
pub async fn run(
    script: &Path,
    base_url: &str,
    connections: u32,
    duration: Duration,
) -> anyhow::Result<WrkResult> {
    let output = tokio::process::Command::new("wrk")
        .arg("--threads")
        .arg(threads(connections).to_string())
        .arg("--connections")
        .arg(connections.to_string())
        .arg("--duration")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s")
        .arg("--script")
        .arg(script)
        .arg(base_url)
        .output()
        .await
        .context("could not run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:4000\n  2 threads and 64 connections\n  \
        Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     5.01ms    2.00ms  40.12ms   80.00%\n\
        61234 requests in 10.00s, 80.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   6123.40\n\
        BENCH requests=61234 bytes=122468000 duration_us=10000000 connect=0 read=1 write=0 status=3 timeout=2 p50_us=4500 p99_us=12250 max_us=40120\n";

    #[test]
    fn the_reference_runs_beside_every_write_and_the_page_only() {
        let beside: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|scenario| scenario.runs_on_reference())
            .collect();
        assert_eq!(
            beside,
            [
                Scenario::Page,
                Scenario::Create,
                Scenario::Toggle,
                Scenario::Delete
            ]
        );
        assert_eq!(Scenario::Delete.reference(), Scenario::Create);
        assert_eq!(Scenario::ApiDeep.compared_with(), Scenario::Page);
    }

    #[test]
    fn the_done_hooks_line_is_read_exactly() {
        let result = parse(REPORT).unwrap();
        assert_eq!(
            result,
            WrkResult {
                requests: 61234,
                requests_per_s: 6123.4,
                bytes_per_response: 2000.0,
                errors: 6,
                bad_status: 3,
                p50_ms: 4.5,
                p99_ms: 12.25,
                max_ms: 40.12,
            }
        );
    }

    #[test]
    fn a_report_without_the_line_or_with_a_bad_field_is_an_error() {
        assert!(parse("Requests/sec: 10\n").is_err());
        assert!(parse("BENCH requests=x duration_us=1").is_err());
        assert!(
            parse("BENCH requests=1 bytes=1 duration_us=0 connect=0 read=0 write=0 status=0 timeout=0 p50_us=1 p99_us=1 max_us=1")
                .is_err()
        );
    }

    fn inputs(ids: &[Uuid]) -> Inputs<'_> {
        Inputs {
            ids,
            cursor: Some("a-cursor"),
            etag: Some("\"a-tag\""),
            tag: "docket",
            write_marker: Some("docket_wrote=123.c2lnbmVk"),
        }
    }

    #[test]
    fn the_toggle_script_lists_every_id_and_sends_htmx_headers() {
        let ids = [Uuid::nil(), Uuid::max()];
        let script = script(Scenario::Toggle, &inputs(&ids), 64);
        assert!(script.contains(&format!("\"{}\", \"{}\"", ids[0], ids[1])));
        assert!(script.contains(r#"wrk.headers["HX-Request"] = "true""#));
        assert!(script.contains(r#"wrk.headers["Sec-Fetch-Site"] = "same-origin""#));
        assert!(script.contains("done = function"));
    }

    #[test]
    fn each_wrk_thread_deletes_its_own_share_of_the_ids() {
        let ids = [Uuid::nil(), Uuid::max()];
        let script = script(Scenario::Delete, &inputs(&ids), 64);
        assert!(script.contains("ids[first + n * 2 + 1]"), "{script}");
        assert!(script.contains(r#"wrk.format("DELETE""#));
    }

    #[test]
    fn the_uncached_page_reads_carry_the_write_marker_they_are_given() {
        let uncached = script(Scenario::PageUncached, &inputs(&[]), 64);
        assert!(
            uncached.contains(r#"wrk.headers["Cookie"] = 'docket_wrote=123.c2lnbmVk'"#),
            "{uncached}"
        );
        let deep = script(Scenario::ApiDeep, &inputs(&[]), 64);
        assert!(
            deep.contains("/api/todos?limit=50&cursor=a-cursor"),
            "{deep}"
        );
        let cached = script(Scenario::Page, &inputs(&[]), 64);
        assert!(!cached.contains("Cookie"));
        let not_modified = script(Scenario::ApiNotModified, &inputs(&[]), 64);
        assert!(
            not_modified.contains(r#"wrk.headers["If-None-Match"] = '"a-tag"'"#),
            "{not_modified}"
        );
        assert!(!script(Scenario::ApiList, &inputs(&[]), 64).contains("If-None-Match"));
    }
}
