//! Response bodies of the `/v1` API (the wire form of the service's types: camelCase,
//! RFC 3339 times, and their OpenAPI schema), and the request fields shared by several
//! routes.

use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::{BodyContext, Field, Nested, Optional, Text};
use crate::clock::rfc3339;
use crate::domain::validate;
use crate::error::AppError;
use crate::service::accounts::{Account, Identifier};
use crate::service::devices::{self, DeviceInput};
use crate::service::passkeys::PasskeyInfo;
use crate::service::sessions::IssuedTokens;
use crate::service::{events, two_factor};

/// An account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    #[schema(format = Email, example = "ann@example.com")]
    pub email: String,
    /// The user name; the email when none was chosen.
    #[schema(example = "ann")]
    pub user_name: String,
    #[schema(required = true, example = "+1 555 010 9999")]
    pub phone_number: Option<String>,
    pub two_factor_enabled: bool,
    #[schema(required = true, format = DateTime)]
    pub last_login_date: Option<String>,
    #[schema(required = true, example = "203.0.113.7")]
    pub last_login_ip: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Account> for User {
    fn from(u: &Account) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            user_name: u.user_name.clone(),
            phone_number: u.phone_number.clone(),
            two_factor_enabled: u.two_factor_enabled,
            last_login_date: u.last_login_at.map(rfc3339),
            last_login_ip: u.last_login_ip.clone(),
            created_at: rfc3339(u.created_at),
        }
    }
}

/// A signed-in session: a short-lived access token and a rotating refresh token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$", example = "Bearer")]
    pub token_type: &'static str,
    /// An EdDSA-signed JWT (`sub`, `iat`, `exp`, `jti`, `amr`, `auth_time`, `sid`).
    #[schema(example = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9...")]
    pub access_token: String,
    /// Seconds the access token is valid.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Single use: each refresh returns a new one and retires this one.
    #[schema(example = "m2Vb7cQx...")]
    pub refresh_token: String,
    #[schema(format = DateTime)]
    pub refresh_token_expiry: String,
    pub user: User,
}

impl Tokens {
    pub fn new(tokens: IssuedTokens, user: &Account) -> Self {
        Self {
            token_type: "Bearer",
            access_token: tokens.access_token,
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
            refresh_token_expiry: rfc3339(tokens.refresh_token_expires_at),
            user: user.into(),
        }
    }
}

/// `TwoFactorStatus`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub enabled: bool,
    /// `totp` while two-factor authentication is on with an authenticator app, else null
    /// (an account whose only second factor is a passkey has `methods` instead).
    #[schema(value_type = Option<String>, required = true, pattern = "^totp$", example = "totp")]
    pub method: Option<&'static str>,
    #[schema(required = true, format = DateTime)]
    pub enabled_at: Option<String>,
    /// An unconfirmed setup is waiting for `verify-setup`.
    pub setup_pending: bool,
    #[schema(minimum = 0, example = 10)]
    pub backup_codes_remaining: i64,
    /// How many trusted devices are live.
    #[schema(minimum = 0, example = 1)]
    pub trusted_devices: i64,
    /// The second factors a sign-in can use now: `totp`, `passkey` and `backup_code`
    /// (while codes remain); empty while two-factor authentication is off.
    #[schema(example = json!(["totp", "passkey", "backup_code"]))]
    pub methods: Vec<&'static str>,
    /// How many passkeys the account can sign in with.
    #[schema(minimum = 0, example = 1)]
    pub passkeys: i64,
}

impl From<two_factor::TwoFactorStatus> for Status {
    fn from(s: two_factor::TwoFactorStatus) -> Self {
        Self {
            enabled: s.enabled,
            method: (s.enabled && s.totp).then_some("totp"),
            methods: s.methods(),
            passkeys: s.passkeys,
            enabled_at: s.enabled_at.map(rfc3339),
            setup_pending: s.setup_pending,
            backup_codes_remaining: s.backup_codes_remaining,
            trusted_devices: s.trusted_devices,
        }
    }
}

/// A new pending authenticator secret, to scan or type into an authenticator app.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    /// The shared secret, base32 without padding.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    #[schema(
        example = "otpauth://totp/Tessera:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Tessera&algorithm=SHA1&digits=6&period=30"
    )]
    pub otpauth_url: String,
    /// A PNG of `otpauthUrl` as a data URI.
    #[schema(example = "data:image/png;base64,iVBORw0KGgo...")]
    pub qr_code: String,
    #[schema(example = "Tessera")]
    pub issuer: String,
    #[schema(example = "ann@example.com")]
    pub account_name: String,
    #[schema(value_type = String, example = "SHA1")]
    pub algorithm: &'static str,
    #[schema(example = 6)]
    pub digits: u32,
    /// Seconds per code.
    #[schema(example = 30)]
    pub period: i64,
    /// When the unconfirmed setup lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("account_name", &self.account_name)
            .finish_non_exhaustive()
    }
}

impl From<two_factor::Setup> for Setup {
    fn from(s: two_factor::Setup) -> Self {
        Self {
            secret: s.secret,
            otpauth_url: s.otpauth_url,
            qr_code: s.qr_code,
            issuer: s.issuer,
            account_name: s.account_name,
            algorithm: s.algorithm,
            digits: s.digits,
            period: s.period,
            expires_at: rfc3339(s.expires_at),
        }
    }
}

/// Counts of the account's backup codes (never the codes themselves).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCodesSummary {
    #[schema(minimum = 0, example = 10)]
    pub total: i64,
    #[schema(minimum = 0, example = 9)]
    pub remaining: i64,
    #[schema(minimum = 0, example = 1)]
    pub used: i64,
    #[schema(required = true, format = DateTime)]
    pub generated_at: Option<String>,
}

impl From<two_factor::BackupCodesSummary> for BackupCodesSummary {
    fn from(s: two_factor::BackupCodesSummary) -> Self {
        Self {
            total: s.total,
            remaining: s.remaining,
            used: s.used,
            generated_at: s.generated_at.map(rfc3339),
        }
    }
}

/// A device whose logins skip the second factor until it expires or is removed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedDevice {
    pub id: Uuid,
    #[schema(example = "Ann laptop")]
    pub device_name: String,
    #[schema(example = "desktop")]
    pub device_type: String,
    /// As the client described it: free text, not checked.
    #[schema(required = true)]
    pub browser_info: Option<String>,
    /// The address the request that trusted the device came from, as the server saw it
    /// (the client's, behind a configured trusted proxy). Never what the client sent as
    /// `ipAddress`, which anyone can write.
    #[schema(required = true, example = "203.0.113.7")]
    pub ip_address: Option<String>,
    /// As the client described it: free text, not checked.
    #[schema(required = true)]
    pub location: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl From<devices::TrustedDevice> for TrustedDevice {
    fn from(d: devices::TrustedDevice) -> Self {
        Self {
            id: d.id,
            device_name: d.device_name,
            device_type: d.device_type,
            browser_info: d.browser_info,
            ip_address: d.ip_address,
            location: d.location,
            created_at: rfc3339(d.created_at),
            last_used_at: d.last_used_at.map(rfc3339),
            expires_at: rfc3339(d.expires_at),
        }
    }
}

/// Something that happened to the account's security.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    pub id: Uuid,
    /// A stable snake_case name: `login_succeeded`, `second_factor_failed`, `two_factor_enabled`, ...
    #[serde(rename = "type")]
    #[schema(example = "login_succeeded")]
    pub event_type: String,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(required = true, example = "203.0.113.7")]
    pub ip_address: Option<String>,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// A small object; never a secret, code or token. On the capped types
    /// (`login_failed`, `second_factor_failed`, `password_confirmation_failed`,
    /// `devices_removed`: at most 20 rows of each an hour), the last row of an hour that
    /// went past the cap has `suppressed`: how many more of the same type happened in that
    /// hour, counted here instead of listed.
    #[schema(value_type = Object, example = json!({"reason": "wrong_password", "suppressed": 480}))]
    pub details: serde_json::Value,
}

impl From<events::SecurityEvent> for SecurityEvent {
    fn from(e: events::SecurityEvent) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            occurred_at: rfc3339(e.occurred_at),
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            details: e.details,
        }
    }
}

/// `Passkey`: one of the account's passkeys.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Passkey {
    pub id: Uuid,
    #[schema(example = "Laptop")]
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub last_used_at: Option<String>,
    /// The authenticator may sync this passkey to the owner's other devices.
    pub backup_eligible: bool,
    /// The passkey is backed up (synced) now.
    pub backed_up: bool,
    /// The authenticator model (AAGUID), where the authenticator tells it.
    #[schema(required = true)]
    pub aaguid: Option<Uuid>,
    /// Refused for good since its signature counter went backwards (a possible clone).
    pub disabled: bool,
}

impl From<PasskeyInfo> for Passkey {
    fn from(p: PasskeyInfo) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
            aaguid: p.aaguid,
            disabled: p.disabled,
        }
    }
}

// Length limits on the free-text fields: generous for real input, small enough that
// nothing is ever hashed, stored or logged at attacker-chosen size.
const MAX_TOKEN: usize = 512;
const MAX_DEVICE_FIELD: usize = 200;
const MAX_CLAIMED_IP: usize = 64;
const MAX_LOGIN_NAME: usize = validate::EMAIL_MAX + 10;

/// A token sent back to us (refresh, device, temporary): opaque, at most 512 characters.
pub type Token = Text<MAX_TOKEN>;

/// An email or user name given to sign in with: looked up, not checked as new input.
pub type LoginName = Text<MAX_LOGIN_NAME>;

/// Rule of the login bodies: `email` or `userName` is needed (reported on `email`).
pub fn identifier_rule(
    email: &Optional<LoginName>,
    user_name: &Optional<LoginName>,
) -> garde::Result {
    if email.get().is_none() && user_name.get().is_none() {
        return Err(garde::Error::new("email or userName is required"));
    }
    Ok(())
}

/// The account a login names: by `email` when given, else by `userName`.
pub fn identifier(
    email: Optional<LoginName>,
    user_name: Optional<LoginName>,
) -> Result<Identifier, AppError> {
    match (email.into_option(), user_name.into_option()) {
        (Some(email), _) => Ok(Identifier::Email(validate::email_key(&email.0))),
        (None, Some(name)) => Ok(Identifier::UserName(name.trimmed())),
        (None, None) => Err(AppError::internal("a request field was read unchecked")),
    }
}

// `ipAddress` is read (so its length and type are checked like any field, and `/v1`
// still refuses unknown ones) and dropped: whatever a client writes there (the SalesOS
// document's own example is `"string"`) neither refuses the request nor becomes the
// device's recorded address.
/// A device to trust: descriptions kept as sent, and the fingerprint a later login must
/// present with the device token.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
pub struct TrustedDeviceInput {
    #[garde(dive)]
    #[schema(value_type = String, max_length = 200, example = "Ann laptop")]
    pub device_name: Field<Text<MAX_DEVICE_FIELD>>,
    #[garde(dive)]
    #[schema(value_type = String, max_length = 200, example = "desktop")]
    pub device_type: Field<Text<MAX_DEVICE_FIELD>>,
    /// Free text describing the browser, stored as sent.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 200, example = "Firefox 128 on Linux")]
    pub browser_info: Optional<Text<MAX_DEVICE_FIELD>>,
    /// Accepted for compatibility and ignored: the device is recorded with the address
    /// the request comes from (see `TrustedDevice.ipAddress`). Any text, not checked.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 64, example = "203.0.113.7")]
    pub ip_address: Optional<Text<MAX_CLAIMED_IP>>,
    /// Free text describing where the device is, stored as sent.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 200, example = "Berlin")]
    pub location: Optional<Text<MAX_DEVICE_FIELD>>,
    /// Identifies the device; a later login must present the same one with the device token.
    #[garde(dive)]
    #[schema(value_type = String, max_length = 512, example = "fp-1f2e3d")]
    pub device_fingerprint: Field<Token>,
}

/// The optional `trustDevice` of a login's second step, as the service records it.
pub fn trusted_device(
    field: Optional<Nested<TrustedDeviceInput>>,
) -> Result<Option<DeviceInput>, AppError> {
    field
        .into_option()
        .map(|nested| nested.into_inner().into_input())
        .transpose()
}

impl TrustedDeviceInput {
    /// The device as the service records it (names trimmed, the claimed address dropped).
    pub fn into_input(self) -> Result<DeviceInput, AppError> {
        Ok(DeviceInput {
            device_name: self.device_name.into_valid()?.trimmed(),
            device_type: self.device_type.into_valid()?.trimmed(),
            device_fingerprint: self.device_fingerprint.into_valid()?.0,
            browser_info: self.browser_info.into_option().map(|t| t.0),
            location: self.location.into_option().map(|t| t.0),
        })
    }
}
