//! The OpenAPI document against the server's real answers. Every operation the document
//! lists is called with a real request, and answered with success at least once; every
//! answer must be in the document: its status listed for that operation, its content type
//! one the document names, its JSON body valid against the schema — strictly: a field the
//! document does not name fails, and so does a date that is not RFC 3339. A route added
//! without a request here fails the test, so the document cannot drift from what is served.

use crate::support::{client, spawn_app_with, TestApp, KEY};
use engine::testing::peers::Receiver;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The document, made strict for validation: every object schema refuses properties it
/// does not name (`unevaluatedProperties`, so schemas composed with `allOf` still see
/// each other's); the parts of an `allOf` are left open, their whole is closed.
struct Spec {
    doc: Value,
    /// The document's components, strict, as the root every answer's schema resolves in.
    components: Value,
}

impl Spec {
    fn new(doc: Value) -> Spec {
        let mut components = doc["components"].clone();
        let mut parts = BTreeSet::new();
        for schema in components["schemas"].as_object().unwrap().values() {
            for part in schema["allOf"].as_array().into_iter().flatten() {
                if let Some(r) = part["$ref"].as_str() {
                    parts.insert(r.rsplit('/').next().unwrap().to_string());
                }
            }
        }
        for (name, schema) in components["schemas"].as_object_mut().unwrap() {
            let object = schema.get("properties").is_some() || schema.get("allOf").is_some();
            if object && !parts.contains(name) && schema.get("additionalProperties").is_none() {
                schema["unevaluatedProperties"] = json!(false);
            }
        }
        Spec { doc, components }
    }

    /// The path template the document has for `path` (`/api/jobs/export` is its own,
    /// `/api/jobs/ok` is `/api/jobs/{id}`): the one with the most fixed segments.
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap();
        let want: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|t| {
                let have: Vec<&str> = t.split('/').collect();
                have.len() == want.len()
                    && have
                        .iter()
                        .zip(&want)
                        .all(|(h, w)| h.starts_with('{') || h == w)
            })
            .max_by_key(|t| t.split('/').filter(|s| !s.starts_with('{')).count())
            .cloned()
    }

    /// What is wrong with this answer, by the document.
    fn check(
        &self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Result<(), String> {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        if op.is_null() {
            return Err("the document has no such operation".into());
        }
        let mut answer = &op["responses"][status.to_string()];
        if answer.is_null() {
            return Err(format!(
                "status {status} is not documented (it lists {:?})",
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .collect::<Vec<_>>()
            ));
        }
        if let Some(r) = answer["$ref"].as_str() {
            answer = &self.doc["components"]["responses"][r.rsplit('/').next().unwrap()];
        }
        let Some(content) = answer["content"].as_object() else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("documented without a body, answered {body:?}"))
            };
        };
        let kind = content_type.split(';').next().unwrap_or_default().trim();
        let Some(media) = content.get(kind) else {
            return Err(format!(
                "content type {kind:?} is not documented (it lists {:?})",
                content.keys().collect::<Vec<_>>()
            ));
        };
        if kind != "application/json" {
            return match media["schema"]["type"].as_str() {
                Some("string") | None => Ok(()),
                Some(other) => Err(format!("a {kind} body documented as {other}")),
            };
        }
        let instance: Value =
            serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body}"))?;
        let mut schema = media["schema"].clone();
        schema["components"] = self.components.clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("the document's schema does not compile: {e}"))?;
        let faults: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if faults.is_empty() {
            Ok(())
        } else {
            Err(format!("{}\nbody: {body}", faults.join("\n")))
        }
    }
}

/// Calls the server and checks each answer against the document, keeping what each
/// operation answered.
struct Caller<'a> {
    app: &'a TestApp,
    spec: Spec,
    /// (method, template) → the statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    faults: Vec<String>,
}

impl Caller<'_> {
    /// A request with the key.
    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.anonymous(method, path).header("X-Dash-Key", KEY)
    }

    fn anonymous(&self, method: &str, path: &str) -> RequestBuilder {
        client().request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.app.url),
        )
    }

    /// Sends `req` (`method path`), checks the answer, answers its status and body
    /// (JSON, or the text as a JSON string).
    async fn call(&mut self, method: &str, path: &str, req: RequestBuilder) -> (u16, Value) {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        // An event stream stays open: its head is what there is to check.
        let text = if content_type.starts_with("text/event-stream") {
            String::new()
        } else {
            r.text().await.unwrap_or_default()
        };
        let Some(template) = self.spec.template(path) else {
            self.faults
                .push(format!("{method} {path}: no path in the document"));
            return (status, Value::Null);
        };
        self.seen
            .entry((method.to_string(), template.clone()))
            .or_default()
            .insert(status);
        if let Err(e) = self
            .spec
            .check(method, &template, status, &content_type, &text)
        {
            self.faults
                .push(format!("{method} {path} → {status} {content_type}: {e}"));
        }
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.call(method, path, req).await
    }

    /// Sends and requires `want`.
    async fn expect(&mut self, want: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, got) = self.send(method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {got}");
        got
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_the_openapi_document_says() {
    let hook = Receiver::start(&[]).await;
    let app = spawn_app_with(&["--http-allow", "127.0.0.1"]).await;
    let doc: Value = app.json("GET", "/api/openapi.json").await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
    let mut c = Caller {
        app: &app,
        spec: Spec::new(doc),
        seen: BTreeMap::new(),
        faults: Vec::new(),
    };

    // The document and its page.
    c.expect(200, "GET", "/api/openapi.json", None).await;
    let (_, page) = c.send("GET", "/api/docs", None).await;
    let page = page.as_str().unwrap().to_string();
    for part in ["/api/jobs/{id}/run", "schema-Job", "RunsPage", "X-Dash-Key"] {
        assert!(page.contains(part), "the docs page names {part}");
    }

    // Credentials: none, a wrong key.
    let req = c.anonymous("GET", "/api/jobs");
    assert_eq!(c.call("GET", "/api/jobs", req).await.0, 401);
    let req = c
        .anonymous("POST", "/api/jobs")
        .header("X-Dash-Key", "wrong-key-0123456789");
    assert_eq!(c.call("POST", "/api/jobs", req).await.0, 401);

    // The scheduler.
    c.expect(200, "GET", "/api/automations/status", None).await;
    c.expect(200, "POST", "/api/automations/stop", None).await;
    let paused = c
        .expect(
            200,
            "POST",
            "/api/automations/stop",
            Some(json!({"reason": "deploy", "for": "1h"})),
        )
        .await;
    assert_eq!(paused["paused"]["reason"], "deploy");
    c.expect(200, "POST", "/api/automations/start", None).await;
    c.expect(200, "POST", "/api/automations/restart", None)
        .await;
    c.expect(200, "GET", "/api/leaders", None).await;

    // Jobs, and the answers every route shares: 400, 404, 409, 413, 422.
    let job = json!({"id": "ok", "kind": "noop", "schedule": "0 0 3 * * *", "timezone": "Europe/Warsaw", "params": {"fail": false}});
    c.expect(201, "POST", "/api/jobs", Some(job.clone())).await;
    c.expect(409, "POST", "/api/jobs", Some(job.clone())).await;
    c.expect(
        422,
        "POST",
        "/api/jobs",
        Some(json!({"id": "bad", "schedule": "every day"})),
    )
    .await;
    let req = c
        .req("POST", "/api/jobs")
        .header("content-type", "application/json")
        .body("{\"id\": ");
    assert_eq!(c.call("POST", "/api/jobs", req).await.0, 400);
    let req = c
        .req("POST", "/api/jobs")
        .header("content-type", "application/json")
        .body(format!("{{\"id\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)));
    assert_eq!(c.call("POST", "/api/jobs", req).await.0, 413);
    c.expect(200, "GET", "/api/jobs", None).await;
    c.expect(200, "GET", "/api/jobs/ok", None).await;
    c.expect(404, "GET", "/api/jobs/missing", None).await;
    c.expect(200, "PUT", "/api/jobs/ok", Some(job.clone()))
        .await;
    c.expect(200, "PATCH", "/api/jobs/ok", Some(json!({"name": "Fine"})))
        .await;
    let ran = c
        .expect(200, "POST", "/api/jobs/ok/run?wait=true", None)
        .await;
    let ok_run = ran["run"]["id"].as_i64().unwrap();
    let failed = c
        .expect(
            200,
            "POST",
            "/api/jobs/ok/run?wait=true",
            Some(json!({"params": {"fail": true}})),
        )
        .await;
    assert_eq!(failed["run"]["status"], "failed");
    c.expect(202, "POST", "/api/jobs/ok/run", None).await;
    c.expect(
        200,
        "POST",
        "/api/jobs/ok/pause",
        Some(json!({"reason": "vendor outage"})),
    )
    .await;
    c.expect(200, "POST", "/api/jobs/ok/resume", None).await;
    c.expect(409, "POST", "/api/jobs/ok/resume", None).await;
    let file = c.expect(200, "GET", "/api/jobs/export", None).await;
    let applied = c
        .expect(
            200,
            "POST",
            "/api/jobs/apply?dry_run=true",
            Some(file.clone()),
        )
        .await;
    assert!(applied["unchanged"].as_u64().unwrap() >= 1, "{applied}");
    c.expect(
        422,
        "POST",
        "/api/jobs/apply",
        Some(json!({"jobs": [{"id": "x", "kind": "nope"}]})),
    )
    .await;
    c.expect(
        201,
        "POST",
        "/api/jobs",
        Some(json!({"id": "gone", "kind": "noop", "schedule": "0 0 3 * * *"})),
    )
    .await;
    c.expect(204, "DELETE", "/api/jobs/gone", None).await;
    let (status, _) = c.send("POST", "/api/self-heal?wait=true", None).await;
    assert!(status == 200 || status == 202, "self-heal: {status}");
    c.expect(202, "POST", "/api/exec/brief", None).await;

    // Runs.
    c.expect(200, "GET", "/api/runs", None).await;
    c.expect(200, "GET", "/api/runs?job=ok&status=failed&limit=1", None)
        .await;
    c.expect(200, "GET", &format!("/api/runs/{ok_run}"), None)
        .await;
    c.expect(200, "GET", &format!("/api/runs/{ok_run}?wait=true"), None)
        .await;
    c.expect(404, "GET", "/api/runs/999999", None).await;
    // axum's own rejections, answered as the API's JSON errors too.
    c.expect(400, "GET", "/api/runs?limit=many", None).await;
    c.expect(400, "GET", "/api/runs/latest", None).await;
    c.expect(409, "POST", &format!("/api/runs/{ok_run}/cancel"), None)
        .await;
    c.expect(
        201,
        "POST",
        "/api/jobs",
        Some(json!({"id": "slow", "kind": "noop", "schedule": "0 0 3 * * *", "params": {"duration_ms": 60000}})),
    )
    .await;
    let slow = c.expect(202, "POST", "/api/jobs/slow/run", None).await;
    let slow = slow["run"]["id"].as_i64().unwrap();
    let cancelled = c
        .expect(
            200,
            "POST",
            &format!("/api/runs/{slow}/cancel"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    c.expect(202, "POST", &format!("/api/runs/{ok_run}/rerun"), None)
        .await;
    c.expect(
        200,
        "POST",
        "/api/runs/cancel",
        Some(json!({"job": "slow", "dry_run": true})),
    )
    .await;
    c.expect(
        200,
        "POST",
        "/api/runs/rerun",
        Some(json!({"job": "ok", "status": "failed", "dry_run": true})),
    )
    .await;
    c.expect(200, "POST", "/api/runs/cancel", None).await;
    c.expect(200, "GET", &format!("/api/runs/{ok_run}/log"), None)
        .await;
    c.expect(200, "GET", "/api/events", None).await;
    let preview = c
        .expect(
            200,
            "GET",
            "/api/schedule/preview?schedule=0+30+2+*+*+*&timezone=Europe/Warsaw&count=3&job=ok",
            None,
        )
        .await;
    assert_eq!(preview["times"].as_array().unwrap().len(), 3);
    c.expect(422, "GET", "/api/schedule/preview?schedule=never", None)
        .await;
    c.expect(200, "GET", "/api/bench/ticks", None).await;

    // Maintenance windows.
    let window = json!({"id": "upgrade", "name": "Upgrade", "start": "2030-01-01T02:00:00Z", "end": "2030-01-01T04:00:00Z"});
    c.expect(201, "POST", "/api/maintenance", Some(window.clone()))
        .await;
    c.expect(200, "GET", "/api/maintenance", None).await;
    c.expect(200, "GET", "/api/maintenance/upgrade", None).await;
    c.expect(200, "PUT", "/api/maintenance/upgrade", Some(json!({"name": "Sundays", "schedule": "0 0 2 * * SUN", "duration": "2h", "timezone": "Europe/Warsaw"})))
        .await;
    c.expect(204, "DELETE", "/api/maintenance/upgrade", None)
        .await;

    // Alerts: a channel to a receiver on loopback, a rule, the failure's incident.
    let channel = json!({"id": "hook", "kind": "webhook", "url": hook.url, "secret": "whsec-1"});
    c.expect(201, "POST", "/api/alerts/channels", Some(channel.clone()))
        .await;
    c.expect(200, "GET", "/api/alerts/channels", None).await;
    let shown = c
        .expect(200, "GET", "/api/alerts/channels/hook", None)
        .await;
    assert_eq!(shown["secret"], "********");
    c.expect(200, "PUT", "/api/alerts/channels/hook", Some(channel))
        .await;
    let answer = c
        .expect(200, "POST", "/api/alerts/channels/hook/test", None)
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let rule = json!({"id": "failures", "on": "failed", "jobs": ["ok"], "channels": ["hook"]});
    c.expect(201, "POST", "/api/alerts/rules", Some(rule.clone()))
        .await;
    c.expect(200, "GET", "/api/alerts/rules", None).await;
    c.expect(200, "GET", "/api/alerts/rules/failures", None)
        .await;
    c.expect(200, "PUT", "/api/alerts/rules/failures", Some(json!({"on": "consecutive_failures", "threshold": 1, "jobs": ["ok"], "channels": ["hook"], "remind_every": "1h"})))
        .await;
    c.expect(
        422,
        "PUT",
        "/api/alerts/rules/failures",
        Some(json!({"on": "failed", "channels": ["nowhere"]})),
    )
    .await;
    c.expect(
        200,
        "POST",
        "/api/jobs/ok/run?wait=true",
        Some(json!({"params": {"fail": true}})),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = c
            .expect(200, "GET", "/api/alerts/incidents?limit=10", None)
            .await;
        let delivered = list["incidents"].as_array().unwrap().iter().any(|i| {
            i["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["status"] == "sent"))
        });
        if delivered {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no incident delivered: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    c.expect(409, "DELETE", "/api/alerts/channels/hook", None)
        .await;
    c.expect(204, "DELETE", "/api/alerts/rules/failures", None)
        .await;
    c.expect(204, "DELETE", "/api/alerts/channels/hook", None)
        .await;

    // Inbound checks and their pings (no key).
    let check = c
        .expect(
            201,
            "POST",
            "/api/checks",
            Some(json!({"id": "backup", "period": "1h", "grace": "5m"})),
        )
        .await;
    let token = check["token"].as_str().unwrap().to_string();
    let ping = format!("/ping/{token}");
    let req = c.anonymous("POST", &ping).body("rsync done");
    assert_eq!(c.call("POST", &ping, req).await.0, 200);
    let req = c.anonymous("GET", &format!("{ping}/start"));
    assert_eq!(c.call("GET", &format!("{ping}/start"), req).await.0, 200);
    let req = c.anonymous("POST", &format!("{ping}/fail"));
    assert_eq!(c.call("POST", &format!("{ping}/fail"), req).await.0, 200);
    let req = c.anonymous("GET", &ping);
    assert_eq!(c.call("GET", &ping, req).await.0, 200);
    let req = c.anonymous("GET", &format!("{ping}/bogus"));
    assert_eq!(c.call("GET", &format!("{ping}/bogus"), req).await.0, 404);
    let wrong = "/ping/0123456789abcdef0123456789abcdef";
    let req = c.anonymous("GET", wrong);
    assert_eq!(c.call("GET", wrong, req).await.0, 404);
    c.expect(200, "GET", "/api/checks", None).await;
    let one = c.expect(200, "GET", "/api/checks/backup", None).await;
    assert_eq!(one["pings"].as_array().unwrap().len(), 4, "{one}");
    c.expect(
        200,
        "PUT",
        "/api/checks/backup",
        Some(json!({"name": "Nightly backup", "schedule": "0 0 3 * * *", "grace": "30m"})),
    )
    .await;
    c.expect(204, "DELETE", "/api/checks/backup", None).await;

    // The session: JSON and form logins, wrong key, logging out both ways.
    let req = c
        .anonymous("POST", "/api/session")
        .json(&json!({"key": KEY}));
    assert_eq!(c.call("POST", "/api/session", req).await.0, 204);
    let req = c
        .anonymous("POST", "/api/session")
        .json(&json!({"key": "not-the-key-0123456789"}));
    assert_eq!(c.call("POST", "/api/session", req).await.0, 401);
    let req = c
        .anonymous("POST", "/api/session")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={KEY}"));
    assert_eq!(c.call("POST", "/api/session", req).await.0, 303);
    let cookie = app.session().await;
    let req = c
        .anonymous("DELETE", "/api/session")
        .header("cookie", &cookie);
    assert_eq!(c.call("DELETE", "/api/session", req).await.0, 204);
    let cookie = app.session().await;
    let req = c
        .anonymous("POST", "/api/session/logout")
        .header("cookie", &cookie)
        .header("origin", &app.url);
    assert_eq!(c.call("POST", "/api/session/logout", req).await.0, 303);
    let cookie = app.session().await;
    let req = c
        .anonymous("POST", "/api/jobs/ok/run")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example");
    assert_eq!(c.call("POST", "/api/jobs/ok/run", req).await.0, 403);

    // Operations.
    c.expect(200, "GET", "/metrics", None).await;
    let req = c.anonymous("GET", "/healthz");
    assert_eq!(c.call("GET", "/healthz", req).await.0, 200);
    let req = c.anonymous("GET", "/readyz");
    assert_eq!(c.call("GET", "/readyz", req).await.0, 200);

    assert!(
        c.faults.is_empty(),
        "answers the document does not describe:\n{}",
        c.faults.join("\n\n")
    );
    // Every operation the document lists was called, and answered a success at least once.
    let mut missing = Vec::new();
    for (path, item) in c.spec.doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let key = (method.to_uppercase(), path.clone());
            let ok = c
                .seen
                .get(&key)
                .is_some_and(|s| s.iter().any(|s| (200..400).contains(s)));
            if !ok {
                missing.push(format!("{} {path} (saw {:?})", key.0, c.seen.get(&key)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations never answered a success here:\n{}",
        missing.join("\n")
    );
}

/// The strict schemas do refuse what they should: an undocumented field, a wrong type,
/// a missing field and a malformed date each fail — so a pass above means something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_document_refuses_answers_that_differ_from_it() {
    let app = spawn_app_with(&[]).await;
    let spec = Spec::new(app.json("GET", "/api/openapi.json").await);
    let job: Value = app.json("GET", "/api/jobs/metrics-summary").await;
    let check = |body: &Value| {
        spec.check(
            "GET",
            "/api/jobs/{id}",
            200,
            "application/json",
            &body.to_string(),
        )
    };
    assert_eq!(check(&job), Ok(()));
    let mut extra = job.clone();
    extra["undocumented"] = json!(1);
    let mut wrong = job.clone();
    wrong["retries"] = json!("three");
    let mut missing = job.clone();
    missing.as_object_mut().unwrap().remove("schedule");
    let mut bad_date = job.clone();
    bad_date["next_run_at"] = json!("tomorrow");
    let mut bad_enum = job.clone();
    bad_enum["overlap"] = json!("sometimes");
    for (what, body) in [
        ("an extra field", extra),
        ("a wrong type", wrong),
        ("a missing field", missing),
        ("a bad date", bad_date),
        ("an unknown enum value", bad_enum),
    ] {
        assert!(check(&body).is_err(), "{what} passed");
    }
    assert!(spec
        .check("GET", "/api/jobs/{id}", 418, "application/json", "{}")
        .is_err());
    // A schema composed with allOf (a check's view flattens the check) is closed too.
    let (status, view) = app
        .send(
            Method::POST,
            "/api/checks",
            Some(json!({"id": "c", "period": "1h", "grace": "5m"})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let check = |body: &Value| {
        spec.check(
            "GET",
            "/api/checks/{id}",
            200,
            "application/json",
            &body.to_string(),
        )
    };
    assert_eq!(check(&view), Ok(()));
    let mut extra = view.clone();
    extra["undocumented"] = json!(1);
    assert!(
        check(&extra).is_err(),
        "an extra field beside a flattened one passed"
    );
    let mut missing = view.clone();
    missing.as_object_mut().unwrap().remove("token");
    assert!(check(&missing).is_err(), "a flattened field missing passed");
    assert!(spec
        .check("GET", "/api/jobs/{id}", 200, "text/html", "<p>")
        .is_err());
    assert!(spec
        .check("DELETE", "/api/jobs/{id}", 204, "", "surprise")
        .is_err());
}
