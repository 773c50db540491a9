//! OpenAPI response groups shared by many operations (`responses(..., BodyErrors,
//! Unavailable)`). A module of their own, below both API surfaces and the document, so
//! the handlers that use them and the document that collects the handlers do not import
//! each other.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Type};

use super::problem::PROBLEM_JSON;

fn problem_response(description: &str) -> ApiResponse {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn with_header(
    mut response: ApiResponse,
    name: &str,
    schema: ObjectBuilder,
    description: &str,
) -> ApiResponse {
    response.headers.insert(
        name.to_owned(),
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(schema))
                .description(Some(description))
                .build(),
        ),
    );
    response
}

fn retry_after(response: ApiResponse, description: &str) -> ApiResponse {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1));
    with_header(response, "Retry-After", seconds, description)
}

/// A 401 answer's `WWW-Authenticate: Bearer` challenge.
fn bearer_challenge(response: ApiResponse) -> ApiResponse {
    let text = ObjectBuilder::new().schema_type(Type::String);
    with_header(response, "WWW-Authenticate", text, "`Bearer`")
}

fn group(entries: Vec<(&str, ApiResponse)>) -> BTreeMap<String, RefOr<ApiResponse>> {
    entries
        .into_iter()
        .map(|(status, r)| (status.to_owned(), RefOr::T(r)))
        .collect()
}

/// A one-status group of a problem document.
fn problem_group(status: &str, description: &str) -> BTreeMap<String, RefOr<ApiResponse>> {
    group(vec![(status, problem_response(description))])
}

/// A one-status group for a refusal that lifts with time: a problem document with
/// `Retry-After` (`wait` describes the header).
fn refused_for_now(
    status: &str,
    description: &str,
    wait: &str,
) -> BTreeMap<String, RefOr<ApiResponse>> {
    group(vec![(
        status,
        retry_after(problem_response(description), wait),
    )])
}

/// What any route that reads a JSON body may answer before its handler runs: 400 for
/// malformed JSON or invalid fields, 408 when the body does not arrive in time, 413 for a
/// body over 64 KiB, 415 for another content type.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        group(vec![
            (
                "400",
                problem_response(
                    "Malformed JSON (`malformed_json`) or invalid fields (`validation_failed`, with `errors`).",
                ),
            ),
            (
                "408",
                problem_response("The request did not complete in time (`request_timeout`)."),
            ),
            (
                "413",
                problem_response("The body is over 64 KiB (`payload_too_large`)."),
            ),
            (
                "415",
                problem_response("The body is not `application/json` (`unsupported_media_type`)."),
            ),
        ])
    }
}

/// 400 from [`Paging`](super::extract::Paging), the `limit` and `offset` of a paged list.
pub struct PagingErrors;

impl IntoResponses for PagingErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group(
            "400",
            "`limit` or `offset` out of range or not a whole number (`validation_failed`).",
        )
    }
}

/// 503 when the database is unreachable.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refused_for_now(
            "503",
            "The database is unreachable (`service_unavailable`); try again shortly.",
            "Seconds to wait.",
        )
    }
}

/// 429 from the per-address rate limit of the unauthenticated routes.
pub struct RateLimited;

impl IntoResponses for RateLimited {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refused_for_now(
            "429",
            "Too many requests from this address (`rate_limited`).",
            "Seconds until a request is accepted again.",
        )
    }
}

/// 429 from the per-session limit on writes made with an access token.
pub struct SessionRateLimited;

impl IntoResponses for SessionRateLimited {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refused_for_now(
            "429",
            "Too many writes by this session in a short time (`rate_limited`).",
            "Seconds until a write is accepted again.",
        )
    }
}

/// 401 for a missing, invalid or expired access token.
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        group(vec![(
            "401",
            bearer_challenge(problem_response(
                "The access token is missing, invalid or expired, or its session was revoked (`unauthorized`).",
            )),
        )])
    }
}

/// What every admin API route may answer for its key: 401 for a missing, unknown or
/// revoked key, 403 for a key without the route's scope, 404 while no key exists at all
/// (the admin API is off) or for an unknown account.
pub struct AdminErrors;

impl IntoResponses for AdminErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        group(vec![
            (
                "401",
                bearer_challenge(problem_response(
                    "The admin API key is missing, unknown or revoked (`invalid_api_key`).",
                )),
            ),
            (
                "403",
                problem_response(
                    "The key lacks the scope this route needs (`insufficient_scope`).",
                ),
            ),
            (
                "404",
                problem_response(
                    "No such account, or the admin API is off because no admin API key exists (`not_found`).",
                ),
            ),
        ])
    }
}

/// 401 of a route that takes an access token and checks a second-factor `code`.
pub struct UnauthorizedOrWrongCode;

impl IntoResponses for UnauthorizedOrWrongCode {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group(
            "401",
            "Missing or invalid access token (`unauthorized`) or wrong code (`invalid_code`).",
        )
    }
}

/// 403 of an enrolment step (`setup`, `verify-setup`) that needs a recent sign-in or the
/// `password`.
pub struct NotRecentlySignedIn;

impl IntoResponses for NotRecentlySignedIn {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group(
            "403",
            "The sign-in is not recent and no `password` was sent (`reauthentication_required`).",
        )
    }
}

/// 404 of a route that names one of the account's passkeys.
pub struct NoSuchPasskey;

impl IntoResponses for NoSuchPasskey {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group("404", "No such passkey of this account (`not_found`).")
    }
}

/// 409 of a route that creates an account.
pub struct AccountNameTaken;

impl IntoResponses for AccountNameTaken {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group(
            "409",
            "The email (`email_taken`) or user name (`user_name_taken`) is in use.",
        )
    }
}

/// What a sensitive change to the second factor (turning it off, new backup codes, a new
/// trusted device, removing a passkey) may answer for the fresh second factor it needs.
pub struct SensitiveChangeErrors;

impl IntoResponses for SensitiveChangeErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        group(vec![
            (
                "403",
                problem_response(
                    "No fresh second factor (`reauthentication_required`) or authenticator codes suspended (`totp_suspended`).",
                ),
            ),
            (
                "429",
                retry_after(
                    problem_response(
                        "The second factor is locked (`second_factor_locked`), or too many writes by this session in a short time (`rate_limited`).",
                    ),
                    "Seconds to wait.",
                ),
            ),
        ])
    }
}

/// 409 of a change that needs two-factor authentication on.
pub struct TwoFactorNotEnabled;

impl IntoResponses for TwoFactorNotEnabled {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_group(
            "409",
            "Two-factor authentication is not on (`two_factor_not_enabled`).",
        )
    }
}

/// 429 of the second step of a login (a code or a passkey, with the `twoFactorToken`).
pub struct SecondStepRefused;

impl IntoResponses for SecondStepRefused {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refused_for_now(
            "429",
            "The second factor is locked after repeated failures (`second_factor_locked`), or too many requests from this address (`rate_limited`).",
            "Seconds to wait.",
        )
    }
}
