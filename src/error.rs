//! The one error type every layer returns. Each variant has a stable `code()` that clients
//! can match on; `http::problem` turns it into an RFC 9457 problem document and the
//! compatibility surface into its own envelope. Internal detail is logged, never sent.

use std::collections::BTreeMap;

/// Field name -> messages, for validation failures.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0} already in use")]
    AlreadyExists(&'static str),
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("missing or invalid access token")]
    Unauthenticated,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("invalid or expired two-factor token")]
    InvalidTwoFactorToken,
    #[error("invalid code")]
    InvalidCode,
    #[error("second factor locked")]
    SecondFactorLocked { retry_after_secs: i64 },
    /// Too many requests from one client address to the unauthenticated routes, or too
    /// many writes by one signed-in account.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("TOTP suspended")]
    TotpSuspended,
    #[error("reauthentication required")]
    ReauthenticationRequired,
    #[error("two-factor authentication already enabled")]
    TwoFactorAlreadyEnabled,
    #[error("two-factor authentication not enabled")]
    TwoFactorNotEnabled,
    #[error("no pending two-factor setup")]
    NoPendingSetup,
    #[error("no confirmed authenticator")]
    NoAuthenticator,
    #[error("forbidden")]
    Forbidden,
    /// A missing, unknown or revoked admin API key.
    #[error("invalid admin API key")]
    InvalidApiKey,
    /// The admin API key lacks the scope the route needs.
    #[error("insufficient scope")]
    InsufficientScope(&'static str),
    /// The account was disabled by an operator.
    #[error("account disabled")]
    AccountDisabled,
    #[error("invalid set-password token")]
    InvalidSetPasswordToken,
    /// The passkey ceremony is unknown, expired, already finished, or not this caller's.
    #[error("invalid passkey ceremony")]
    InvalidCeremony,
    /// The authenticator's answer was refused (wrong origin or RP ID, bad signature,
    /// unknown or disabled passkey, no user verification).
    #[error("passkey refused")]
    InvalidPasskey,
    #[error("no passkey")]
    NoPasskey,
    /// The authenticator model is not in `webauthn_allowed_aaguids`.
    #[error("authenticator not allowed")]
    AuthenticatorNotAllowed,
    /// A notification message is being sent right now, so it cannot be replayed.
    #[error("notification being sent")]
    NotificationBusy,
    #[error("database unavailable")]
    Unavailable,
    #[error("request timed out")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Wraps an unexpected failure; the detail is logged once where it is turned into a
    /// response and never sent to the client.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        AppError::Internal(err.to_string())
    }

    pub fn field(field: &str, message: &str) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.to_owned()]);
        AppError::Validation(errors)
    }

    /// The stable, machine-readable name of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::MalformedJson(_) => "malformed_json",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::AlreadyExists("email") => "email_taken",
            AppError::AlreadyExists("userName") => "user_name_taken",
            AppError::AlreadyExists(_) => "conflict",
            AppError::RegistrationClosed => "registration_closed",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Unauthenticated => "unauthorized",
            AppError::InvalidRefreshToken => "invalid_refresh_token",
            AppError::InvalidTwoFactorToken => "invalid_two_factor_token",
            AppError::InvalidCode => "invalid_code",
            AppError::SecondFactorLocked { .. } => "second_factor_locked",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::TotpSuspended => "totp_suspended",
            AppError::ReauthenticationRequired => "reauthentication_required",
            AppError::TwoFactorAlreadyEnabled => "two_factor_already_enabled",
            AppError::TwoFactorNotEnabled => "two_factor_not_enabled",
            AppError::NoPendingSetup => "no_pending_setup",
            AppError::NoAuthenticator => "no_authenticator",
            AppError::Forbidden => "forbidden",
            AppError::InvalidApiKey => "invalid_api_key",
            AppError::InsufficientScope(_) => "insufficient_scope",
            AppError::AccountDisabled => "account_disabled",
            AppError::InvalidSetPasswordToken => "invalid_set_password_token",
            AppError::InvalidCeremony => "invalid_ceremony",
            AppError::InvalidPasskey => "invalid_passkey",
            AppError::NoPasskey => "no_passkey",
            AppError::AuthenticatorNotAllowed => "authenticator_not_allowed",
            AppError::NotificationBusy => "notification_busy",
            AppError::Unavailable => "service_unavailable",
            AppError::Timeout => "request_timeout",
            AppError::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => {
                tracing::warn!(error = %err, "database unavailable");
                AppError::Unavailable
            }
            _ => AppError::Internal(format!("database: {err}")),
        }
    }
}
