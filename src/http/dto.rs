//! Response bodies of the `/v1` API (the wire form of the service's types: camelCase,
//! RFC 3339 times, and their OpenAPI schema), and the parsing of request fields shared by
//! several routes.

use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::Fields;
use crate::clock::rfc3339;
use crate::domain::second_factor::SecondFactorCode;
use crate::domain::validate;
use crate::service::accounts::{Account, Identifier};
use crate::service::devices::{self, DeviceInput};
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

// Length limits on every string field: generous for real input, small enough that
// nothing is ever hashed, stored or logged at attacker-chosen size.
pub const MAX_PASSWORD: usize = validate::PASSWORD_MAX_BYTES;
pub const MAX_TOKEN: usize = 512;
pub const MAX_CODE: usize = 32;
pub const MAX_DEVICE_FIELD: usize = 200;
pub const MAX_FINGERPRINT: usize = 512;

/// Reads `email` or `userName` (exactly one is needed) for the login routes.
pub fn identifier(f: &mut Fields) -> Option<Identifier> {
    let email = f.optional_string("email", validate::EMAIL_MAX + 10);
    let user_name = f.optional_string("userName", validate::USER_NAME_MAX + 10);
    match (email, user_name) {
        (Some(email), _) => Some(Identifier::Email(validate::email_key(&email))),
        (None, Some(name)) => Some(Identifier::UserName(name.trim().to_owned())),
        (None, None) => {
            f.error("email", "email or userName is required");
            None
        }
    }
}

/// A password field: present, a string, at most 1024 bytes. Its content is never echoed.
pub fn password(fields: &mut Fields, name: &str) -> Option<SecretString> {
    // Characters are at most 4 bytes: refuse absurd input early, then apply the byte limit.
    let value = fields.required_string(name, MAX_PASSWORD * 4)?;
    if value.len() > MAX_PASSWORD {
        fields.error(name, "must be at most 1024 bytes");
        return None;
    }
    Some(SecretString::from(value))
}

/// An optional password field (a re-authentication), with the same limits.
pub fn optional_password(fields: &mut Fields, name: &str) -> Option<SecretString> {
    let value = fields.optional_string(name, MAX_PASSWORD * 4)?;
    if value.len() > MAX_PASSWORD {
        fields.error(name, "must be at most 1024 bytes");
        return None;
    }
    Some(SecretString::from(value))
}

/// A required `code`: a 6-digit TOTP code or a backup code.
pub fn code(fields: &mut Fields, name: &str) -> Option<SecondFactorCode> {
    let raw = fields.required_string(name, MAX_CODE)?;
    parse_code(fields, name, &raw)
}

pub fn optional_code(fields: &mut Fields, name: &str) -> Option<SecondFactorCode> {
    let raw = fields.optional_string(name, MAX_CODE)?;
    parse_code(fields, name, &raw)
}

fn parse_code(fields: &mut Fields, name: &str, raw: &str) -> Option<SecondFactorCode> {
    let parsed = SecondFactorCode::parse(raw);
    if parsed.is_none() {
        fields.error(name, "must be 6 digits or a backup code");
    }
    parsed
}

/// A 6-digit TOTP code only (enrolment confirms the authenticator, not a backup code).
pub fn totp_code(fields: &mut Fields, name: &str) -> Option<String> {
    match code(fields, name)? {
        SecondFactorCode::Totp(digits) => Some(digits),
        SecondFactorCode::Backup(_) => {
            fields.error(name, "must be 6 digits");
            None
        }
    }
}

/// `TrustedDeviceInput`: what [`device_input`] reads.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct TrustedDeviceInput {
    #[schema(max_length = 200, example = "Ann laptop")]
    pub device_name: String,
    #[schema(max_length = 200, example = "desktop")]
    pub device_type: String,
    /// Free text describing the browser, stored as sent.
    #[schema(max_length = 200, example = "Firefox 128 on Linux")]
    pub browser_info: Option<String>,
    /// Accepted for compatibility and ignored: the device is recorded with the address
    /// the request comes from (see `TrustedDevice.ipAddress`). Any text, not checked.
    #[schema(max_length = 64, example = "203.0.113.7")]
    pub ip_address: Option<String>,
    /// Free text describing where the device is, stored as sent.
    #[schema(max_length = 200, example = "Berlin")]
    pub location: Option<String>,
    /// Identifies the device; a later login must present the same one with the device token.
    #[schema(max_length = 512, example = "fp-1f2e3d")]
    pub device_fingerprint: String,
}

/// Longest `ipAddress` read (and dropped) from a `TrustedDeviceInput`.
pub const MAX_CLAIMED_IP: usize = 64;

/// `TrustedDeviceInput`. `browserInfo` and `location` are descriptions kept as sent;
/// `ipAddress` is read (so its length and type are checked like any field, and `/v1`
/// still refuses unknown ones) and dropped: whatever a client writes there (the SalesOS
/// document's own example is `"string"`) neither refuses the request nor becomes the
/// device's recorded address.
pub fn device_input(fields: &mut Fields) -> Option<DeviceInput> {
    let device_name = fields.required_string("deviceName", MAX_DEVICE_FIELD);
    let device_type = fields.required_string("deviceType", MAX_DEVICE_FIELD);
    let device_fingerprint = fields.required_string("deviceFingerprint", MAX_FINGERPRINT);
    let browser_info = fields.optional_string("browserInfo", MAX_DEVICE_FIELD);
    let _claimed_ip = fields.optional_string("ipAddress", MAX_CLAIMED_IP);
    let location = fields.optional_string("location", MAX_DEVICE_FIELD);
    Some(DeviceInput {
        device_name: device_name?.trim().to_owned(),
        device_type: device_type?.trim().to_owned(),
        device_fingerprint: device_fingerprint?,
        browser_info,
        location,
    })
}
