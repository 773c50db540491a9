//! `/v1/auth/passkeys`: registering, listing, renaming and removing passkeys, a passkey as
//! the second step of a login, and passwordless sign-in (OpenAPI tag `passkeys`).
//!
//! Each ceremony has a start, which answers the options for the browser's
//! `navigator.credentials.create()` or `.get()` (WebAuthn's JSON form, under `options`) and
//! a `ceremonyId`, and a finish, which takes the `ceremonyId` and the browser's
//! `PublicKeyCredential` (its JSON form, `credential`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::two_factor::VerifiedTokens;
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::http::body::{
    BodyContext, Code, Decoded, Field, Nested, Optional, Password, Standard, Text,
};
use crate::http::dto::{self, Passkey, Tokens, TrustedDeviceInput};
use crate::http::extract::{Auth, Body, Client, Enroller, OptionalBody, path_id, two_factor_token};
use crate::http::problem::Problem;
use crate::http::ratelimit::RateLimit;
use crate::http::responses::{
    BodyErrors, NoSuchPasskey, RateLimited, SecondStepRefused, SensitiveChangeErrors,
    SessionRateLimited, Unauthorized, UnauthorizedOrWrongCode, Unavailable,
};
use crate::service::passkeys::{self, Assertion, MAX_NAME, Started};
use crate::service::two_factor::{self, SecondStep};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(rename, remove))
        .routes(routes!(register_start))
        .routes(routes!(register_finish))
        .routes(routes!(verify_start))
        .routes(routes!(verify_finish))
        .routes(routes!(login_start))
        .routes(routes!(login_finish))
}

/// A started ceremony.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CeremonyStarted {
    /// Send it back with the browser's answer.
    ceremony_id: Uuid,
    /// When the ceremony lapses (5 minutes).
    #[schema(format = DateTime)]
    expires_at: String,
    /// For `navigator.credentials.create()` (`{publicKey: PublicKeyCredentialCreationOptions}`)
    /// or `.get()` (`{publicKey: PublicKeyCredentialRequestOptions, mediation?}`), binary
    /// members as base64url.
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

impl<O: Serialize> TryFrom<Started<O>> for CeremonyStarted {
    type Error = AppError;

    fn try_from(started: Started<O>) -> Result<Self, AppError> {
        Ok(Self {
            ceremony_id: started.ceremony_id,
            expires_at: rfc3339(started.expires_at),
            options: serde_json::to_value(&started.options).map_err(AppError::internal)?,
        })
    }
}

fn started<O: Serialize>(started: Started<O>) -> Result<Response, AppError> {
    Ok(Json(CeremonyStarted::try_from(started)?).into_response())
}

/// A passkey name: 1 to 100 characters (trimmed).
type PasskeyName = Text<MAX_NAME>;

impl Standard for RegisterPublicKeyCredential {
    const WHAT: &'static str = "a WebAuthn registration credential (PublicKeyCredential JSON)";
}

impl Standard for PublicKeyCredential {
    const WHAT: &'static str = "a WebAuthn assertion credential (PublicKeyCredential JSON)";
}

fn assertion(
    ceremony_id: Field<Uuid>,
    credential: Field<Decoded<PublicKeyCredential>>,
) -> Result<Assertion, AppError> {
    Ok(Assertion {
        ceremony_id: ceremony_id.into_valid()?,
        credential: credential.into_valid()?.0,
    })
}

/// `RegistrationCredential`: the browser's `PublicKeyCredential` from
/// `navigator.credentials.create()`, in its JSON form (`credential.toJSON()`), binary
/// members as base64url.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "lDDQJj5z624Fn05pnv_1wA",
    "rawId": "lDDQJj5z624Fn05pnv_1wA",
    "type": "public-key",
    "response": {"attestationObject": "o2NmbXRkbm9uZQ", "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0"},
    "clientExtensionResults": {}
}))]
#[allow(dead_code)]
struct RegistrationCredential {
    id: String,
    raw_id: String,
    /// `public-key`.
    r#type: String,
    /// `attestationObject`, `clientDataJSON` and optionally `transports`.
    #[schema(value_type = Object)]
    response: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    client_extension_results: Option<serde_json::Value>,
}

/// `AssertionCredential`: the browser's `PublicKeyCredential` from
/// `navigator.credentials.get()`, in its JSON form (`credential.toJSON()`), binary members
/// as base64url.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "lDDQJj5z624Fn05pnv_1wA",
    "rawId": "lDDQJj5z624Fn05pnv_1wA",
    "type": "public-key",
    "response": {"authenticatorData": "qfIiJ380", "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0", "signature": "MEUCIQ", "userHandle": "Y2Fyb2w"},
    "clientExtensionResults": {}
}))]
#[allow(dead_code)]
struct AssertionCredential {
    id: String,
    raw_id: String,
    /// `public-key`.
    r#type: String,
    /// `authenticatorData`, `clientDataJSON`, `signature` and (for a discoverable passkey)
    /// `userHandle`.
    #[schema(value_type = Object)]
    response: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    client_extension_results: Option<serde_json::Value>,
}

/// The account's passkeys, oldest first.
#[utoipa::path(
    get,
    path = "/v1/auth/passkeys",
    operation_id = "list_passkeys",
    tag = "passkeys",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "`[Passkey]`.", body = Vec<Passkey>), Unauthorized, Unavailable)
)]
async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<Passkey>>, AppError> {
    let passkeys = passkeys::list(&state, principal.user_id).await?;
    Ok(Json(passkeys.into_iter().map(Into::into).collect()))
}

/// Body of `POST /v1/auth/passkeys/register/start`; may be left out.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RegisterStartRequest {
    /// The account's password, when two-factor authentication is off and the sign-in is
    /// older than `fresh_second_factor_secs`.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 1024, format = Password)]
    password: Optional<Password>,
    /// A TOTP or backup code, when two-factor authentication is on and the sign-in's second
    /// factor is not fresh.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 32, example = "123456")]
    code: Optional<Code>,
}

/// Starts registering a passkey. With two-factor authentication on this is a sensitive
/// change (a fresh second factor, or `code`); otherwise it needs a recent sign-in or the
/// `password`, as TOTP enrolment does. The account's passkeys are excluded.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/register/start",
    operation_id = "passkey_register_start",
    tag = "passkeys",
    security(("bearerAuth" = []), ("enrollmentToken" = [])),
    request_body(content = Option<RegisterStartRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 200, description = "The creation options and the `ceremonyId`.", body = CeremonyStarted),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), wrong `password` (`invalid_credentials`) or wrong `code` (`invalid_code`).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not recent or fresh enough (`reauthentication_required`).", body = Problem, content_type = "application/problem+json"),
        SessionRateLimited,
        Unavailable,
    )
)]
async fn register_start(
    State(state): State<AppState>,
    enroller: Enroller,
    Client(ctx): Client,
    Body(body): OptionalBody<RegisterStartRequest>,
) -> Result<Response, AppError> {
    let password = body.password.into_option().map(Password::into_secret);
    let code = body.code.into_option().map(Code::into_inner);
    started(match enroller {
        Enroller::Session(principal) => {
            passkeys::start_registration(&state, principal, password, code, ctx).await?
        }
        Enroller::EnrolmentToken(token) => {
            passkeys::start_registration_by_enrolment(&state, token).await?
        }
    })
}

/// Body of `POST /v1/auth/passkeys/register/finish`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RegisterFinishRequest {
    #[garde(dive)]
    #[schema(value_type = Uuid, max_length = 64, example = "6f1c2a3e-9b0d-4c5e-8f7a-1b2c3d4e5f60")]
    ceremony_id: Field<Uuid>,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, in its JSON form.
    #[garde(dive)]
    #[schema(value_type = RegistrationCredential)]
    credential: Field<Decoded<RegisterPublicKeyCredential>>,
    /// What the owner calls it; default `Passkey`.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 100, example = "Laptop")]
    name: Optional<PasskeyName>,
}

/// A registered passkey; `backupCodes` (shown this once) when it was the account's first
/// second factor and turned two-factor authentication on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PasskeyRegistered {
    passkey: Passkey,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_codes: Option<Vec<String>>,
    /// With an `enrollmentToken` as bearer: the session of the login it completes.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    tokens: Option<Tokens>,
}

/// Finishes registering a passkey, in the session that started it. With the
/// `enrollmentToken` of a login that answered `requiresEnrollment: true` as bearer (for
/// start and finish), it also completes that sign-in: the answer carries the tokens.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/register/finish",
    operation_id = "passkey_register_finish",
    tag = "passkeys",
    security(("bearerAuth" = []), ("enrollmentToken" = [])),
    request_body = RegisterFinishRequest,
    responses(
        (status = 201, description = "Registered.", body = PasskeyRegistered),
        BodyErrors,
        (status = 401, description = "Missing or invalid access token (`unauthorized`), or the authenticator's answer was refused (`invalid_passkey`: wrong origin or RP ID, no user verification, bad attestation).", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The authenticator model is not allowed (`authenticator_not_allowed`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Unknown, expired, finished or another session's ceremony (`invalid_ceremony`), or the passkey is already registered (`conflict`).", body = Problem, content_type = "application/problem+json"),
        SessionRateLimited,
        Unavailable,
    )
)]
async fn register_finish(
    State(state): State<AppState>,
    enroller: Enroller,
    Client(ctx): Client,
    Body(body): Body<RegisterFinishRequest>,
) -> Result<Response, AppError> {
    let ceremony_id = body.ceremony_id.into_valid()?;
    let credential = body.credential.into_valid()?.0;
    let name = body.name.into_option().map(PasskeyName::trimmed);
    let body = match enroller {
        Enroller::Session(principal) => {
            let registered = passkeys::finish_registration(
                &state,
                principal,
                ceremony_id,
                credential,
                name,
                ctx,
            )
            .await?;
            PasskeyRegistered {
                passkey: registered.passkey.into(),
                backup_codes: registered.backup_codes,
                tokens: None,
            }
        }
        Enroller::EnrolmentToken(token) => {
            let enrolled = passkeys::finish_registration_by_enrolment(
                &state,
                token,
                ceremony_id,
                credential,
                name,
                ctx,
            )
            .await?;
            PasskeyRegistered {
                passkey: enrolled.registered.passkey.into(),
                backup_codes: enrolled.registered.backup_codes,
                tokens: Some(Tokens::new(enrolled.tokens, &enrolled.user)),
            }
        }
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Body of `PATCH /v1/auth/passkeys/{passkeyId}`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RenameRequest {
    #[garde(dive)]
    #[schema(value_type = String, max_length = 100, example = "Phone")]
    name: Field<PasskeyName>,
}

/// Renames a passkey.
#[utoipa::path(
    patch,
    path = "/v1/auth/passkeys/{passkeyId}",
    operation_id = "rename_passkey",
    tag = "passkeys",
    security(("bearerAuth" = [])),
    params(("passkeyId" = Uuid, Path, description = "The passkey's `id`.")),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "Renamed.", body = Passkey),
        BodyErrors,
        Unauthorized,
        NoSuchPasskey,
        SessionRateLimited,
        Unavailable,
    )
)]
async fn rename(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(passkey_id): Path<String>,
    Body(body): Body<RenameRequest>,
) -> Result<Json<Passkey>, AppError> {
    let name = body.name.into_valid()?.trimmed();
    let passkey_id = path_id(&passkey_id)?;
    Ok(Json(
        passkeys::rename(&state, principal, passkey_id, name)
            .await?
            .into(),
    ))
}

/// Body of `DELETE /v1/auth/passkeys/{passkeyId}`; may be left out.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RemoveRequest {
    /// A TOTP or backup code, when the access token's second factor is not fresh.
    #[garde(dive)]
    #[schema(value_type = Option<String>, max_length = 32, example = "123456")]
    code: Optional<Code>,
}

/// `{twoFactorEnabled}` after a passkey's removal.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PasskeyRemoved {
    /// False when this was the account's last second factor: two-factor authentication is
    /// now off, its backup codes and trusted devices are gone and other sessions ended.
    two_factor_enabled: bool,
}

/// Removes a passkey. A sensitive change; removing the last second factor turns two-factor
/// authentication off.
#[utoipa::path(
    delete,
    path = "/v1/auth/passkeys/{passkeyId}",
    operation_id = "remove_passkey",
    tag = "passkeys",
    security(("bearerAuth" = [])),
    params(("passkeyId" = Uuid, Path, description = "The passkey's `id`.")),
    request_body(content = Option<RemoveRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 200, description = "Removed.", body = PasskeyRemoved),
        BodyErrors,
        UnauthorizedOrWrongCode,
        NoSuchPasskey,
        SensitiveChangeErrors,
        Unavailable,
    )
)]
async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(ctx): Client,
    Path(passkey_id): Path<String>,
    Body(body): OptionalBody<RemoveRequest>,
) -> Result<Json<PasskeyRemoved>, AppError> {
    let code = body.code.into_option().map(Code::into_inner);
    let passkey_id = path_id(&passkey_id)?;
    let two_factor_enabled = passkeys::remove(&state, principal, passkey_id, code, ctx).await?;
    Ok(Json(PasskeyRemoved { two_factor_enabled }))
}

/// Starts the passkey second step of a login; its bearer is the `twoFactorToken`, which
/// stays unspent until the finish.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/verify/start",
    operation_id = "passkey_verify_start",
    tag = "passkeys",
    security(("twoFactorToken" = [])),
    responses(
        (status = 200, description = "The request options and the `ceremonyId`.", body = CeremonyStarted),
        (status = 401, description = "Missing, expired, used or dead `twoFactorToken` (`invalid_two_factor_token`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account has no usable passkey (`no_passkey`).", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn verify_start(
    State(state): State<AppState>,
    _limit: RateLimit,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let challenge = two_factor_token(&headers)?;
    started(passkeys::start_second_step(&state, challenge).await?)
}

/// Body of `POST /v1/auth/passkeys/verify/finish`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct VerifyFinishRequest {
    #[garde(dive)]
    #[schema(value_type = Uuid, max_length = 64, example = "6f1c2a3e-9b0d-4c5e-8f7a-1b2c3d4e5f60")]
    ceremony_id: Field<Uuid>,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, in its JSON form.
    #[garde(dive)]
    #[schema(value_type = AssertionCredential)]
    credential: Field<Decoded<PublicKeyCredential>>,
    /// Remember this device: later logins from it skip the second factor.
    #[garde(dive)]
    #[schema(value_type = Option<TrustedDeviceInput>)]
    trust_device: Optional<Nested<TrustedDeviceInput>>,
}

/// The passkey second step of a login: as `POST /v1/auth/2fa/verify` with a code, with the
/// same single-use token, attempts, lockout, trusted device and events.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/verify/finish",
    operation_id = "passkey_verify_finish",
    tag = "passkeys",
    security(("twoFactorToken" = [])),
    request_body = VerifyFinishRequest,
    responses(
        (status = 200, description = "Signed in.", body = VerifiedTokens),
        BodyErrors,
        (status = 401, description = "Missing, expired, used or dead `twoFactorToken` (`invalid_two_factor_token`) or a refused passkey (`invalid_passkey`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Unknown, expired or finished ceremony, or one of another `twoFactorToken` (`invalid_ceremony`).", body = Problem, content_type = "application/problem+json"),
        SecondStepRefused,
        Unavailable,
    )
)]
async fn verify_finish(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    headers: HeaderMap,
    Body(body): Body<VerifyFinishRequest>,
) -> Result<Response, AppError> {
    let challenge = two_factor_token(&headers)?;
    let assertion = assertion(body.ceremony_id, body.credential)?;
    let trust = dto::trusted_device(body.trust_device)?;
    let verified = two_factor::verify_second_step(
        &state,
        challenge,
        SecondStep::Passkey(Box::new(assertion)),
        trust,
        ctx,
    )
    .await?;
    Ok(Json(VerifiedTokens::from(verified)).into_response())
}

/// Starts a passwordless sign-in with a discoverable passkey (no account named). The
/// options ask for conditional mediation, so a page can offer the browser's passkey
/// autofill.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/login/start",
    operation_id = "passkey_login_start",
    tag = "passkeys",
    responses(
        (status = 200, description = "The request options and the `ceremonyId`.", body = CeremonyStarted),
        RateLimited,
        Unavailable,
    )
)]
async fn login_start(
    State(state): State<AppState>,
    _limit: RateLimit,
) -> Result<Response, AppError> {
    started(passkeys::start_passwordless(&state).await?)
}

/// Body of `POST /v1/auth/passkeys/login/finish`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct LoginFinishRequest {
    #[garde(dive)]
    #[schema(value_type = Uuid, max_length = 64, example = "6f1c2a3e-9b0d-4c5e-8f7a-1b2c3d4e5f60")]
    ceremony_id: Field<Uuid>,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, in its JSON form.
    #[garde(dive)]
    #[schema(value_type = AssertionCredential)]
    credential: Field<Decoded<PublicKeyCredential>>,
}

/// Finishes a passwordless sign-in: a full session, whose access token's `amr` is `hwk`
/// (a device-bound passkey) or `swk` (a synced one), with `user` and `mfa`; it counts as a
/// fresh second factor for sensitive changes.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/login/finish",
    operation_id = "passkey_login_finish",
    tag = "passkeys",
    request_body = LoginFinishRequest,
    responses(
        (status = 200, description = "Signed in.", body = Tokens),
        BodyErrors,
        (status = 401, description = "The passkey was refused (`invalid_passkey`): unknown, disabled, wrong origin or RP ID, bad signature, no user verification.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Unknown, expired or finished ceremony (`invalid_ceremony`).", body = Problem, content_type = "application/problem+json"),
        RateLimited,
        Unavailable,
    )
)]
async fn login_finish(
    State(state): State<AppState>,
    _limit: RateLimit,
    Client(ctx): Client,
    Body(body): Body<LoginFinishRequest>,
) -> Result<Json<Tokens>, AppError> {
    let assertion = assertion(body.ceremony_id, body.credential)?;
    let (tokens, user) = passkeys::finish_passwordless(&state, assertion, ctx).await?;
    Ok(Json(Tokens::new(tokens, &user)))
}
