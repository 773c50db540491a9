//! The README's section on the Sapfiai compatibility API: every curl example in it runs
//! against a live server and answers with the keys the JSON block after it shows.

use serde_json::{Value, json};

use crate::helpers::{Enrolled, PASSWORD, TestApp, totp_code};

const SECTION: &str = "## Sapfiai compatibility API (/authentication)";
const ENDPOINTS: [&str; 4] = [
    "/authentication/login",
    "/authentication/verify-2fa",
    "/authentication/refresh-token",
    "/authentication/enable-2fa",
];

/// The fenced blocks of the section, in order: `(language, content)`.
fn section_blocks() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md exists");
    let start = readme
        .lines()
        .position(|l| l.trim_end() == SECTION)
        .unwrap_or_else(|| panic!("README.md has a section {SECTION:?}"));
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme.lines().skip(start + 1) {
        match &mut open {
            None if line.starts_with("## ") => break,
            None => {
                if let Some(lang) = line.trim_start().strip_prefix("```") {
                    open = Some((lang.trim().to_owned(), String::new()));
                }
            }
            Some((_, content)) => {
                if line.trim_start().starts_with("```") {
                    blocks.push(open.take().unwrap());
                } else {
                    content.push_str(line);
                    content.push('\n');
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "a fenced block in the section is never closed"
    );
    blocks
}

/// Each `sh` block with the `json` block right after it.
fn examples() -> Vec<(String, Value)> {
    let blocks = section_blocks();
    for (lang, content) in &blocks {
        if lang == "json" {
            let parsed: Result<Value, _> = serde_json::from_str(content);
            assert!(
                parsed.is_ok(),
                "every json block of the section is JSON: {content}"
            );
        }
    }
    blocks
        .iter()
        .enumerate()
        .filter(|(_, (lang, _))| lang == "sh")
        .map(|(i, (_, script))| {
            let (lang, json) = blocks
                .get(i + 1)
                .unwrap_or_else(|| panic!("the example {script} is followed by a json block"));
            assert_eq!(
                lang, "json",
                "the example {script} is followed by a json block"
            );
            let shape = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("README json block is JSON: {e}\n{json}"));
            (script.clone(), shape)
        })
        .collect()
}

/// Differences between the key sets of `actual` and `shape`, nested objects included.
fn key_differences(actual: &Value, shape: &Value, path: &str, out: &mut Vec<String>) {
    let (Some(actual), Some(shape)) = (actual.as_object(), shape.as_object()) else {
        return;
    };
    let mut got: Vec<&String> = actual.keys().collect();
    let mut want: Vec<&String> = shape.keys().collect();
    got.sort();
    want.sort();
    if got != want {
        out.push(format!("{path}: keys {got:?}, README shows {want:?}"));
    }
    for (key, value) in shape {
        if let Some(actual_value) = actual.get(key) {
            key_differences(actual_value, value, &format!("{path}.{key}"), out);
        }
    }
}

/// What the example needs of the account.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    TwoFactorOn,
    /// Off, with the authenticator kept (to turn back on).
    TwoFactorOff,
}

struct Account {
    enrolled: Enrolled,
    two_factor_on: bool,
}

impl Account {
    fn email(&self) -> &str {
        &self.enrolled.user.email
    }

    async fn login(&self, app: &TestApp) -> Value {
        let response = app
            .post(
                "/authentication/login",
                json!({"email": self.email(), "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
        response.body
    }

    /// A sign-in through the second factor: a fresh access token and a refresh token.
    async fn sign_in_with_code(&self, app: &TestApp) -> Value {
        app.clock.advance(30);
        let login = self.login(app).await;
        assert_eq!(login["requires2FA"], true, "{login}");
        let code = totp_code(&self.enrolled.secret, app.now());
        let response = app
            .post(
                "/authentication/verify-2fa",
                json!({"code": code, "token": login["token"]}),
                None,
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
        response.body
    }

    async fn set(&mut self, app: &TestApp, needs: Needs) {
        let want_on = needs == Needs::TwoFactorOn;
        if self.two_factor_on == want_on {
            return;
        }
        let access = if self.two_factor_on {
            self.sign_in_with_code(app).await["token"].clone()
        } else {
            self.login(app).await["token"].clone()
        };
        let response = app
            .post(
                "/authentication/enable-2fa",
                json!({"email": self.email(), "password": PASSWORD, "enable": want_on}),
                access.as_str(),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
        self.two_factor_on = want_on;
    }

    /// The variables of the examples, all live and unused: a fresh access token, a
    /// refresh token, a temporary token and a code of a time step not yet used.
    async fn variables(&self, app: &TestApp) -> Vec<(&'static str, String)> {
        let (access, refresh, token) = if self.two_factor_on {
            let signed_in = self.sign_in_with_code(app).await;
            app.clock.advance(30);
            let login = self.login(app).await;
            assert_eq!(login["requires2FA"], true, "{login}");
            (
                signed_in["token"].clone(),
                signed_in["refreshToken"].clone(),
                login["token"].clone(),
            )
        } else {
            app.clock.advance(30);
            let login = self.login(app).await;
            assert_eq!(login["requires2FA"], false, "{login}");
            (
                login["token"].clone(),
                login["refreshToken"].clone(),
                Value::String(String::new()),
            )
        };
        let text = |v: Value| v.as_str().expect("a token").to_owned();
        vec![
            ("BASE", app.address.clone()),
            ("EMAIL", self.email().to_owned()),
            ("PASSWORD", PASSWORD.to_owned()),
            ("TOKEN", text(token)),
            ("CODE", totp_code(&self.enrolled.secret, app.now())),
            ("REFRESH", text(refresh)),
            ("ACCESS", text(access)),
        ]
    }
}

/// Runs an example with `bash -c`, straight to the test server: no proxy from the
/// environment, no `.curlrc` from the home directory.
async fn run(app: &TestApp, script: &str, variables: &[(&'static str, String)]) -> Value {
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .envs(variables.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env("CURL_HOME", app.data_dir.path())
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example exits 0: {:?}\n{script}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the example prints JSON ({e}):\n{script}\n{stdout}"))
}

#[tokio::test]
async fn readme_section_has_a_runnable_example_for_every_endpoint() {
    let examples = examples();
    for endpoint in ENDPOINTS {
        assert!(
            examples.iter().any(|(script, _)| script.contains(endpoint)),
            "README has a curl example for {endpoint}"
        );
    }
    for (script, _) in &examples {
        assert!(script.contains("curl -s"), "examples use curl -s: {script}");
        assert!(
            script.contains("$BASE"),
            "examples take the server from $BASE: {script}"
        );
        let hits = ENDPOINTS.iter().filter(|e| script.contains(*e)).count();
        assert_eq!(hits, 1, "each example calls one endpoint: {script}");
    }
}

#[tokio::test]
async fn readme_examples_answer_the_shapes_they_show() {
    let app = TestApp::spawn().await;
    let enrolled = app.enrolled_user().await;
    let mut account = Account {
        enrolled,
        two_factor_on: true,
    };

    let examples = examples();
    assert!(examples.len() >= ENDPOINTS.len(), "an example per endpoint");
    for (script, shape) in &examples {
        let unescaped = script.replace('\\', "");
        let turns_on = unescaped.contains("\"enable\": true");
        let needs = if script.contains("/authentication/enable-2fa") && turns_on {
            Needs::TwoFactorOff
        } else {
            Needs::TwoFactorOn
        };
        account.set(&app, needs).await;
        let variables = account.variables(&app).await;
        let answer = run(&app, script, &variables).await;

        let mut differences = Vec::new();
        key_differences(&answer, shape, "$", &mut differences);
        assert!(
            differences.is_empty(),
            "{script}\nanswered {answer}\nkey differences: {differences:#?}"
        );
        let succeeded = answer["success"] == true || answer["isSuccess"] == true;
        assert!(
            succeeded,
            "the example succeeds: {script}\nanswered {answer}"
        );

        if script.contains("/authentication/enable-2fa") {
            account.two_factor_on = turns_on;
            let status = app
                .get(
                    "/v1/auth/2fa/status",
                    Some(&variables.iter().find(|(k, _)| *k == "ACCESS").unwrap().1),
                )
                .await;
            assert_eq!(
                status.body["enabled"], turns_on,
                "{script}\n{}",
                status.text
            );
        }
    }
}
