//! `/admin/v1`: the admin API (OpenAPI tag `admin`), for the backend of the product
//! Tessera protects. Every route takes an admin API key as bearer and calls one use case of
//! [`crate::service::admin_api`], which checks the key's scope and records the call. The
//! routes are served on `admin_listen` when it is set, else on the public listener; there
//! they answer 404 while no key exists.

mod credentials;
mod notifications;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{
    self, BodyContext, Email, Field, Flag, NoFields, Optional, Password, PhoneNumber, UserName,
};
use super::dto::{self, User};
use super::extract::{Body, Client, OptionalBody, Page, Paging, bearer_token, path_id};
use super::problem::Problem;
use super::responses::{AccountNameTaken, AdminErrors, BodyErrors, PagingErrors, Unavailable};
use crate::clock::rfc3339;
use crate::error::AppError;
use crate::service::admin_api::{self, NewAccount};
use crate::service::admin_keys::AdminCaller;
use crate::service::operator::AccountDetails;
use crate::service::two_factor::TwoFactorStatus;
use crate::state::AppState;

/// Rule of an optional new password: as on registration, when one is given.
fn optional_new_password(
    password: &Optional<Password>,
    email: &Field<Email>,
    user_name: &Optional<UserName>,
    ctx: &BodyContext,
) -> garde::Result {
    match password.field() {
        Some(p) => body::new_password_rule(p, email.get(), user_name.get(), ctx),
        None => Ok(()),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, delete_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(reset_two_factor))
        .routes(routes!(unlock_user))
        .routes(routes!(revoke_sessions))
        .routes(routes!(require_second_factor))
        .routes(routes!(user_security_events))
        .routes(routes!(user_trusted_devices))
        .routes(routes!(user_passkeys))
        .routes(routes!(audit_log))
        .merge(credentials::router())
        .merge(notifications::router())
}

/// The caller: a live admin API key (`Authorization: Bearer tsk_...`).
pub struct AdminKey(pub AdminCaller);

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Client(ctx) = Client::from_request_parts(parts, state).await?;
        let bearer = bearer_token(&parts.headers);
        crate::service::admin_keys::authenticate(state, bearer, ctx)
            .await
            .map(AdminKey)
    }
}

/// An account id in the path: one that is not a UUID names no account (404).
#[derive(IntoParams)]
#[into_params(names("userId"), parameter_in = Path)]
pub struct UserId(
    /// The account's `id`.
    pub Uuid,
);

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        path_id(&id).map(UserId)
    }
}

/// Locks and throttles on the account, as an operator sees them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Locks {
    /// Wrong passwords in the current hour.
    #[schema(minimum = 0)]
    password_failures: i64,
    /// When the password step is delayed until; null when it is not.
    #[schema(required = true, format = DateTime)]
    password_blocked_until: Option<String>,
    /// Consecutive wrong second-factor codes.
    #[schema(minimum = 0)]
    second_factor_failures: i64,
    /// When the second factor unlocks; null when it is not locked.
    #[schema(required = true, format = DateTime)]
    second_factor_locked_until: Option<String>,
    /// After too many failures, authenticator codes are refused until a backup code or an
    /// unlock.
    totp_suspended: bool,
}

/// The account's second factor.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SecondFactor {
    enabled: bool,
    /// The second factors a sign-in can use now (`totp`, `passkey`, `backup_code`), as in
    /// `GET /v1/auth/2fa/status`; none while it is off.
    #[schema(example = json!(["totp", "backup_code"]))]
    methods: Vec<&'static str>,
    #[schema(required = true, format = DateTime)]
    enabled_at: Option<String>,
    setup_pending: bool,
    #[schema(minimum = 0)]
    backup_codes_remaining: i64,
    /// Required of this account by an operator (see also `require_second_factor`).
    required: bool,
}

/// An account as the admin API lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AdminUserSummary {
    #[serde(flatten)]
    user: User,
    /// Disabled accounts cannot sign in or refresh.
    disabled: bool,
    #[schema(required = true, format = DateTime)]
    disabled_at: Option<String>,
    /// An operator requires a second factor of this account.
    second_factor_required: bool,
    /// Live sessions.
    #[schema(minimum = 0)]
    sessions: i64,
}

impl From<&AccountDetails> for AdminUserSummary {
    fn from(d: &AccountDetails) -> Self {
        Self {
            user: User::from(&d.account),
            disabled: d.disabled_at.is_some(),
            disabled_at: d.disabled_at.map(rfc3339),
            second_factor_required: d.second_factor_required,
            sessions: d.sessions,
        }
    }
}

/// One account with its second factor, locks, sessions and devices.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AdminUser {
    #[serde(flatten)]
    summary: AdminUserSummary,
    second_factor: SecondFactor,
    locks: Locks,
    /// Live trusted devices.
    #[schema(minimum = 0)]
    trusted_devices: i64,
}

fn admin_user(d: &AccountDetails, s: &TwoFactorStatus, now: i64) -> AdminUser {
    let until = |t: i64| (t > now).then(|| rfc3339(t));
    AdminUser {
        summary: d.into(),
        second_factor: SecondFactor {
            enabled: s.enabled,
            methods: s.methods(),
            enabled_at: s.enabled_at.map(rfc3339),
            setup_pending: s.setup_pending,
            backup_codes_remaining: s.backup_codes_remaining,
            required: d.second_factor_required,
        },
        locks: Locks {
            password_failures: d.password_failures,
            password_blocked_until: until(d.password_blocked_until),
            second_factor_failures: d.second_factor_failures,
            second_factor_locked_until: until(d.second_factor_locked_until),
            totp_suspended: d.totp_suspended,
        },
        trusted_devices: s.trusted_devices,
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct UserSearch {
    /// Only accounts whose email or user name contains this (any case).
    #[param(max_length = 254)]
    search: Option<String>,
}

/// One page of accounts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UserPage {
    users: Vec<AdminUserSummary>,
    limit: i64,
    offset: i64,
    /// The `offset` of the next page; null on the last.
    #[schema(required = true)]
    next_offset: Option<i64>,
}

/// Lists accounts, oldest first, optionally only those matching `search`.
#[utoipa::path(
    get,
    path = "/admin/v1/users",
    operation_id = "admin_list_users",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserSearch, Page),
    responses(
        (status = 200, description = "One page of accounts (scope `users:read`).", body = UserPage),
        (status = 400, description = "`limit`, `offset` or `search` out of range (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        AdminErrors,
        Unavailable,
    )
)]
async fn list_users(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Paging { limit, offset }: Paging,
    search: Result<Query<UserSearch>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserPage>, AppError> {
    let Query(query) = search.map_err(|_| AppError::field("search", "must be given once"))?;
    let search = query.search.filter(|s| !s.trim().is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 254) {
        return Err(AppError::field("search", "must be at most 254 characters"));
    }
    let users = admin_api::list_users(&state, &caller, search.as_deref(), limit, offset).await?;
    let next_offset = (users.len() as i64 == limit).then_some(offset + limit);
    Ok(Json(UserPage {
        users: users.iter().map(AdminUserSummary::from).collect(),
        limit,
        offset,
        next_offset,
    }))
}

/// Body of `POST /admin/v1/users`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct CreateUserRequest {
    #[garde(dive)]
    #[schema(value_type = String, format = Email, max_length = 254, example = "bea@example.com")]
    email: Field<Email>,
    /// As on registration. Left out: the account gets no usable password, and the answer a
    /// single-use `setPasswordToken` for `POST /v1/auth/set-password`.
    #[garde(dive, custom(|p, ctx| optional_new_password(p, &self.email, &self.user_name, ctx)))]
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 1024, example = "correct horse battery staple")]
    password: Optional<Password>,
    /// As on registration; defaults to the email.
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        min_length = 3,
        max_length = 254,
        pattern = "^[A-Za-z0-9._+-]+$",
        example = "bea"
    )]
    user_name: Optional<UserName>,
    #[garde(dive)]
    #[schema(
        value_type = Option<String>,
        max_length = 32,
        pattern = "^[0-9+() .-]+$",
        example = "+1 555 010 9999"
    )]
    phone_number: Optional<PhoneNumber>,
}

/// The new account; with `setPasswordToken` when it was created without a password.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedUser {
    user: User,
    /// Single use, shown once: the account's owner sets a password with it at
    /// `POST /v1/auth/set-password` (put it in a link).
    #[serde(skip_serializing_if = "Option::is_none")]
    set_password_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    set_password_token_expiry: Option<String>,
}

/// Creates an account, with or without a password (whatever `allow_registration` says).
#[utoipa::path(
    post,
    path = "/admin/v1/users",
    operation_id = "admin_create_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created (scope `users:write`).", body = CreatedUser),
        BodyErrors,
        AdminErrors,
        AccountNameTaken,
        Unavailable,
    )
)]
async fn create_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Body(body): Body<CreateUserRequest>,
) -> Result<Response, AppError> {
    let email = body.email.into_valid()?.into_string();
    let password = body.password.into_option().map(Password::into_secret);
    let user_name = body.user_name.into_option().map(UserName::into_string);
    let phone_number = body
        .phone_number
        .into_option()
        .map(PhoneNumber::into_string);
    let created = admin_api::create_user(
        &state,
        &caller,
        NewAccount {
            email,
            user_name,
            phone_number,
            password,
        },
    )
    .await?;
    let (token, expiry) = match created.set_password {
        Some((token, expires_at)) => (Some(token), Some(rfc3339(expires_at))),
        None => (None, None),
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: User::from(&created.account),
            set_password_token: token,
            set_password_token_expiry: expiry,
        }),
    )
        .into_response())
}

/// One account: its second factor, locks, session and device counts. Recorded in the
/// account's security events (`account_viewed`).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{userId}",
    operation_id = "admin_get_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "The account (scope `users:read`).", body = AdminUser),
        AdminErrors,
        Unavailable,
    )
)]
async fn get_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
) -> Result<Json<AdminUser>, AppError> {
    let (details, status) = admin_api::get_user(&state, &caller, user_id).await?;
    Ok(Json(admin_user(&details, &status, state.now())))
}

/// Deletes an account with everything it owns: sessions, secret, backup codes, trusted
/// devices, pending steps and security events.
#[utoipa::path(
    delete,
    path = "/admin/v1/users/{userId}",
    operation_id = "admin_delete_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 204, description = "Deleted (scope `users:write`)."),
        AdminErrors,
        Unavailable,
    )
)]
async fn delete_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
) -> Result<StatusCode, AppError> {
    admin_api::delete_user(&state, &caller, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the call changed anything.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Changed {
    /// False when the account already was so.
    changed: bool,
}

/// Disables an account: it cannot sign in or refresh, and every session, trusted device
/// and pending sign-in of it ends now.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/disable",
    operation_id = "admin_disable_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "Disabled (scope `users:write`).", body = Changed),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn disable_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<Json<Changed>, AppError> {
    let changed = admin_api::set_disabled(&state, &caller, user_id, true).await?;
    Ok(Json(Changed { changed }))
}

/// Enables a disabled account again.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/enable",
    operation_id = "admin_enable_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "Enabled (scope `users:write`).", body = Changed),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn enable_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<Json<Changed>, AppError> {
    let changed = admin_api::set_disabled(&state, &caller, user_id, false).await?;
    Ok(Json(Changed { changed }))
}

/// Turns two-factor authentication off for an account: its secret, backup codes and
/// trusted devices are deleted and every session revoked (the owner enrols again).
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/reset-2fa",
    operation_id = "admin_reset_two_factor",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 204, description = "Reset (scope `users:write`)."),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn reset_two_factor(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<StatusCode, AppError> {
    admin_api::reset_two_factor(&state, &caller, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears an account's password throttle, second-factor lock and TOTP suspension.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/unlock",
    operation_id = "admin_unlock_user",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 204, description = "Unlocked (scope `users:write`)."),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn unlock_user(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<StatusCode, AppError> {
    admin_api::unlock(&state, &caller, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions were revoked.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Revoked {
    #[schema(minimum = 0)]
    revoked: u64,
}

/// Signs an account out everywhere: every session, trusted device and pending sign-in.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/revoke-sessions",
    operation_id = "admin_revoke_sessions",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "Revoked (scope `users:write`).", body = Revoked),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn revoke_sessions(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(NoFields {}): OptionalBody<NoFields>,
) -> Result<Json<Revoked>, AppError> {
    let revoked = admin_api::revoke_sessions(&state, &caller, user_id).await?;
    Ok(Json(Revoked { revoked }))
}

/// Body of `POST /admin/v1/users/{userId}/second-factor-requirement`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RequirementRequest {
    /// Whether the account must have a second factor: its next password login without one
    /// answers `requiresEnrollment: true`.
    #[garde(dive)]
    #[schema(value_type = bool, example = true)]
    required: Field<Flag>,
}

/// Requires (or stops requiring) a second factor of an account.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/second-factor-requirement",
    operation_id = "admin_require_second_factor",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    request_body = RequirementRequest,
    responses(
        (status = 200, description = "Set (scope `users:write`).", body = Changed),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn require_second_factor(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(body): Body<RequirementRequest>,
) -> Result<Json<Changed>, AppError> {
    let required = body.required.into_valid()?.0;
    let changed = admin_api::set_second_factor_required(&state, &caller, user_id, required).await?;
    Ok(Json(Changed { changed }))
}

/// An account's security events, newest first (this read is recorded as one of them).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{userId}/security-events",
    operation_id = "admin_user_security_events",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId, Page),
    responses(
        (status = 200, description = "One page of events, newest first (scope `users:read`).", body = Vec<dto::SecurityEvent>),
        PagingErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn user_security_events(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Paging { limit, offset }: Paging,
) -> Result<Json<Vec<dto::SecurityEvent>>, AppError> {
    let events = admin_api::security_events(&state, &caller, user_id, limit, offset).await?;
    Ok(Json(events.into_iter().map(Into::into).collect()))
}

/// An account's live trusted devices (this read is recorded in its security events).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{userId}/trusted-devices",
    operation_id = "admin_user_trusted_devices",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "The devices (scope `users:read`).", body = Vec<dto::TrustedDevice>),
        AdminErrors,
        Unavailable,
    )
)]
async fn user_trusted_devices(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
) -> Result<Json<Vec<dto::TrustedDevice>>, AppError> {
    let devices = admin_api::trusted_devices(&state, &caller, user_id).await?;
    Ok(Json(devices.into_iter().map(Into::into).collect()))
}

/// An account's passkeys (this read is recorded in its security events).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{userId}/passkeys",
    operation_id = "admin_user_passkeys",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    responses(
        (status = 200, description = "The passkeys, oldest first (scope `users:read`).", body = Vec<dto::Passkey>),
        AdminErrors,
        Unavailable,
    )
)]
async fn user_passkeys(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
) -> Result<Json<Vec<dto::Passkey>>, AppError> {
    let passkeys = admin_api::passkeys(&state, &caller, user_id).await?;
    Ok(Json(passkeys.into_iter().map(Into::into).collect()))
}

/// One admin API call of the audit log: a call that belongs to no single account's event
/// log (a listing, a deletion, an import, a key rotation).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditEntry {
    id: Uuid,
    #[schema(format = DateTime)]
    occurred_at: String,
    api_key_id: Uuid,
    api_key_name: String,
    /// `users_listed`, `account_deleted`, `totp_imported`, `signing_key_rotated` or
    /// `signing_key_prepared`.
    #[schema(example = "account_deleted")]
    action: String,
    #[schema(required = true)]
    target_user_id: Option<Uuid>,
    #[schema(required = true, example = "203.0.113.7")]
    ip_address: Option<String>,
    #[schema(required = true)]
    user_agent: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<admin_api::AuditEntry> for AuditEntry {
    fn from(e: admin_api::AuditEntry) -> Self {
        Self {
            id: e.id,
            occurred_at: rfc3339(e.occurred_at),
            api_key_id: e.api_key_id,
            api_key_name: e.api_key_name,
            action: e.action,
            target_user_id: e.target_user_id,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            details: e.details,
        }
    }
}

/// The admin audit log, newest first: the calls no account's security events hold (kept
/// as long as security events, `security_event_retention_days`).
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    operation_id = "admin_audit_log",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(Page),
    responses(
        (status = 200, description = "One page of the log, newest first (scope `admin`).", body = Vec<AuditEntry>),
        PagingErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn audit_log(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Paging { limit, offset }: Paging,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let entries = admin_api::audit_log(&state, &caller, limit, offset).await?;
    Ok(Json(entries.into_iter().map(Into::into).collect()))
}
