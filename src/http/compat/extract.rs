//! Extractors of the Sapfiai routes, rejecting in the envelope of the operation they
//! serve rather than with a problem document.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::error::CompatError;
use crate::error::{AppError, FieldErrors};
use crate::http::body::{BodyContext, RequestBody, Unchecked};
use crate::http::extract::{bearer_token, json_object};
use crate::http::problem::status_of;
use crate::http::ratelimit::limit_session_write;
use crate::service::{Principal, sessions};
use crate::state::AppState;

/// A Sapfiai operation: how it answers a failure.
pub trait Operation {
    /// A failure of the core (or of a field).
    fn fail(error: AppError) -> CompatError;

    /// A body that cannot be read: too large, not JSON, not an object.
    fn reject_body(error: AppError) -> CompatError {
        Self::fail(error)
    }

    /// Fields that are missing or wrong.
    fn invalid(fields: FieldErrors) -> CompatError {
        Self::fail(AppError::Validation(fields))
    }
}

/// `POST /authentication/login`.
pub struct Login;

impl Operation for Login {
    fn fail(error: AppError) -> CompatError {
        CompatError::Failed {
            message: "Login failed",
            error,
        }
    }
}

/// `POST /authentication/verify-2fa`.
pub struct Verify2fa;

impl Operation for Verify2fa {
    fn fail(error: AppError) -> CompatError {
        CompatError::Failed {
            message: "2FA verification failed",
            error,
        }
    }
}

/// `POST /authentication/refresh-token`.
pub struct RefreshToken;

impl Operation for RefreshToken {
    fn fail(error: AppError) -> CompatError {
        CompatError::Failed {
            message: "Token refresh failed",
            error,
        }
    }
}

/// `POST /authentication/enable-2fa`: Sapfiai's `Result`, with its own error codes.
pub struct Enable2fa;

impl Operation for Enable2fa {
    fn fail(error: AppError) -> CompatError {
        let (code, description) = match &error {
            AppError::Unauthenticated => return CompatError::Unauthorized,
            AppError::Forbidden => (
                "User.EmailMismatch",
                "The email does not belong to the signed-in user.",
            ),
            AppError::InvalidCredentials => {
                ("User.InvalidPassword", "The password is not correct.")
            }
            AppError::NoAuthenticator => (
                "TwoFactor.NoAuthenticator",
                "No authenticator has been confirmed for this account; set one up first.",
            ),
            AppError::ReauthenticationRequired => (
                "TwoFactor.ReauthenticationRequired",
                "Turning two-factor authentication off needs a second factor from the last 10 minutes: send a `code`.",
            ),
            AppError::InvalidCode => (
                "TwoFactor.InvalidCode",
                "The code is not valid for this account.",
            ),
            AppError::SecondFactorLocked { .. } => (
                "TwoFactor.Locked",
                "Too many failed codes; try again later.",
            ),
            AppError::TotpSuspended => (
                "TwoFactor.Suspended",
                "Authenticator codes are suspended; use a backup code.",
            ),
            AppError::Unavailable => (
                "Service.Unavailable",
                "The database is unreachable; try again shortly.",
            ),
            other => {
                if let AppError::Internal(detail) = other {
                    tracing::error!(error = %detail, "internal error");
                }
                ("Server.Error", "An unexpected error occurred.")
            }
        };
        let status = match &error {
            AppError::InvalidCredentials | AppError::InvalidCode | AppError::NoAuthenticator => {
                StatusCode::BAD_REQUEST
            }
            other => status_of(other),
        };
        let retry_after_secs = match error {
            AppError::SecondFactorLocked { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        CompatError::Result {
            status,
            code,
            description,
            errors: vec![],
            retry_after_secs,
        }
    }

    fn invalid(fields: FieldErrors) -> CompatError {
        CompatError::invalid_fields(
            fields
                .iter()
                .flat_map(|(k, v)| v.iter().map(move |m| format!("{k} {m}")))
                .collect(),
        )
    }

    fn reject_body(error: AppError) -> CompatError {
        CompatError::Result {
            status: status_of(&error),
            code: "Request.Invalid",
            description: "The request body must be a JSON object.",
            errors: vec![error.to_string()],
            retry_after_secs: None,
        }
    }
}

/// A required JSON body read into `T` and checked, unknown fields dropped; a body that
/// cannot be read is answered in `O`'s envelope.
pub struct CompatBody<O, T>(pub T, pub PhantomData<fn() -> O>);

impl<O: Operation, T: RequestBody> FromRequest<AppState> for CompatBody<O, T> {
    type Rejection = CompatError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let map = json_object(req, false).await.map_err(O::reject_body)?;
        let ctx = BodyContext {
            strict: false,
            issuer: state.config.issuer.clone(),
            account_words: Vec::new(),
        };
        let body = Unchecked::<T>::read(map)
            .and_then(|body| body.check(&ctx))
            .map_err(|error| match error {
                AppError::Validation(fields) => O::invalid(fields),
                other => O::fail(other),
            })?;
        Ok(CompatBody(body, PhantomData))
    }
}

/// The caller of `enable-2fa`: a valid access token (else the contract's bearer problem),
/// within the per-session write limit.
pub struct CompatAuth(pub Principal);

impl FromRequestParts<AppState> for CompatAuth {
    type Rejection = CompatError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(CompatError::Unauthorized)?;
        let principal = match sessions::authenticate(state, token).await {
            Ok(principal) => principal,
            Err(AppError::Unavailable) => return Err(Enable2fa::fail(AppError::Unavailable)),
            Err(_) => return Err(CompatError::Unauthorized),
        };
        limit_session_write(&parts.method, &parts.extensions, &principal)
            .map_err(CompatError::Problem)?;
        Ok(CompatAuth(principal))
    }
}
