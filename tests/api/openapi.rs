//! The OpenAPI document (`GET /openapi.json`) and the docs page (`GET /docs`): the document
//! is valid OpenAPI 3.1, generated from the code, lists exactly what the router serves, and
//! its request schemas say what the handlers really accept; the docs page loads nothing
//! from anywhere but this server.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Pages the router serves that are not API (the account page and its assets): listed here
/// on purpose, so that any other route added without documentation fails the test below.
const STATIC_PAGES: [&str; 4] = ["/", "/app.js", "/app.css", "/favicon.svg"];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response.content_type().starts_with("application/json"),
        "{}",
        response.content_type()
    );
    response.body
}

/// Every `(path, method)` in the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..20 {
        match current.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .expect("local schema ref");
                current = &doc["components"]["schemas"][name];
            }
            None => return current,
        }
    }
    panic!("$ref loop at {schema}");
}

/// Every `$ref` anywhere in `value`, with where it was found.
fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push((at.to_owned(), child.as_str().unwrap_or_default().to_owned()));
                } else if key != "example" && key != "examples" {
                    collect_refs(child, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// JSON Schema 2020-12 (the dialect of OpenAPI 3.1) checks on one schema object.
fn check_schema(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        if !schema.is_boolean() {
            problems.push(format!("{at}: a schema must be an object or a boolean"));
        }
        return;
    };
    const TYPES: [&str; 7] = [
        "null", "boolean", "object", "array", "number", "string", "integer",
    ];
    match map.get("type") {
        None => {}
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {}
        Some(Value::Array(ts))
            if !ts.is_empty()
                && ts
                    .iter()
                    .all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))) => {}
        Some(other) => problems.push(format!("{at}: bad type {other}")),
    }
    if map.contains_key("nullable") {
        problems.push(format!(
            "{at}: `nullable` is OpenAPI 3.0; 3.1 uses type arrays"
        ));
    }
    for key in ["minLength", "maxLength", "minItems", "maxItems"] {
        if let Some(v) = map.get(key)
            && v.as_u64().is_none()
        {
            problems.push(format!("{at}: {key} must be a non-negative integer"));
        }
    }
    if let (Some(min), Some(max)) = (
        map.get("minLength").and_then(Value::as_u64),
        map.get("maxLength").and_then(Value::as_u64),
    ) && min > max
    {
        problems.push(format!("{at}: minLength > maxLength"));
    }
    if let Some(required) = map.get("required") {
        let names: Vec<&str> = required
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if names.len() != required.as_array().map_or(0, Vec::len) {
            problems.push(format!("{at}: required must be an array of strings"));
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for name in names {
                if !props.contains_key(name) {
                    problems.push(format!(
                        "{at}: required property {name} is not among the properties"
                    ));
                }
            }
        }
    }
    if let Some(props) = map.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (name, prop) in props {
                    check_schema(prop, &format!("{at}/properties/{name}"), problems);
                }
            }
            None => problems.push(format!("{at}: properties must be an object")),
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get(key) {
            check_schema(child, &format!("{at}/{key}"), problems);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(children) = map.get(key) {
            match children.as_array() {
                Some(children) if !children.is_empty() => {
                    for (i, child) in children.iter().enumerate() {
                        check_schema(child, &format!("{at}/{key}/{i}"), problems);
                    }
                }
                _ => problems.push(format!("{at}: {key} must be a non-empty array")),
            }
        }
    }
}

/// The structural rules of OpenAPI 3.1 that a generator can get wrong.
fn openapi_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let version = doc["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.1.") {
        problems.push(format!("openapi is {version:?}, not 3.1.x"));
    }
    for key in ["title", "version"] {
        if !doc["info"][key].is_string() {
            problems.push(format!("info.{key} missing"));
        }
    }
    if let Some(license) = doc["info"].get("license")
        && !license["name"].is_string()
    {
        problems.push("info.license.name missing".into());
    }
    let schemes: BTreeSet<String> = doc["components"]["securitySchemes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (name, scheme) in doc["components"]["securitySchemes"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if scheme["type"] == "http" && !scheme["scheme"].is_string() {
            problems.push(format!("security scheme {name}: http without scheme"));
        }
    }
    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut operation_ids = BTreeSet::new();
    for (path, method, op) in operations(doc) {
        let at = format!("{method} {path}");
        if !path.starts_with('/') {
            problems.push(format!("{at}: path must start with /"));
        }
        match op["operationId"].as_str() {
            Some(id) if operation_ids.insert(id.to_owned()) => {}
            Some(id) => problems.push(format!("{at}: duplicate operationId {id}")),
            None => problems.push(format!("{at}: no operationId")),
        }
        for tag in op["tags"].as_array().into_iter().flatten() {
            if !declared_tags.contains(tag.as_str().unwrap_or_default()) {
                problems.push(format!("{at}: tag {tag} not declared"));
            }
        }
        // Every {param} in the path is a required path parameter, and the other way round.
        let templated: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
            .collect();
        let mut declared = BTreeSet::new();
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap_or_default().to_owned();
            match param["in"].as_str() {
                Some("path") => {
                    if param["required"] != true {
                        problems.push(format!("{at}: path parameter {name} must be required"));
                    }
                    declared.insert(name.clone());
                }
                Some("query" | "header" | "cookie") => {}
                other => problems.push(format!("{at}: parameter {name} has bad `in` {other:?}")),
            }
            if param.get("schema").is_none() && param.get("content").is_none() {
                problems.push(format!("{at}: parameter {name} has no schema"));
            }
        }
        if templated != declared {
            problems.push(format!(
                "{at}: path parameters {templated:?} but declared {declared:?}"
            ));
        }
        if let Some(body) = op.get("requestBody") {
            if body["content"].as_object().is_none_or(|c| c.is_empty()) {
                problems.push(format!("{at}: requestBody without content"));
            }
            for (_, media) in body["content"].as_object().into_iter().flatten() {
                check_schema(
                    &media["schema"],
                    &format!("{at}/requestBody"),
                    &mut problems,
                );
            }
        }
        let responses = op["responses"].as_object();
        if responses.is_none_or(|r| r.is_empty()) {
            problems.push(format!("{at}: no responses"));
        }
        for (status, response) in responses.into_iter().flatten() {
            let valid = status == "default"
                || (status.len() == 3
                    && (status.chars().all(|c| c.is_ascii_digit()) || status.ends_with("XX")));
            if !valid {
                problems.push(format!("{at}: bad response key {status}"));
            }
            if !response["description"].is_string() {
                problems.push(format!("{at} {status}: a response needs a description"));
            }
            for (_, media) in response["content"].as_object().into_iter().flatten() {
                check_schema(&media["schema"], &format!("{at}/{status}"), &mut problems);
            }
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !schemes.contains(name) {
                    problems.push(format!("{at}: unknown security scheme {name}"));
                }
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        check_schema(
            schema,
            &format!("#/components/schemas/{name}"),
            &mut problems,
        );
    }
    let mut refs = Vec::new();
    collect_refs(doc, "#", &mut refs);
    for (at, reference) in refs {
        let target = reference
            .strip_prefix("#/components/schemas/")
            .map(|name| &doc["components"]["schemas"][name]);
        if target.is_none_or(Value::is_null) {
            problems.push(format!("{at}: $ref {reference} does not resolve"));
        }
    }
    problems
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_generated_from_the_code() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let problems = openapi_problems(&doc);
    assert!(
        problems.is_empty(),
        "OpenAPI problems:\n{}",
        problems.join("\n")
    );
    // Served as generated from the handlers' annotations, not from a file beside them.
    let generated = serde_json::to_value(tessera::http::openapi::document()).unwrap();
    assert_eq!(doc, generated);
    assert_eq!(doc["info"]["title"], "Tessera");
    // The bearer scheme, and which operations need it.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
        })
    );
    assert_eq!(
        doc["paths"]["/v1/auth/me"]["get"]["security"],
        json!([{"bearerAuth": []}])
    );
    assert_eq!(
        doc["paths"]["/v1/auth/2fa/verify"]["post"]["security"],
        json!([{"twoFactorToken": []}])
    );
    assert!(
        doc["paths"]["/v1/auth/login"]["post"]
            .get("security")
            .is_none()
    );
    // The checker itself catches what it claims to.
    let mut broken = doc.clone();
    broken["openapi"] = json!("3.0.3");
    broken["paths"]["/v1/auth/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/Nope"});
    broken["paths"]["/v1/auth/2fa/trusted-devices/{deviceId}"]["delete"]["parameters"] = json!([]);
    assert_eq!(
        openapi_problems(&broken).len(),
        3,
        "{:?}",
        openapi_problems(&broken)
    );
}

#[tokio::test]
async fn schemas_carry_formats_required_fields_examples_and_problem_documents() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let user = &schemas["User"];
    assert_eq!(user["properties"]["id"]["format"], "uuid");
    assert_eq!(user["properties"]["email"]["format"], "email");
    assert_eq!(user["properties"]["createdAt"]["format"], "date-time");
    assert_eq!(
        user["properties"]["lastLoginDate"]["type"],
        json!(["string", "null"])
    );
    let required: BTreeSet<&str> = user["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in [
        "id",
        "email",
        "userName",
        "phoneNumber",
        "twoFactorEnabled",
        "lastLoginDate",
        "lastLoginIp",
        "createdAt",
    ] {
        assert!(required.contains(field), "User.{field} is always present");
    }
    let problem = &schemas["Problem"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "Problem.{field}"
        );
    }
    assert!(problem.get("example").is_some());
    // Problem documents are documented with their own media type.
    let unauthorized = &doc["paths"]["/v1/auth/me"]["get"]["responses"]["401"];
    assert_eq!(
        unauthorized["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    // The Sapfiai envelopes.
    for name in [
        "SignInEnvelope",
        "FailureEnvelope",
        "ResultEnvelope",
        "CompatUser",
        "BearerProblem",
    ] {
        assert!(schemas[name].is_object(), "{name} documented");
    }
    let failure = &doc["paths"]["/authentication/verify-2fa"]["post"]["responses"]["401"];
    assert_eq!(
        failure["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/FailureEnvelope"
    );
    // 429s say when to come back.
    let limited = &doc["paths"]["/v1/auth/login"]["post"]["responses"]["429"];
    assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
    // Request bodies have examples to start from.
    let register = resolve(
        &doc,
        &doc["paths"]["/v1/auth/register"]["post"]["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(
        register["properties"]["email"]["example"],
        "ann@example.com"
    );
}

/// `.route("/path", ...)` literals in the source: routes added to a router without going
/// through `OpenApiRouter::routes` (which documents them).
fn plain_routes_in_source() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for chunk in text.split(".route(").skip(1) {
                    let chunk = chunk.trim_start();
                    if let Some(rest) = chunk.strip_prefix('"')
                        && let Some((route, _)) = rest.split_once('"')
                    {
                        out.insert(route.to_owned());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut out,
    );
    out
}

/// `{device_id}` and `{deviceId}` name the same segment.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn every_route_the_router_serves_is_documented() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| template(p))
        .collect();
    // Routes registered through `routes!` are documented by construction; any plain
    // `.route(...)` must be documented too, or be one of the static pages.
    for route in plain_routes_in_source() {
        assert!(
            documented.contains(&template(&route)) || STATIC_PAGES.contains(&route.as_str()),
            "route {route} is served but not in the OpenAPI document: register it with `routes!` and `#[utoipa::path]`"
        );
    }
    // The static pages really are served (so the list above is not stale).
    for page in STATIC_PAGES {
        let response = app.get(page, None).await;
        assert_eq!(response.status, 200, "{page}");
    }
}

fn fill_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        let (_, tail) = after.split_once('}').expect("closed parameter");
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_only_documented_statuses() {
    // With every optional route on: `/metrics` is served on the public listener only when
    // a metrics token is configured.
    let app = TestApp::spawn_with(|config| {
        config.metrics_bearer_token = Some("a-metrics-token-for-the-test".to_owned().into());
    })
    .await;
    // The admin API is served once a key exists.
    app.admin_key("openapi", &["admin"]).await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (path, method, op) in operations(&doc) {
        let url = app.url(&fill_path(&path));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .send(
                app.client
                    .request(method.clone(), url)
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await;
        let status = response.status.as_u16().to_string();
        assert!(
            op["responses"].get(&status).is_some(),
            "{method} {path} answered {status}, which it does not document; body: {}",
            response.text
        );
        assert!(
            ![404, 405].contains(&response.status.as_u16()) || path.contains('{'),
            "{method} {path} is not served"
        );
        checked += 1;
    }
    assert!(checked >= 29, "{checked} operations");
    // A method a path does not document is refused with 405, so nothing is served undocumented.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .send(app.client.request(m, app.url(&fill_path(path))))
                .await;
            assert_eq!(response.status, 405, "{method} {path}: {}", response.text);
        }
    }
}

#[tokio::test]
async fn the_document_covers_every_route_of_the_contract() {
    let api_md = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/API.md");
    let Ok(contract) = std::fs::read_to_string(&api_md) else {
        crate::helpers::skip(
            "the_document_covers_every_route_of_the_contract",
            "shared/API.md is not beside the repository",
        );
        return;
    };
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut found = 0;
    for method in ["GET", "POST", "DELETE"] {
        for chunk in contract.split(&format!("{method} /")).skip(1) {
            let route: String = chunk
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '|' | '`' | ',' | ')'))
                .collect();
            let route = format!("/{route}");
            let top_level = [
                "/v1/",
                "/authentication/",
                "/healthz",
                "/readyz",
                "/metrics",
                "/openapi.json",
                "/docs",
                "/.well-known/",
            ];
            // The two-factor table lists its routes relative to /v1/auth/2fa.
            let path = if top_level.iter().any(|p| route.starts_with(p)) {
                route
            } else {
                format!("/v1/auth/2fa{route}")
            };
            let documented = doc["paths"]
                .get(&path)
                .and_then(|item| item.get(method.to_lowercase()));
            assert!(
                documented.is_some(),
                "API.md has {method} {path}; the document does not"
            );
            found += 1;
        }
    }
    assert!(found >= 28, "read {found} routes from API.md");
}

#[tokio::test]
async fn the_docs_page_loads_nothing_from_anywhere_else() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.content_type().starts_with("text/html"),
        "{}",
        page.content_type()
    );
    let csp = page
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive}");
    }
    assert!(
        !csp.contains("http") && !csp.contains('*'),
        "CSP allows another origin: {csp}"
    );

    // Every resource the page refers to is on this server, and is served.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for chunk in page.text.split(attr).skip(1) {
            let target = chunk.split('"').next().unwrap();
            assert!(
                target.starts_with('/') && !target.starts_with("//"),
                "{attr}{target}\" leaves this server"
            );
            assets.push(target.to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")),
        "{assets:?}"
    );
    let mut bodies = vec![("/docs".to_owned(), page.text.clone())];
    for asset in assets.iter().filter(|a| a.starts_with("/docs/")) {
        let response: TestResponse = app.get(asset, None).await;
        assert_eq!(response.status, 200, "{asset}");
        let csp = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{asset}: {csp}");
        bodies.push((asset.clone(), response.text));
    }
    // No URL to anywhere else in the page, its script or its style: nothing to load.
    for (name, body) in &bodies {
        assert!(!body.contains("://"), "{name} names an external URL");
        assert!(
            !body.contains("@import") && !body.contains("url("),
            "{name} imports a resource"
        );
        assert!(
            !body.contains("<iframe") && !body.contains("importScripts"),
            "{name}"
        );
    }
    let script = &bodies.iter().find(|(n, _)| n.ends_with(".js")).unwrap().1;
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "the docs script uses {sink}");
    }
    assert!(
        script.contains("fetch(\"/openapi.json\""),
        "the page reads this server's document"
    );
    // Documented like every other route.
    let doc = document(&app).await;
    for path in ["/docs", "/docs/docs.js", "/docs/docs.css", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
}

/// Messages a response gives for `field`: from a problem's `errors`, or from a Sapfiai
/// envelope's `errors` strings (`"field message"`).
fn field_errors(response: &TestResponse, field: &str) -> Vec<String> {
    if let Some(map) = response.body["errors"].as_object() {
        return map
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    response.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|m| m.strip_prefix(&format!("{field} ")).map(str::to_owned))
        .collect()
}

/// A value of exactly `len` characters that satisfies `schema`'s format or pattern where it
/// can (so only its length is in question).
fn string_of(schema: &Value, len: usize) -> String {
    match (schema["format"].as_str(), schema["pattern"].as_str()) {
        (Some("email"), _) => {
            let domain = "@example.com";
            let local = 64.min(len.saturating_sub(domain.len()));
            let rest = len - domain.len() - local;
            let labels = if rest > 0 {
                format!("{}.", "d".repeat(rest.saturating_sub(1)))
            } else {
                String::new()
            };
            let out = format!("{}@{}example.com", "a".repeat(local), labels);
            assert_eq!(out.chars().count(), len);
            out
        }
        (_, Some(p)) if p.contains("0-9+()") => "1".repeat(len),
        _ => "a".repeat(len),
    }
}

/// The body of an operation, with `fields` set, and its bearer: an admin API key on
/// `/admin/v1` (with any path parameter filled in), else `bearer`. Most bodies are POSTed;
/// a few are PATCHed or DELETEd (`path` then names its resource by the `{...}`
/// placeholder: the body is checked before the resource is looked up).
async fn send_body(
    app: &TestApp,
    method: &str,
    path: &str,
    body: &Value,
    bearer: &str,
    admin_key: &str,
) -> TestResponse {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let (path, bearer) = if path.starts_with("/admin/") {
        (fill_path(path), admin_key)
    } else {
        (path.to_owned(), bearer)
    };
    app.send(
        app.client
            .request(method, app.url(&path))
            .bearer_auth(bearer)
            .json(body),
    )
    .await
}

/// The JSON request schema of an operation, if it takes a body.
fn request_schema<'a>(doc: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let schema = op["requestBody"]["content"]["application/json"].get("schema")?;
    let schema = match schema.get("oneOf") {
        Some(alternatives) => alternatives
            .as_array()?
            .iter()
            .find(|a| a["type"] != "null")?,
        None => schema,
    };
    Some(resolve(doc, schema))
}

#[tokio::test]
async fn request_schemas_say_exactly_what_the_handlers_accept() {
    let app = TestApp::spawn().await;
    let admin_key = app.admin_key("openapi", &["admin"]).await;
    let doc = document(&app).await;
    let mut checked_fields = 0;
    for (path, method, op) in operations(&doc) {
        let Some(schema) = request_schema(&doc, &op) else {
            continue;
        };
        assert!(
            ["post", "patch", "delete"].contains(&method.as_str()),
            "{path}: {method}"
        );
        // A user of its own: some of these calls succeed (logout, say).
        let user = app.signed_in_user().await;
        assert_eq!(schema["type"], "object", "{path}: object schema");
        // A body with no fields (`{}` only) has no `properties` member.
        let no_properties = serde_json::Map::new();
        let properties = schema["properties"].as_object().unwrap_or(&no_properties);
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let strict = path.starts_with("/v1/") || path.starts_with("/admin/");
        assert_eq!(
            schema["additionalProperties"] == json!(false),
            strict,
            "{path}: /v1 and /admin refuse unknown fields, /authentication ignores them"
        );

        // Every documented field is known to the handler; an undocumented one is not (on /v1).
        let everything: serde_json::Map<String, Value> =
            properties.keys().map(|k| (k.clone(), json!("x"))).collect();
        let mut with_unknown = everything.clone();
        with_unknown.insert("notAField".into(), json!("x"));
        let response = send_body(
            &app,
            &method,
            &path,
            &Value::Object(with_unknown),
            &user.access_token,
            &admin_key,
        )
        .await;
        for name in properties.keys() {
            assert!(
                !field_errors(&response, name)
                    .iter()
                    .any(|m| m == "is not a known field"),
                "{path}: documented field {name} is unknown to the handler"
            );
        }
        if strict {
            assert_eq!(
                field_errors(&response, "notAField"),
                vec!["is not a known field"],
                "{path}: {}",
                response.text
            );
        } else {
            assert!(
                field_errors(&response, "notAField").is_empty(),
                "{path}: {}",
                response.text
            );
        }

        // maxLength is the handler's limit: one more is refused, exactly that many is not
        // refused for its length.
        for (name, prop) in properties {
            let prop = resolve(&doc, prop);
            let Some(max) = prop["maxLength"].as_u64() else {
                let is_string = prop["type"] == "string"
                    || prop["type"]
                        .as_array()
                        .is_some_and(|t| t.contains(&json!("string")));
                assert!(!is_string, "{path}: string field {name} has no maxLength");
                continue;
            };
            let max = max as usize;
            let mut body = everything.clone();
            body.insert(name.clone(), json!(string_of(prop, max + 1)));
            let too_long = send_body(
                &app,
                &method,
                &path,
                &Value::Object(body.clone()),
                &user.access_token,
                &admin_key,
            )
            .await;
            assert!(
                !field_errors(&too_long, name).is_empty(),
                "{path}: {name} of {} characters accepted: {}",
                max + 1,
                too_long.text
            );
            body.insert(name.clone(), json!(string_of(prop, max)));
            let longest = send_body(
                &app,
                &method,
                &path,
                &Value::Object(body),
                &user.access_token,
                &admin_key,
            )
            .await;
            let length_complaints: Vec<String> = field_errors(&longest, name)
                .into_iter()
                .filter(|m| m.contains("at most") || m.contains(" to "))
                .collect();
            assert!(
                length_complaints.is_empty(),
                "{path}: {name} of {max} characters refused for its length: {length_complaints:?}"
            );
            checked_fields += 1;
        }

        // An empty object: exactly the required fields are reported missing.
        let user = app.signed_in_user().await;
        let empty = send_body(
            &app,
            &method,
            &path,
            &json!({}),
            &user.access_token,
            &admin_key,
        )
        .await;
        let missing: BTreeSet<String> = properties
            .keys()
            .filter(|name| {
                field_errors(&empty, name)
                    .iter()
                    .any(|m| m == "is required")
            })
            .cloned()
            .collect();
        assert_eq!(
            missing, required,
            "{path}: fields reported missing vs the schema's `required`; body {}",
            empty.text
        );
    }
    assert!(checked_fields >= 30, "checked {checked_fields} fields");
}

#[tokio::test]
async fn documented_examples_of_request_bodies_pass_validation() {
    // Every required field has an example, and the example body (as the docs page builds
    // it) passes validation: whatever the answer, it is not a complaint about a field.
    let app = TestApp::spawn().await;
    let admin_key = app.admin_key("openapi", &["admin"]).await;
    let doc = document(&app).await;
    let mut complaints = BTreeMap::new();
    for (path, method, op) in operations(&doc) {
        let Some(schema) = request_schema(&doc, &op) else {
            continue;
        };
        let user = app.signed_in_user().await;
        let mut body = serde_json::Map::new();
        let no_properties = serde_json::Map::new();
        let properties = schema["properties"].as_object().unwrap_or(&no_properties);
        for (name, prop) in properties {
            match resolve(&doc, prop).get("example").or(prop.get("example")) {
                Some(example) => {
                    body.insert(name.clone(), example.clone());
                }
                None => assert!(
                    !schema["required"]
                        .as_array()
                        .is_some_and(|r| r.contains(&json!(name))),
                    "{path}: required field {name} has no example"
                ),
            }
        }
        let response = send_body(
            &app,
            &method,
            &path,
            &Value::Object(body),
            &user.access_token,
            &admin_key,
        )
        .await;
        if response.status == 400 {
            complaints.insert(path, response.text);
        }
    }
    assert!(complaints.is_empty(), "{complaints:#?}");
}
