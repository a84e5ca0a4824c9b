//! The OpenAPI 3.1 document of the REST API, derived from the code: each handler's
//! `#[utoipa::path]` and each type's `ToSchema`. The router is built from the same
//! annotations ([`super::routes`], `utoipa_axum::routes!`), so a route cannot be served
//! without being documented, nor documented without being served; the integration test
//! `openapi` checks real answers of every route against the document.
//!
//! The answers every route shares are added here once, by what the route is: 401 unless
//! it is public (the auth guard's own list), 403 for a cross-site mutation, 404 where the
//! path names something, 400/413/422 where it takes a body, 500/503 everywhere.
//!
//! Served at `/api/openapi.json`, and as a page at `/api/docs` rendered here from the
//! same document (no script: the page's policy allows none, and the Swagger UI bundle
//! would have to be downloaded at build time).

use super::ErrorBody;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Extension;
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "EchoPilot",
        description = "The automation control plane's REST API: the scheduler, jobs and their runs, maintenance windows, alerts and inbound checks.\n\nEvery route but the probes, the session and the pings needs the dashboard key, sent as `X-Dash-Key` (or as a bearer token), or a dashboard session's cookie. Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; `field` names what to fix in a 422."
    ),
    components(schemas(ErrorBody)),
    security(("dash_key" = []), ("bearer" = []), ("session" = [])),
    tags(
        (name = "scheduler", description = "The scheduler's state and controls, and its leaders on several nodes."),
        (name = "jobs", description = "Jobs, running them now, pausing them, and jobs as code."),
        (name = "runs", description = "Run history, one run, its live log, cancel and rerun."),
        (name = "maintenance", description = "Windows when jobs do not run."),
        (name = "alerts", description = "Channels, rules and incidents."),
        (name = "checks", description = "Inbound checks and their pings."),
        (name = "session", description = "Logging in and out of the dashboard."),
        (name = "operations", description = "Probes, metrics, events, this document."),
    ),
    modifiers(&Schemes),
)]
pub struct ApiDoc;

/// The credentials the API takes.
struct Schemes;

impl utoipa::Modify for Schemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "dash_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::KEY_HEADER,
                "The dashboard key (`<data dir>/dashboard.key`, or DASHBOARD_KEY).",
            ))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The dashboard key as a bearer token (what Prometheus sends).",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "echopilot_session",
                "A dashboard session (`POST /api/session`); `__Host-echopilot_session` behind TLS.",
            ))),
        );
    }
}

/// The shared answers, by status: (name in `components/responses`, description).
const SHARED: [(&str, &str, &str); 8] = [
    ("400", "BadRequest", "Malformed JSON (with its line and column), or a malformed query or path parameter."),
    ("401", "Unauthorized", "No credentials, or a wrong key."),
    ("403", "Forbidden", "A cross-site request riding on the session cookie, or a host name this server does not serve."),
    ("404", "NotFound", "Nothing has that id."),
    ("413", "PayloadTooLarge", "The body is larger than 1 MiB."),
    ("422", "Invalid", "A field to fix: `error.field` names it."),
    ("500", "Internal", "Unexpected; the server log has the cause."),
    ("503", "Unavailable", "The store is busy or out of reach; `Retry-After` says when to try again."),
];

/// The finished document: every route's operations (from the router), the shared
/// answers added by what each route is.
pub fn document(mut doc: utoipa::openapi::OpenApi) -> Value {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    let responses: Map<String, Value> = SHARED
        .iter()
        .map(|(_, name, description)| {
            (
                name.to_string(),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                }),
            )
        })
        .collect();
    doc["components"]["responses"] = Value::Object(responses);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    // One handler under several methods (the pings' GET and POST) has one name: each
    // operation's id must be its own.
    let mut ids = std::collections::HashMap::<String, usize>::new();
    for op in paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|i| i.values())
    {
        if let Some(id) = op["operationId"].as_str() {
            *ids.entry(id.to_string()).or_default() += 1;
        }
    }
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let shared_id = op["operationId"]
                .as_str()
                .filter(|id| ids[*id] > 1)
                .map(|id| format!("{id}_{method}"));
            if let Some(id) = shared_id {
                op["operationId"] = json!(id);
            }
            let mut shared = vec!["500", "503"];
            let public = crate::auth::public(path);
            if !public {
                shared.push("401");
                if method != "get" {
                    shared.push("403");
                }
            }
            if path.contains('{') {
                shared.push("404");
            }
            if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
                // A malformed query or path parameter.
                shared.push("400");
            }
            if op.get("requestBody").is_some() {
                shared.push("413");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                shared.extend(["400", "422"]);
            }
            if public {
                // Needs no credentials: overrides the document's default.
                op["security"] = json!([]);
            }
            let answers = &mut op["responses"];
            for status in shared {
                if answers.get(status).is_none() {
                    let name = SHARED
                        .iter()
                        .find(|(s, _, _)| *s == status)
                        .map_or("Internal", |(_, n, _)| n);
                    answers[status] = json!({"$ref": format!("#/components/responses/{name}")});
                }
            }
        }
    }
    doc
}

/// The document, served, and its page: made once when the router is.
pub struct Served {
    json: String,
    page: String,
}

impl Served {
    pub fn new(doc: &Value) -> Arc<Served> {
        Arc::new(Served {
            json: serde_json::to_string_pretty(doc).unwrap_or_default(),
            page: page(doc),
        })
    }
}

/// This document.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json(Extension(doc): Extension<Arc<Served>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.json.clone(),
    )
}

/// This document as a page to read.
#[utoipa::path(
    get, path = "/api/docs", tag = "operations",
    responses((status = 200, description = "An HTML page.", content_type = "text/html", body = String)),
)]
pub async fn docs(Extension(doc): Extension<Arc<Served>>) -> Html<String> {
    Html(doc.page.clone())
}

/// Text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Backticks as code, the rest escaped.
fn prose(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.replace("\n\n", "</p><p>").replace('\n', " ")
            }
        })
        .collect()
}

/// A schema as a short type: `Job`, `[Run]`, `string | null`, `"skip" | "queue"`.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = schema[key].as_array() {
            return list.iter().map(type_of).collect::<Vec<_>>().join(" | ");
        }
    }
    if let Some(list) = schema["allOf"].as_array() {
        return list.iter().map(type_of).collect::<Vec<_>>().join(" &amp; ");
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let one = |t: &str| match t {
        "array" => format!("[{}]", type_of(&schema["items"])),
        "integer" | "number" | "string" => match schema["format"].as_str() {
            Some(f) => format!("{t} ({})", esc(f)),
            None => t.to_string(),
        },
        other => esc(other),
    };
    match &schema["type"] {
        Value::String(t) => one(t),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    }
}

/// An object schema's fields as a table (or its type, when it has none).
fn fields(out: &mut String, schema: &Value) {
    let Some(props) = schema["properties"].as_object() else {
        if let Some(parts) = schema["allOf"].as_array() {
            for part in parts {
                fields(out, part);
            }
        } else {
            let _ = write!(out, "<p class=\"type\">{}</p>", type_of(schema));
        }
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
    for (name, prop) in props {
        let _ = write!(
            out,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            if required.contains(&name.as_str()) {
                " <em>required</em>"
            } else {
                ""
            },
            type_of(prop),
            prose(prop["description"].as_str().unwrap_or_default()),
        );
    }
    out.push_str("</table>");
}

/// The page: routes by tag, each with its parameters, body and answers; then the types.
fn page(doc: &Value) -> String {
    let mut out = String::from(concat!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>EchoPilot API</title><style>",
        ":root{color-scheme:light dark;--line:#8884;--muted:#888}",
        "body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem 1.25rem 4rem}",
        "code{font:13px ui-monospace,monospace}table{border-collapse:collapse;width:100%;margin:.5rem 0}",
        "td,th{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}",
        "th{font-weight:600}.op{border:1px solid var(--line);border-radius:6px;padding:.25rem 1rem;margin:1rem 0}",
        ".m{display:inline-block;min-width:4.5rem;font:600 13px ui-monospace,monospace;text-transform:uppercase}",
        ".get{color:#2a7}.post{color:#27c}.put,.patch{color:#c80}.delete{color:#d33}",
        "h3{margin:.5rem 0;font-size:1rem}.muted,.type{color:var(--muted)}nav a{margin-right:1rem}",
        "@media(max-width:600px){td,th{padding:.25rem}}",
        "</style></head><body>",
    ));
    let info = &doc["info"];
    let _ = write!(
        out,
        "<h1>{} API <span class=\"muted\">{}</span></h1><p>{}</p><p>The document: <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI {}).</p>",
        esc(info["title"].as_str().unwrap_or_default()),
        esc(info["version"].as_str().unwrap_or_default()),
        prose(info["description"].as_str().unwrap_or_default()),
        esc(doc["openapi"].as_str().unwrap_or_default()),
    );
    let tags: Vec<(&str, &str)> = doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default(),
                        t["description"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str("<nav>");
    for (tag, _) in &tags {
        let _ = write!(out, "<a href=\"#tag-{0}\">{0}</a>", esc(tag));
    }
    out.push_str("<a href=\"#errors\">errors</a><a href=\"#schemas\">types</a></nav>");
    out.push_str("<h2 id=\"errors\">Errors</h2><p>Every error is <code>{\"error\": {\"code\", \"message\", \"field\"?}}</code> (<a href=\"#schema-ErrorBody\">ErrorBody</a>). Besides those each route lists, these are answered by many:</p><table>");
    for (status, _, description) in SHARED {
        let _ = write!(
            out,
            "<tr id=\"error-{status}\"><td>{status}</td><td>{}</td></tr>",
            prose(description)
        );
    }
    out.push_str("</table>");
    let empty = Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (tag, about) in &tags {
        let _ = write!(
            out,
            "<h2 id=\"tag-{0}\">{0}</h2><p>{1}</p>",
            esc(tag),
            prose(about)
        );
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap_or(&empty) {
                let tagged = op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag));
                if tagged {
                    operation(&mut out, path, method, op, doc);
                }
            }
        }
    }
    out.push_str("<h2 id=\"schemas\">Types</h2>");
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap_or(&empty) {
        let _ = write!(
            out,
            "<div class=\"op\" id=\"schema-{0}\"><h3>{0}</h3><p>{1}</p>",
            esc(name),
            prose(schema["description"].as_str().unwrap_or_default())
        );
        fields(&mut out, schema);
        out.push_str("</div>");
    }
    out.push_str("</body></html>");
    out
}

fn operation(out: &mut String, path: &str, method: &str, op: &Value, doc: &Value) {
    let _ = write!(
        out,
        "<div class=\"op\"><h3><span class=\"m {0}\">{0}</span> <code>{1}</code></h3><p>{2}</p>",
        esc(method),
        esc(path),
        prose(
            &[op["summary"].as_str(), op["description"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n\n")
        ),
    );
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>",
        );
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or_default()),
                if p["required"] == true {
                    " <em>required</em>"
                } else {
                    ""
                },
                esc(p["in"].as_str().unwrap_or_default()),
                type_of(&p["schema"]),
                prose(p["description"].as_str().unwrap_or_default()),
            );
        }
        out.push_str("</table>");
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        for (kind, media) in content {
            let _ = write!(
                out,
                "<p>Body (<code>{}</code>): {}</p>",
                esc(kind),
                type_of(&media["schema"])
            );
        }
    }
    out.push_str("<table><tr><th>Status</th><th>Answer</th></tr>");
    let mut shared = Vec::new();
    for (status, answer) in op["responses"].as_object().unwrap_or(&Map::new()) {
        if let Some(r) = answer["$ref"].as_str() {
            // The errors every route shares are described once, under "Errors".
            shared.push(format!(
                "<a href=\"#error-{0}\" title=\"{1}\">{0}</a>",
                esc(status),
                esc(
                    doc["components"]["responses"][r.rsplit('/').next().unwrap_or(r)]
                        ["description"]
                        .as_str()
                        .unwrap_or_default()
                )
            ));
            continue;
        }
        let body = answer["content"]
            .as_object()
            .map(|c| {
                c.iter()
                    .map(|(kind, media)| {
                        format!("<code>{}</code> {}", esc(kind), type_of(&media["schema"]))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} {}</td></tr>",
            esc(status),
            prose(answer["description"].as_str().unwrap_or_default()),
            body
        );
    }
    let _ = write!(
        out,
        "<tr><td class=\"muted\">errors</td><td>{}</td></tr></table></div>",
        shared.join(" · ")
    );
}
