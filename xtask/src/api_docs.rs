//! `cargo xtask api-docs`: the API reference as static files.
//!
//! Writes the app's OpenAPI document (the same one `/api/openapi.json`
//! serves) and one self-contained HTML page rendering it into
//! `target/api-docs/`, which the release workflow publishes to GitHub Pages.
//!
//! The page is rendered here, in Rust, rather than by a JavaScript viewer:
//! the API has a handful of operations, and a static page needs no vendored
//! bundle to keep current, loads nothing from anywhere at view time, and
//! reads without JavaScript.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::workspace::Workspace;

/// The HTTP methods an OpenAPI path item may hold, in display order.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `cargo xtask api-docs`.
pub fn run(workspace: &Workspace) -> anyhow::Result<()> {
    let out = workspace.root().join("target/api-docs");
    let written = write(app::routes::openapi(), &out)?;
    for file in written {
        println!("wrote {}", file.display());
    }
    Ok(())
}

/// Writes `openapi.json` and `index.html` into `out`, returning their paths.
pub fn write(document: &str, out: &Path) -> anyhow::Result<[PathBuf; 2]> {
    let parsed: Value =
        serde_json::from_str(document).context("the OpenAPI document is not JSON")?;
    let page = render(&parsed)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = out.join("openapi.json");
    let html = out.join("index.html");
    std::fs::write(&json, document).with_context(|| format!("cannot write {}", json.display()))?;
    std::fs::write(&html, page).with_context(|| format!("cannot write {}", html.display()))?;
    Ok([json, html])
}

/// One HTML page with every operation and schema of `doc`.
pub fn render(doc: &Value) -> anyhow::Result<String> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .context("the OpenAPI document has no `paths` object")?;
    let title = text(doc, "/info/title").unwrap_or("API reference");
    let version = text(doc, "/info/version").unwrap_or("");
    let operations: Vec<(&str, &str, &Value)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |method| Some((path.as_str(), *method, item.get(*method)?)))
        })
        .collect();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " " (version) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { (title) " " small { (version) } }
                    @if let Some(description) = text(doc, "/info/description") {
                        p { (description) }
                    }
                    p {
                        "OpenAPI " (text(doc, "/openapi").unwrap_or("?"))
                        " document: " a href="openapi.json" { "openapi.json" }
                    }
                    @if let Some(schemes) = doc.pointer("/components/securitySchemes").and_then(Value::as_object) {
                        p {
                            "Authentication: "
                            @for (name, scheme) in schemes {
                                code { (name) } " (" (text(scheme, "/type").unwrap_or("")) " "
                                (text(scheme, "/scheme").unwrap_or("")) ") "
                            }
                        }
                    }
                }
                nav {
                    h2 { "Operations" }
                    ul {
                        @for (path, method, _) in &operations {
                            li { a href={ "#" (anchor(method, path)) } {
                                span class={ "method " (method) } { (method.to_uppercase()) } " " code { (path) }
                            } }
                        }
                    }
                }
                main {
                    @for (path, method, operation) in &operations {
                        (render_operation(path, method, operation))
                    }
                    @if let Some(schemas) = schemas {
                        h2 { "Schemas" }
                        @for (name, schema) in schemas {
                            section id={ "schema-" (name) } {
                                h3 { code { (name) } }
                                @if let Some(description) = text(schema, "/description") {
                                    p { (description) }
                                }
                                pre { (pretty(schema)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page.into_string())
}

fn render_operation(path: &str, method: &str, operation: &Value) -> Markup {
    let parameters: Vec<&Value> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let responses = operation.get("responses").and_then(Value::as_object);
    html! {
        section id=(anchor(method, path)) class="operation" {
            h2 { span class={ "method " (method) } { (method.to_uppercase()) } " " code { (path) } }
            @if let Some(summary) = text(operation, "/summary") { p class="summary" { (summary) } }
            @if let Some(description) = text(operation, "/description") { p { (description) } }
            @if !parameters.is_empty() {
                h3 { "Parameters" }
                table {
                    tr { th { "name" } th { "in" } th { "required" } th { "schema" } th { "description" } }
                    @for parameter in parameters {
                        tr {
                            td { code { (text(parameter, "/name").unwrap_or("")) } }
                            td { (text(parameter, "/in").unwrap_or("")) }
                            td { @if parameter.get("required") == Some(&Value::Bool(true)) { "yes" } @else { "no" } }
                            td { (schema_ref(parameter.get("schema"))) }
                            td { (text(parameter, "/description").unwrap_or("")) }
                        }
                    }
                }
            }
            @if let Some(body) = operation.get("requestBody") {
                h3 { "Request body" @if body.get("required") == Some(&Value::Bool(true)) { " (required)" } }
                (content(body))
            }
            @if let Some(responses) = responses {
                h3 { "Responses" }
                table {
                    tr { th { "status" } th { "description" } th { "body" } }
                    @for (status, response) in responses {
                        tr {
                            td { code { (status) } }
                            td { (text(response, "/description").unwrap_or("")) }
                            td { (content(response)) }
                        }
                    }
                }
            }
        }
    }
}

/// The media types of a request body or response, each with its schema.
fn content(holder: &Value) -> Markup {
    let media = holder.get("content").and_then(Value::as_object);
    html! {
        @if let Some(media) = media {
            @for (kind, entry) in media {
                div { code { (kind) } ": " (schema_ref(entry.get("schema"))) }
            }
        }
    }
}

/// A link to a named schema, or the inline schema itself.
fn schema_ref(schema: Option<&Value>) -> Markup {
    let Some(schema) = schema else {
        return html! {};
    };
    match text(schema, "/$ref").and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => html! { a href={ "#schema-" (name) } { code { (name) } } },
        None => html! { code { (serde_json::to_string(schema).unwrap_or_default()) } },
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `get` and `/api/todos/{id}` → `get-api-todos-id`: a fragment without
/// characters that need escaping.
fn anchor(method: &str, path: &str) -> String {
    let mut anchor = method.to_owned();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            let _ = write!(anchor, "-{part}");
        }
    }
    anchor
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 0 auto; padding: 1rem; color: #222; }
code, pre { font-family: ui-monospace, monospace; }
pre { background: #f5f5f5; padding: .75rem; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
.operation { border-top: 2px solid #ddd; margin-top: 2rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; }
.get { color: #0a6; } .post { color: #06c; } .put { color: #b60; } .delete { color: #c22; }
";

#[cfg(test)]
mod tests {
    use super::*;

    fn documented_paths(doc: &Value) -> Vec<String> {
        doc["paths"].as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn the_page_is_written_beside_the_document_and_shows_every_path_and_operation() {
        let out = tempfile::tempdir().unwrap();
        let document = app::routes::openapi();
        let doc: Value = serde_json::from_str(document).unwrap();

        let [json, page] = write(document, out.path()).unwrap();

        assert_eq!(std::fs::read_to_string(json).unwrap(), document);
        let page = std::fs::read_to_string(page).unwrap();
        let paths = documented_paths(&doc);
        assert!(!paths.is_empty());
        for path in &paths {
            assert!(
                page.contains(&format!("<code>{path}</code>")),
                "{path} missing"
            );
            for method in doc["paths"][path].as_object().unwrap().keys() {
                if METHODS.contains(&method.as_str()) {
                    let id = anchor(method, path);
                    assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
                }
            }
        }
        for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(
                page.contains(&format!("id=\"schema-{schema}\"")),
                "{schema} missing"
            );
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let doc: Value = serde_json::from_str(app::routes::openapi()).unwrap();
        let page = render(&doc).unwrap();
        for remote in ["http://", "https://", "<script", "src=", "@import"] {
            assert!(!page.contains(remote), "the page contains {remote}");
        }
    }

    #[test]
    fn text_from_the_document_is_escaped() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "<b>x</b>", "version": "1"},
            "paths": {"/a": {"get": {"summary": "<script>alert(1)</script>", "responses": {}}}}
        });
        let page = render(&doc).unwrap();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_document_without_paths_is_refused() {
        let error = render(&serde_json::json!({"openapi": "3.1.0"})).unwrap_err();
        assert!(error.to_string().contains("no `paths`"), "{error}");
    }
}
