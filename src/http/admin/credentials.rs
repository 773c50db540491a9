//! `/admin/v1` routes about credentials rather than accounts: importing TOTP
//! authenticators from another system, re-learning an authenticator's clock drift, and
//! rotating the access-token signing key. Each calls the same use case as its command
//! (`tessera admin import-totp`, `resync-totp`, `keys rotate`).

use std::borrow::Cow;

use axum::Json;
use axum::extract::State;
use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{AdminKey, UserId};
use crate::error::AppError;
use crate::http::body::{BodyContext, Field, FieldValue, Flag, Message, Optional, Text};
use crate::http::extract::{Body, OptionalBody};
use crate::http::problem::Problem;
use crate::http::responses::{AdminErrors, BodyErrors, Unavailable};
use crate::service::admin_api::{self, KeyChange};
use crate::service::authenticators::{self, ImportFormat, ImportResult};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_totp))
        .routes(routes!(resync_totp))
        .routes(routes!(rotate_signing_key))
}

/// Most entries one import request takes; import more in several requests.
const MAX_IMPORT_ENTRIES: usize = 1000;

/// The entries of an import, kept as the JSON lines the import reader takes (so a request
/// is read exactly as a file is). The text holds secrets: it is wiped when dropped.
struct ImportEntries(Zeroizing<String>);

impl FieldValue for ImportEntries {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        let Value::Array(entries) = value else {
            return Err(Cow::Borrowed("must be an array of objects"));
        };
        if entries.len() > MAX_IMPORT_ENTRIES {
            return Err(Cow::Owned(format!(
                "must hold at most {MAX_IMPORT_ENTRIES} entries"
            )));
        }
        if !entries.iter().all(Value::is_object) {
            return Err(Cow::Borrowed("must be an array of objects"));
        }
        // Compact JSON has no line breaks: entry i is line i + 1.
        let mut text = Zeroizing::new(String::new());
        for entry in &entries {
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        Ok(Some(ImportEntries(text)))
    }
}

/// Body of `POST /admin/v1/totp-imports`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct TotpImportRequest {
    /// One object per account, as a line of an import file (see the README): the account
    /// (`user`, `email`, `userName` or `id`), then `otpauth` (an `otpauth://totp/` URI) or
    /// `secret` (base32) with `algorithm`, `digits` and `period`, and optionally
    /// `lastStep`. At most 1000.
    #[garde(dive)]
    #[schema(value_type = Vec<Object>, max_items = 1000, example = json!([{"email": "ann@example.com", "secret": "JBSWY3DPEHPK3PXP", "digits": 6}]))]
    entries: Field<ImportEntries>,
    /// Judge every entry as for real and store nothing.
    #[garde(dive)]
    #[schema(value_type = Option<bool>)]
    dry_run: Optional<Flag>,
}

/// What became of one entry.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ImportedEntry {
    /// The entry's position, from 1.
    entry: u64,
    /// The account as the entry named it.
    user: String,
    /// Imported (or, in a dry run, would be).
    imported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    /// `SHA1`, `SHA256` or `SHA512`.
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digits: Option<u32>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<i64>,
    /// Two-factor authentication was off and the import switched it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled_two_factor: Option<bool>,
    /// Why it was refused (never quoting a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The report of an import.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ImportReport {
    dry_run: bool,
    imported: usize,
    refused: usize,
    entries: Vec<ImportedEntry>,
}

/// Imports TOTP authenticators from another system, so users keep the app they have.
/// Each entry is stored whole or refused on its own (one bad entry holds back no other);
/// an imported authenticator turns two-factor authentication on and issues no backup
/// codes. Each import is a `totp_imported` event of its account, naming the key.
#[utoipa::path(
    post,
    path = "/admin/v1/totp-imports",
    operation_id = "admin_import_totp",
    tag = "admin",
    security(("adminApiKey" = [])),
    request_body = TotpImportRequest,
    responses(
        (status = 200, description = "What became of each entry (scope `users:write`).", body = ImportReport),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn import_totp(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Body(body): Body<TotpImportRequest>,
) -> Result<Json<ImportReport>, AppError> {
    let dry_run = body.dry_run.into_option().is_some_and(|f| f.0);
    let text = body.entries.into_valid()?.0;
    let (lines, mut outcomes) = authenticators::read_import(&text, ImportFormat::Jsonl);
    outcomes.extend(admin_api::import_totp(&state, &caller, lines, dry_run).await?);
    outcomes.sort_by_key(|o| o.line);
    let entries: Vec<ImportedEntry> = outcomes
        .into_iter()
        .map(|outcome| {
            let mut entry = ImportedEntry {
                entry: outcome.line,
                user: outcome.user,
                imported: false,
                user_id: None,
                algorithm: None,
                digits: None,
                period: None,
                enabled_two_factor: None,
                reason: None,
            };
            match outcome.result {
                ImportResult::Imported {
                    user_id,
                    params,
                    enabled_two_factor,
                } => {
                    entry.imported = true;
                    entry.user_id = Some(user_id);
                    entry.algorithm = Some(params.algorithm.name());
                    entry.digits = Some(params.digits);
                    entry.period = Some(params.period);
                    entry.enabled_two_factor = Some(enabled_two_factor);
                }
                ImportResult::Refused(reason) => entry.reason = Some(reason),
            }
            entry
        })
        .collect();
    let imported = entries.iter().filter(|e| e.imported).count();
    Ok(Json(ImportReport {
        dry_run,
        imported,
        refused: entries.len() - imported,
        entries,
    }))
}

/// Body of `POST /admin/v1/users/{userId}/totp-resync`.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct ResyncRequest {
    /// A code from the user's authenticator.
    #[garde(dive)]
    #[schema(value_type = String, max_length = 16, example = "123456")]
    code1: Field<Text<16>>,
    /// The code it shows next.
    #[garde(dive)]
    #[schema(value_type = String, max_length = 16, example = "654321")]
    code2: Field<Text<16>>,
}

/// The authenticator's clock drift, in its time steps (positive: its clock is ahead).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Resynced {
    previous_drift: i64,
    drift: i64,
}

/// Re-learns how far the account's authenticator's clock is off, from two consecutive
/// codes found within `totp_resync_window_secs` of now (RFC 6238 section 6). Neither code
/// can sign in afterwards. A `totp_drift_changed` event naming the key.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{userId}/totp-resync",
    operation_id = "admin_resync_totp",
    tag = "admin",
    security(("adminApiKey" = [])),
    params(UserId),
    request_body = ResyncRequest,
    responses(
        (status = 200, description = "The drift learned (scope `users:write`).", body = Resynced),
        BodyErrors,
        AdminErrors,
        (status = 409, description = "The account has no confirmed authenticator (`no_authenticator`).", body = Problem, content_type = "application/problem+json"),
        Unavailable,
    )
)]
async fn resync_totp(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    UserId(user_id): UserId,
    Body(body): Body<ResyncRequest>,
) -> Result<Json<Resynced>, AppError> {
    let first = body.code1.into_valid()?.0;
    let second = body.code2.into_valid()?.0;
    let resynced = admin_api::resync_totp(&state, &caller, user_id, first, second)
        .await
        .map_err(|e| match e {
            // The key is fine: the codes are what is wrong, so this is not a 401.
            AppError::InvalidCode => AppError::field(
                "code2",
                "the two codes are not consecutive codes of this authenticator within the resync window, or were used already",
            ),
            other => other,
        })?;
    Ok(Json(Resynced {
        previous_drift: resynced.previous,
        drift: resynced.drift,
    }))
}

/// Body of `POST /admin/v1/signing-keys/rotate`; may be left out.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[garde(context(BodyContext))]
struct RotateRequest {
    /// Only prepare the next key: published in the JWKS now, signing from the next
    /// rotation (so verifiers that cache the JWKS know it before it is used).
    #[garde(dive)]
    #[schema(value_type = Option<bool>)]
    prepare: Optional<Flag>,
}

/// What a signing-key change did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SigningKeyChanged {
    /// The new current key, or the prepared one.
    kid: String,
    /// `rotated` or `prepared`.
    #[schema(example = "rotated")]
    change: &'static str,
    /// Rotated: the new key had been prepared. Prepared: it was prepared before this call.
    was_prepared: bool,
    /// Rotated: the keys it replaced, published until the tokens they signed expire.
    retired: Vec<String>,
}

/// Makes a new current access-token signing key for every instance sharing the database
/// (the prepared one, if any), or only prepares the next one. Tokens signed before stay
/// valid until they expire.
#[utoipa::path(
    post,
    path = "/admin/v1/signing-keys/rotate",
    operation_id = "admin_rotate_signing_key",
    tag = "admin",
    security(("adminApiKey" = [])),
    request_body(content = Option<RotateRequest>, description = "May be left out.", content_type = "application/json"),
    responses(
        (status = 200, description = "Done (scope `admin`).", body = SigningKeyChanged),
        BodyErrors,
        AdminErrors,
        Unavailable,
    )
)]
async fn rotate_signing_key(
    State(state): State<AppState>,
    AdminKey(caller): AdminKey,
    Body(body): OptionalBody<RotateRequest>,
) -> Result<Json<SigningKeyChanged>, AppError> {
    let prepare = body.prepare.into_option().is_some_and(|f| f.0);
    let changed = match admin_api::change_signing_key(&state, &caller, prepare).await? {
        KeyChange::Rotated(rotation) => SigningKeyChanged {
            kid: rotation.kid,
            change: "rotated",
            was_prepared: rotation.was_prepared,
            retired: rotation.retired,
        },
        KeyChange::Prepared { kid, new } => SigningKeyChanged {
            kid,
            change: "prepared",
            was_prepared: !new,
            retired: Vec::new(),
        },
    };
    Ok(Json(changed))
}
