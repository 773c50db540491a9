//! Passkeys over HTTP: `/v1/auth/passkeys/*`. Every ceremony is driven by a software
//! authenticator and WebAuthn client that are not Tessera's (`passkey`, from 1Password),
//! so the server checks answers that an independent implementation made.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::SecretKeyT;
use passkey::crypto::rust_crypto::{RustCryptoBackend, RustCryptoSecretKey};
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_cbor_2 as cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
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

/// A person who always approves, and who verifies (PIN or biometric) while the
/// authenticator can.
struct Approves {
    verifies: Arc<AtomicBool>,
}

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
        Some(self.verifies.load(Ordering::Relaxed))
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

type SoftClient =
    Client<Option<Passkey>, Approves, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

/// The backup-eligible and backed-up flags of authenticator data (WebAuthn §6.1).
const BACKUP_FLAGS: u8 = 0x08 | 0x10;
/// Where the flags are in authenticator data: after the 32 bytes of the RP ID hash.
const FLAGS_AT: usize = 32;

/// A software authenticator holding one discoverable passkey, behind a WebAuthn client.
pub struct SoftKey {
    client: SoftClient,
    /// Shared with the authenticator's [`Approves`].
    verifies: Arc<AtomicBool>,
    /// The passkey is bound to this authenticator: its answers clear the backup flags
    /// (which the `passkey` authenticator always sets) and assertions are signed again.
    device_bound: bool,
}

impl SoftKey {
    /// An authenticator that keeps no signature counter (as synced passkeys do).
    pub fn new() -> Self {
        Self::with_model([0; 16], false, false)
    }

    /// An authenticator that counts its signatures, and says which model it is.
    pub fn counting(aaguid: [u8; 16]) -> Self {
        Self::with_model(aaguid, true, false)
    }

    /// A security key: its passkey never leaves it (not backup eligible, never backed up),
    /// and it counts its signatures.
    pub fn device_bound() -> Self {
        Self::with_model([0; 16], true, true)
    }

    fn with_model(aaguid: [u8; 16], counter: bool, device_bound: bool) -> Self {
        let verifies = Arc::new(AtomicBool::new(true));
        let person = Approves {
            verifies: Arc::clone(&verifies),
        };
        let mut authenticator =
            Authenticator::new(Aaguid::from(aaguid), None, person, RustCryptoBackend);
        authenticator.set_make_credentials_with_signature_counter(counter);
        Self {
            client: Client::new(authenticator),
            verifies,
            device_bound,
        }
    }

    /// From now on the authenticator verifies no one (it has no PIN or biometric) and its
    /// client does not ask it to, whatever the relying party requires: its answers carry
    /// user presence only. A conforming browser would give up instead; a server must not
    /// count on that.
    pub fn stop_verifying(&mut self) {
        self.verifies.store(false, Ordering::Relaxed);
    }

    fn verifies(&self) -> bool {
        self.verifies.load(Ordering::Relaxed)
    }

    /// Answers a registration's `options` (as the server sent them) from `origin`.
    pub async fn create(&mut self, options: &Value, origin: &str) -> Value {
        let mut options = options.clone();
        if !self.verifies() {
            options["publicKey"]["authenticatorSelection"]["userVerification"] =
                json!("discouraged");
        }
        let request: CredentialCreationOptions =
            serde_json::from_value(options).expect("creation options parse");
        let created = self
            .client
            .register(Url::parse(origin).unwrap(), request, DefaultClientData)
            .await
            .expect("the authenticator makes a credential");
        let mut created = serde_json::to_value(created).unwrap();
        if self.device_bound {
            // Attestation "none": nothing signs the attestation object.
            let response = &mut created["response"];
            let object = unbase64(&response["attestationObject"]);
            response["attestationObject"] = base64(&without_backup_flags_in_object(&object));
            let mut auth_data = unbase64(&response["authenticatorData"]);
            auth_data[FLAGS_AT] &= !BACKUP_FLAGS;
            response["authenticatorData"] = base64(&auth_data);
        }
        created
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
        if !self.verifies() {
            options["publicKey"]["userVerification"] = json!("discouraged");
        }
        let request: CredentialRequestOptions =
            serde_json::from_value(options).expect("request options parse");
        let signed = self
            .client
            .authenticate(Url::parse(origin).unwrap(), request, DefaultClientData)
            .await
            .ok()?;
        let mut signed = serde_json::to_value(signed).unwrap();
        if self.device_bound {
            self.sign_without_backup_flags(&mut signed["response"]);
        }
        Some(signed)
    }

    /// Clears the backup flags of an assertion's authenticator data and signs it again
    /// (authenticator data, then the SHA-256 of the client data) with the passkey's key.
    fn sign_without_backup_flags(&self, response: &mut Value) {
        let mut auth_data = unbase64(&response["authenticatorData"]);
        auth_data[FLAGS_AT] &= !BACKUP_FLAGS;
        let client_data = unbase64(&response["clientDataJSON"]);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let passkey = self
            .snapshot()
            .expect("the authenticator holds its passkey");
        let mut key = RustCryptoSecretKey::from_cose_key(&passkey.key).expect("a signing key");
        response["signature"] = base64(&key.sign(&signed));
        response["authenticatorData"] = base64(&auth_data);
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

/// An attestation object (CBOR: `fmt`, `attStmt`, `authData`) with the backup flags of its
/// authenticator data cleared.
fn without_backup_flags_in_object(object: &[u8]) -> Vec<u8> {
    let cbor::Value::Map(mut map) = cbor::from_slice(object).expect("a CBOR attestation object")
    else {
        panic!("an attestation object is a map");
    };
    match map.get_mut(&cbor::Value::Text("authData".into())) {
        Some(cbor::Value::Bytes(auth_data)) => auth_data[FLAGS_AT] &= !BACKUP_FLAGS,
        other => panic!("authData: {other:?}"),
    }
    cbor::to_vec(&cbor::Value::Map(map)).unwrap()
}

fn unbase64(value: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.as_str().expect("a base64url string"))
        .expect("base64url")
}

fn base64(bytes: &[u8]) -> Value {
    use base64::Engine;
    Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
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
    user_with_key(app, SoftKey::new(), "Laptop").await
}

/// A new signed-in user whose first second factor is `key`'s passkey, named `name`.
pub async fn user_with_key(
    app: &TestApp,
    mut key: SoftKey,
    name: &str,
) -> (TestUser, SoftKey, Value) {
    let user = app.signed_in_user().await;
    let registered = register(app, &user, &mut key, name).await;
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
