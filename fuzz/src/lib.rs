//! The logic of Tessera's fuzz targets: one function per parser that takes untrusted input.
//! Each must never panic, whatever the bytes, and checks the parser's own promises on what
//! it accepts. `cargo fuzz` drives them from `fuzz_targets/` (coverage-guided, on nightly);
//! the main test suite runs the same functions on stable over the corpus, every regression
//! in `regressions/`, and a few thousand generated hostile inputs (`tests/fuzz_corpus.rs`).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue, header};
use garde::Validate;
use serde::Deserialize;
use tessera::clock::ManualClock;
use tessera::domain::backup_code;
use tessera::domain::net::IpRange;
use tessera::domain::second_factor::SecondFactorCode;
use tessera::error::AppError;
use tessera::http::body::{
    BodyContext, Code, Field, Flag, Nested, Optional, Password, Unchecked, parse_object,
};
use tessera::http::dto;
use tessera::http::extract::{bearer_token as read_bearer, client_ip, forwarded_address};
use tessera::http::ratelimit::RateLimiter;
use tessera::tokens::TokenSigner;

/// A key for these targets only; it signs nothing anywhere else.
const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIDyomcUgJjSbMuxVx4GEFaUo+emcqd2KOA9aIuwFax2L
-----END PRIVATE KEY-----
";
const ISSUER: &str = "Tessera";
const NOW: i64 = 1_800_000_000;

fn signer() -> &'static TokenSigner {
    static SIGNER: OnceLock<TokenSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let keys = tessera::keys::signing_keys_from_pem(TEST_KEY_PEM).expect("test key");
        TokenSigner::new(keys, ISSUER.into(), 900)
    })
}

/// A second-factor code as users type it (`code` on every surface).
pub fn second_factor_code(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SecondFactorCode::parse(text) {
        Some(SecondFactorCode::Totp(digits)) => {
            assert!(
                matches!(digits.len(), 6 | 8) && digits.bytes().all(|b| b.is_ascii_digit()),
                "TOTP code {digits:?} from {text:?}"
            );
        }
        Some(SecondFactorCode::Backup(code)) => {
            assert_eq!(
                code.len(),
                backup_code::LEN,
                "backup code {code:?} from {text:?}"
            );
            assert_eq!(
                backup_code::normalize(&code).as_deref(),
                Some(code.as_str()),
                "normal form is stable"
            );
        }
        None => {}
    }
    // The field as the handlers read it: a value, or a field error, never both or neither.
    let body = serde_json::json!({ "code": text }).to_string();
    let map = parse_object(body.as_bytes()).expect("a JSON object");
    let checked = Unchecked::<CodeBody>::read(map)
        .expect("any object reads")
        .check(&BodyContext::default());
    match checked {
        Ok(body) => assert!(body.code.get().is_some(), "{text:?}"),
        Err(err) => assert!(
            matches!(&err, AppError::Validation(e) if e.contains_key("code")),
            "{text:?}: {err:?}"
        ),
    }
}

/// A body with one required code.
#[derive(Deserialize, Validate)]
#[garde(context(BodyContext))]
struct CodeBody {
    #[garde(dive)]
    code: Field<Code>,
}

/// A body with every kind of field the routes read.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
#[garde(context(BodyContext))]
struct EveryField {
    #[garde(dive, custom(|_, _| dto::identifier_rule(&self.email, &self.user_name)))]
    email: Optional<dto::LoginName>,
    #[garde(dive)]
    user_name: Optional<dto::LoginName>,
    #[garde(dive)]
    password: Field<Password>,
    #[garde(dive)]
    code: Optional<Code>,
    #[garde(dive)]
    refresh_token: Optional<dto::Token>,
    #[garde(dive)]
    device_token: Optional<dto::Token>,
    #[garde(dive)]
    enable: Optional<Flag>,
    #[garde(dive)]
    trust_device: Optional<Nested<dto::TrustedDeviceInput>>,
}

/// Backup-code normalization (case, dashes, Crockford's look-alike letters).
pub fn backup_code(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(code) = backup_code::normalize(text) else {
        return;
    };
    assert_eq!(code.len(), backup_code::LEN, "{text:?}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_lowercase() && !b"ilou".contains(&b))),
        "{code:?} from {text:?} is outside the alphabet"
    );
    assert_eq!(
        backup_code::normalize(&code).as_deref(),
        Some(code.as_str()),
        "idempotent"
    );
    let display = format!("{}-{}", &code[..5], &code[5..]).to_uppercase();
    assert_eq!(
        backup_code::normalize(&display).as_deref(),
        Some(code.as_str()),
        "the display form reads back"
    );
}

/// The `Authorization` header and the access-token verifier behind it.
pub fn bearer_token(data: &[u8]) {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Some(token) = read_bearer(&headers) {
        assert!(
            !token.is_empty() && token.len() <= 4096,
            "bearer of {} bytes",
            token.len()
        );
        assert!(!token.starts_with(' ') && !token.ends_with(' '));
        check_verified(token);
    }
    check_verified(&String::from_utf8_lossy(data));
}

fn check_verified(token: &str) {
    match signer().verify(token, NOW) {
        Ok(claims) => {
            assert_eq!(claims.iss, ISSUER);
            assert!(claims.exp > NOW);
        }
        Err(err) => assert!(matches!(err, AppError::Unauthenticated), "{err:?}"),
    }
}

/// A JSON request body, read and checked as the handlers read theirs.
pub fn json_body(data: &[u8]) {
    // A password with a character no message uses: if a message held it, it was echoed.
    // (An ASCII password may legitimately be part of a fixed message, as in "email or
    // userName is": the first input this target flagged, kept in regressions/.)
    let password = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| {
            v.get("password")
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        })
        .filter(|p| !p.is_ascii());
    for strict in [true, false] {
        let map = match parse_object(data) {
            Ok(map) => map,
            Err(err) => {
                assert!(
                    matches!(err, AppError::MalformedJson(_) | AppError::Validation(_)),
                    "{err:?}"
                );
                let response = tessera::http::problem::problem_response(&err);
                assert_eq!(response.status(), 400);
                continue;
            }
        };
        let ctx = BodyContext {
            strict,
            ..BodyContext::default()
        };
        let checked = Unchecked::<EveryField>::read(map).and_then(|body| body.check(&ctx));
        match checked {
            Ok(_) => {}
            Err(AppError::Validation(errors)) => {
                for (name, messages) in errors {
                    // Unknown names are cut to 64 characters; nested ones carry their parent.
                    assert!(
                        name.chars().count() <= 64 + "trustDevice.".len(),
                        "field name of {} chars",
                        name.len()
                    );
                    assert!(!messages.is_empty());
                    for message in messages {
                        assert!(
                            message.len() <= 120 && message.is_ascii(),
                            "message {message:?}"
                        );
                        if let Some(password) = &password {
                            assert!(
                                !message.contains(password.as_str()),
                                "a message echoes the password"
                            );
                        }
                    }
                }
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

/// `X-Forwarded-For` behind (or not behind) a trusted proxy, and the rate limiter keyed by
/// the address it yields. The first byte picks the peer; the rest, split at NUL bytes, are
/// the header's values.
pub fn forwarded_for(data: &[u8]) {
    let trusted: Vec<IpRange> = vec![
        "127.0.0.1".parse().unwrap(),
        "::1".parse().unwrap(),
        "10.0.0.0/8".parse().unwrap(),
    ];
    let (first, rest) = data.split_first().unwrap_or((&0, &[]));
    let peer: IpAddr = match first % 4 {
        0 => "127.0.0.1".parse().unwrap(),
        1 => "::1".parse().unwrap(),
        2 => "::ffff:10.0.0.1".parse().unwrap(),
        _ => "192.0.2.1".parse().unwrap(),
    };
    let mut headers = HeaderMap::new();
    for value in rest.split(|b| *b == 0) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append("x-forwarded-for", value);
        }
    }
    let ip = client_ip(Some(peer), &headers, &trusted).expect("a peer gives an address");
    assert_eq!(ip, ip.to_canonical(), "addresses come back canonical");
    if !IpRange::any_contains(&trusted, peer) {
        assert_eq!(
            ip,
            peer.to_canonical(),
            "an untrusted peer's header is ignored"
        );
    } else if ip != peer.to_canonical() {
        let text: String = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            text.split(',')
                .filter_map(forwarded_address)
                .any(|hop| hop.to_canonical() == ip),
            "{ip} is not in {text:?}"
        );
    }
    let clock = ManualClock::starting_at(0);
    let limiter = RateLimiter::new(60, 2, Arc::new(clock.clone()));
    for now in [0, 0, 0, 1, i64::MAX / 2] {
        clock.set(now);
        let _ = limiter.check(ip);
    }
}
