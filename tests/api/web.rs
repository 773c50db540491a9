//! The account security page at `/`: its files are served with the right content types and
//! their own strict Content-Security-Policy, the HTML loads nothing from elsewhere and has
//! no inline script, and the script talks only to `/v1` routes that exist. The page's
//! behaviour in a browser is tested end to end by `e2e/account.test.mjs`.

use crate::helpers::TestApp;

const ASSETS: [(&str, &str); 4] = [
    ("/", "text/html; charset=utf-8"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/app.css", "text/css; charset=utf-8"),
    ("/favicon.svg", "image/svg+xml"),
];

/// The directives the page relies on: same-origin script, style and connections only, no
/// framing, no forms posting anywhere, and Trusted Types so strings never become markup.
const REQUIRED_DIRECTIVES: [&str; 10] = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
];

#[tokio::test]
async fn page_and_assets_are_served_with_their_content_types_and_a_strict_csp() {
    let app = TestApp::spawn().await;
    for (path, content_type) in ASSETS {
        let response = app.get(path, None).await;
        assert_eq!(response.status.as_u16(), 200, "{path}");
        assert_eq!(response.content_type(), content_type, "{path}");
        assert!(!response.text.is_empty(), "{path} has a body");
        let csp = response
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has a CSP"));
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for directive in REQUIRED_DIRECTIVES {
            assert!(
                directives.contains(&directive),
                "{path}: CSP {csp:?} lacks {directive:?}"
            );
        }
        for loose in [
            "unsafe-inline",
            "unsafe-eval",
            "unsafe-hashes",
            "http:",
            "https:",
            "*",
        ] {
            assert!(!csp.contains(loose), "{path}: CSP {csp:?} allows {loose:?}");
        }
        // The global security headers still apply.
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            response.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn api_routes_keep_the_default_deny_all_csp() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/v1/auth/me", "/no-such-page"] {
        let response = app.get(path, None).await;
        assert_eq!(
            response.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn unknown_files_and_other_methods_get_problem_documents() {
    let app = TestApp::spawn().await;
    app.get("/app.jsx", None)
        .await
        .assert_problem(404, "not_found");
    app.get("/web/app.js", None)
        .await
        .assert_problem(404, "not_found");
    app.post("/", serde_json::json!({}), None)
        .await
        .assert_problem(405, "method_not_allowed");
}

/// Every element tag of `html` as its text between `<` and `>` (not comments or doctype).
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .filter(|rest| !rest.starts_with('!'))
        .filter_map(|rest| rest.split_once('>').map(|(tag, _)| tag))
        .collect()
}

/// The attributes of a tag as (lowercase name, value); values may be quoted with `"`.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag
        .split_once(char::is_whitespace)
        .map_or("", |(_, attrs)| attrs)
        .trim_end_matches('/');
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"').expect("closing quote");
                value = quoted[..end].to_owned();
                rest = &quoted[end + 1..];
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                value = after[..end].to_owned();
                rest = &after[end..];
            }
        }
        out.push((name, value));
    }
    out
}

#[tokio::test]
async fn the_html_loads_nothing_from_elsewhere_and_has_no_inline_script_or_style() {
    let app = TestApp::spawn().await;
    let html = app.get("/", None).await.text;
    let lower = html.to_ascii_lowercase();

    assert!(
        !lower.contains("http://") && !lower.contains("https://"),
        "no absolute URL in the HTML"
    );
    assert!(!lower.contains("javascript:"), "no javascript: URL");
    assert!(!lower.contains("<style"), "no inline style element");

    let mut scripts = 0;
    for tag in tags(&html) {
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        for (attribute, value) in attributes(tag) {
            assert!(
                !attribute.starts_with("on"),
                "inline event handler {attribute:?} in <{tag}>"
            );
            assert_ne!(attribute, "style", "inline style attribute in <{tag}>");
            if [
                "src",
                "href",
                "action",
                "formaction",
                "srcset",
                "poster",
                "data",
            ]
            .contains(&attribute.as_str())
            {
                assert!(
                    (value.starts_with('/') && !value.starts_with("//")) || value.starts_with('#'),
                    "{attribute}={value:?} in <{tag}> must be a same-origin path"
                );
            }
        }
        if name == "script" {
            scripts += 1;
            let attrs = attributes(tag);
            assert!(
                attrs.iter().any(|(n, v)| n == "src" && v == "/app.js"),
                "script loads /app.js: <{tag}>"
            );
            assert!(
                attrs.iter().any(|(n, v)| n == "type" && v == "module"),
                "the script is a module: <{tag}>"
            );
        }
    }
    assert_eq!(scripts, 1, "one script element");
    // Every <script> element is empty: its body is between its tag and `</script>`.
    for (start, _) in lower.match_indices("<script") {
        let open_end = start + lower[start..].find('>').expect("script tag ends");
        let close = open_end + lower[open_end..].find("</script>").expect("script closes");
        assert!(
            lower[open_end + 1..close].trim().is_empty(),
            "inline script body"
        );
    }
    // Every form field has a label.
    for tag in tags(&html) {
        let name = tag
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if name != "input" {
            continue;
        }
        let id = attributes(tag)
            .into_iter()
            .find(|(n, _)| n == "id")
            .map(|(_, v)| v)
            .expect("every input has an id");
        assert!(
            html.contains(&format!("for=\"{id}\"")),
            "input #{id} has a <label for>"
        );
    }
}

/// The string literals in the script that start with `/` and name an API path.
fn api_paths(script: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for quote in ['\'', '`'] {
        let opener = format!("{quote}/");
        for (start, _) in script.match_indices(&opener) {
            let body = &script[start + 1..];
            let end = body.find(quote).expect("literal closes");
            let literal = &body[..end];
            if literal.starts_with("/v")
                || literal.starts_with("/auth")
                || literal.starts_with("/authentication")
            {
                paths.push(literal.to_owned());
            }
        }
    }
    paths
}

/// Where a module specifier in the module served at `from` points: `./x.js` and `../x.js`
/// resolve against it, as a browser does.
fn resolve(from: &str, specifier: &str) -> String {
    let mut dir: Vec<&str> = from.split('/').collect();
    dir.pop();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                dir.pop();
            }
            name => dir.push(name),
        }
    }
    dir.join("/")
}

/// The module specifiers of a script's `import ... from '...'` and `import '...'` lines.
fn imports(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|line| line.starts_with("import "))
        .filter_map(|line| line.rsplit_once(" '"))
        .filter_map(|(_, rest)| rest.split_once('\'').map(|(specifier, _)| specifier))
        .collect()
}

/// The whole script of the page: `/app.js` and every module it imports, directly or not,
/// each served as JavaScript under the page's CSP. Returns (path, text) pairs.
async fn script_modules(app: &TestApp) -> Vec<(String, String)> {
    let mut seen = vec![("/app.js".to_owned(), String::new())];
    let mut next = 0;
    while next < seen.len() {
        let path = seen[next].0.clone();
        let response = app.get(&path, None).await;
        assert_eq!(response.status.as_u16(), 200, "{path}");
        assert_eq!(
            response.content_type(),
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_eq!(
            response.header("content-security-policy"),
            Some(tessera::http::web::PAGE_CSP),
            "{path}"
        );
        for specifier in imports(&response.text) {
            assert!(
                specifier.starts_with("./") || specifier.starts_with("../"),
                "{path} imports {specifier:?}: only relative, same-origin modules"
            );
            let target = resolve(&path, specifier);
            if !seen.iter().any(|(p, _)| *p == target) {
                seen.push((target, String::new()));
            }
        }
        seen[next].1 = response.text;
        next += 1;
    }
    seen
}

#[tokio::test]
async fn the_script_is_modules_served_under_the_page_csp() {
    let app = TestApp::spawn().await;
    let modules = script_modules(&app).await;
    let paths: Vec<&str> = modules.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths.len(),
        tessera::http::web::APP_MODULES.len() + 1,
        "every module is imported: {paths:?}"
    );
    for (path, _) in tessera::http::web::APP_MODULES {
        assert!(paths.contains(&path), "{path} is imported: {paths:?}");
    }
}

#[tokio::test]
async fn the_script_uses_only_v1_routes_that_exist() {
    let app = TestApp::spawn().await;
    let script: String = script_modules(&app)
        .await
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n");
    let paths = api_paths(&script);
    assert!(paths.len() >= 12, "found the API calls: {paths:?}");
    for path in &paths {
        assert!(path.starts_with("/v1/auth/"), "{path} is a /v1 route");
        // A template literal's placeholder stands for a device id.
        let concrete = match path.split_once("${") {
            Some((prefix, _)) => format!("{prefix}{}", uuid::Uuid::new_v4()),
            None => path.clone(),
        };
        let response = app.get(&concrete, None).await;
        assert!(
            !(response.status.as_u16() == 404 && response.body["code"] == "not_found"),
            "{path} is not a route: {}",
            response.text
        );
    }
    // Nothing but the SVG namespace name looks like an absolute URL.
    let absolute = script.matches("http://").count() + script.matches("https://").count();
    let namespaces = script.matches("'http://www.w3.org/2000/svg'").count();
    assert_eq!(
        absolute, namespaces,
        "no absolute URL in the script besides the SVG namespace"
    );
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(banned), "the script avoids {banned}");
    }
}
