//! Passkeys over HTTP: `/v1/auth/passkeys/*`. Every ceremony is driven by a software
//! authenticator and WebAuthn client that are not Tessera's (`passkey`, from 1Password),
//! so the server checks answers that an independent implementation made.

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::{Value, json};
use tessera::config::Config;
use url::Url;

use crate::helpers::{TestApp, TestResponse, TestUser};

mod manage;
mod passwordless;
mod register;
mod safety;
mod second_step;

/// The relying party the tests configure, and the page that uses it.
pub const RP_ID: &str = "tessera.example";
pub const ORIGIN: &str = "https://tessera.example";

pub fn configure(config: &mut Config) {
    config.webauthn_rp_id = Some(RP_ID.into());
    config.webauthn_origins = vec![ORIGIN.into()];
}

pub async fn spawn() -> TestApp {
    TestApp::spawn_with(configure).await
}

/// A person who always approves and always verifies (PIN or biometric).
struct Approves;

#[async_trait::async_trait]
impl UserValidationMethod for Approves {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

type SoftClient =
    Client<Option<Passkey>, Approves, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

/// A software authenticator holding one discoverable passkey, behind a WebAuthn client.
pub struct SoftKey {
    client: SoftClient,
}

impl SoftKey {
    /// An authenticator that keeps no signature counter (as synced passkeys do).
    pub fn new() -> Self {
        Self::with_model([0; 16], false)
    }

    /// An authenticator that counts its signatures, and says which model it is.
    pub fn counting(aaguid: [u8; 16]) -> Self {
        Self::with_model(aaguid, true)
    }

    fn with_model(aaguid: [u8; 16], counter: bool) -> Self {
        let mut authenticator =
            Authenticator::new(Aaguid::from(aaguid), None, Approves, RustCryptoBackend);
        authenticator.set_make_credentials_with_signature_counter(counter);
        Self {
            client: Client::new(authenticator),
        }
    }

    /// Answers a registration's `options` (as the server sent them) from `origin`.
    pub async fn create(&mut self, options: &Value, origin: &str) -> Value {
        let request: CredentialCreationOptions =
            serde_json::from_value(options.clone()).expect("creation options parse");
        let created = self
            .client
            .register(Url::parse(origin).unwrap(), request, DefaultClientData)
            .await
            .expect("the authenticator makes a credential");
        serde_json::to_value(created).unwrap()
    }

    /// Answers an authentication's `options` from `origin`.
    pub async fn get(&mut self, options: &Value, origin: &str) -> Value {
        self.try_get(options, origin)
            .await
            .expect("the authenticator signs")
    }

    pub async fn try_get(&mut self, options: &Value, origin: &str) -> Option<Value> {
        let mut options = options.clone();
        // Conditional mediation is the browser's business, not the authenticator's.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let request: CredentialRequestOptions =
            serde_json::from_value(options).expect("request options parse");
        let signed = self
            .client
            .authenticate(Url::parse(origin).unwrap(), request, DefaultClientData)
            .await
            .ok()?;
        Some(serde_json::to_value(signed).unwrap())
    }

    /// The authenticator's stored passkey (its private key and counter) as it is now.
    pub fn snapshot(&self) -> Option<Passkey> {
        self.client.authenticator().store().clone()
    }

    /// Puts an earlier copy of the passkey back: a clone of the authenticator.
    pub fn restore(&mut self, copy: Option<Passkey>) {
        *self.client.authenticator_mut().store_mut() = copy;
    }
}

// The ceremonies over HTTP, step by step. A finish takes the `ceremonyId` of a start's
// answer and the authenticator's answer to its `options`; a test that tampers with a step
// (another origin, a late answer, a replay) calls the steps one by one, the others call
// `register`, `passwordless` or `second_step`.

/// `POST /v1/auth/passkeys/register/start` with `body`.
pub async fn register_start(app: &TestApp, token: &str, body: Value) -> TestResponse {
    app.post("/v1/auth/passkeys/register/start", body, Some(token))
        .await
}

/// `POST /v1/auth/passkeys/register/finish`.
pub async fn register_finish(
    app: &TestApp,
    token: &str,
    ceremony_id: &Value,
    credential: &Value,
    name: &str,
) -> TestResponse {
    app.post(
        "/v1/auth/passkeys/register/finish",
        json!({"ceremonyId": ceremony_id, "credential": credential, "name": name}),
        Some(token),
    )
    .await
}

/// `POST /v1/auth/passkeys/login/start`: a passwordless sign-in, no account named.
pub async fn login_start(app: &TestApp) -> TestResponse {
    app.post("/v1/auth/passkeys/login/start", json!({}), None)
        .await
}

/// `POST /v1/auth/passkeys/login/finish`.
pub async fn login_finish(app: &TestApp, ceremony_id: &Value, credential: &Value) -> TestResponse {
    app.post(
        "/v1/auth/passkeys/login/finish",
        json!({"ceremonyId": ceremony_id, "credential": credential}),
        None,
    )
    .await
}

/// `POST /v1/auth/passkeys/verify/start` with a login's `twoFactorToken`.
pub async fn verify_start(app: &TestApp, two_factor_token: &str) -> TestResponse {
    app.post(
        "/v1/auth/passkeys/verify/start",
        json!({}),
        Some(two_factor_token),
    )
    .await
}

/// `POST /v1/auth/passkeys/verify/finish` with a login's `twoFactorToken`.
pub async fn verify_finish(
    app: &TestApp,
    two_factor_token: &str,
    ceremony_id: &Value,
    credential: &Value,
) -> TestResponse {
    app.post(
        "/v1/auth/passkeys/verify/finish",
        json!({"ceremonyId": ceremony_id, "credential": credential}),
        Some(two_factor_token),
    )
    .await
}

/// A registration with `token` (an access or an enrolment token): start, `key` answers
/// from the configured origin, finish. The start must succeed; the finish answer is the
/// caller's to judge.
pub async fn add_passkey(
    app: &TestApp,
    token: &str,
    key: &mut SoftKey,
    name: &str,
) -> TestResponse {
    let started = register_start(app, token, json!({})).await;
    assert_eq!(started.status, 200, "register/start: {}", started.text);
    let credential = key.create(&started.body["options"], ORIGIN).await;
    register_finish(app, token, &started.body["ceremonyId"], &credential, name).await
}

/// Registers `key` for `user` from the configured origin; returns the finish answer.
pub async fn register(app: &TestApp, user: &TestUser, key: &mut SoftKey, name: &str) -> Value {
    let finished = add_passkey(app, &user.access_token, key, name).await;
    assert_eq!(finished.status, 201, "register/finish: {}", finished.text);
    finished.body
}

/// A new signed-in user with one passkey (their first second factor).
pub async fn user_with_passkey(app: &TestApp) -> (TestUser, SoftKey, Value) {
    let user = app.signed_in_user().await;
    let mut key = SoftKey::new();
    let registered = register(app, &user, &mut key, "Laptop").await;
    (user, key, registered)
}

/// A passwordless sign-in: start, sign, finish.
pub async fn passwordless(app: &TestApp, key: &mut SoftKey) -> TestResponse {
    let started = login_start(app).await;
    assert_eq!(started.status, 200, "login/start: {}", started.text);
    let credential = key.get(&started.body["options"], ORIGIN).await;
    login_finish(app, &started.body["ceremonyId"], &credential).await
}

/// The second step with a passkey for a `twoFactorToken`: start, sign, finish.
pub async fn second_step(app: &TestApp, two_factor_token: &str, key: &mut SoftKey) -> TestResponse {
    let started = verify_start(app, two_factor_token).await;
    assert_eq!(started.status, 200, "verify/start: {}", started.text);
    let credential = key.get(&started.body["options"], ORIGIN).await;
    verify_finish(
        app,
        two_factor_token,
        &started.body["ceremonyId"],
        &credential,
    )
    .await
}

/// The decoded payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// Every event of the holder of `token`, newest first: `(type, details)`.
pub async fn events(app: &TestApp, token: &str) -> Vec<(String, Value)> {
    let page = app
        .get("/v1/auth/security-events?limit=100", Some(token))
        .await;
    assert_eq!(page.status, 200, "events: {}", page.text);
    page.body
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["details"].clone()))
        .collect()
}
