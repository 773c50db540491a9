//! Micro-benchmarks of the hot code paths, each calling the library's real code.
//!
//! Run with `cargo bench --bench micro` (add a filter such as `totp` to run a subset).
//! The figures and what they mean are in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use uuid::Uuid;

use tessera::config::Config;
use tessera::crypto::{self, PasswordHasher};
use tessera::domain::totp::{self, Totp};
use tessera::keys::Keys;
use tessera::metrics::Metrics;
use tessera::service::second_factor::{BACKUP_CODE_PURPOSE, match_backup_code, totp_aad};
use tessera::tokens::{TokenSigner, amr};

/// A TOTP time, fixed so every run checks the same codes.
const NOW: i64 = 1_700_000_015;

/// Keys as the server makes them on first start, in a throwaway data dir.
fn keys() -> (tempfile::TempDir, Keys) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let keys = Keys::load_or_create(&config).expect("keys");
    (dir, keys)
}

/// TOTP verification (SHA1, 6 digits, 30 s, one step either side, as configured by
/// default) against its baseline: one raw HMAC-SHA1 of the same 8-byte counter under the
/// same 20-byte key. Every candidate step is computed whatever the code, so the three
/// cases should cost the same; "wrong code" is the worst case by definition.
fn totp(c: &mut Criterion) {
    let secret = totp::generate_secret();
    let skew = Config::default().totp_skew_steps;
    let reference = Totp::standard(&secret);
    let step = reference.step_at(NOW);
    let current = reference.code_for_step(step);
    let edge = reference.code_for_step(step - skew);
    let wrong = (0..)
        .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|code| reference.matching_step(code, NOW, skew).is_none())
        .expect("some code is wrong");
    assert_eq!(reference.matching_step(&current, NOW, skew), Some(step));
    assert_eq!(reference.matching_step(&edge, NOW, skew), Some(step - skew));

    let mut group = c.benchmark_group("totp");
    group.bench_function("raw_hmac_sha1_baseline", |b| {
        let counter = (step as u64).to_be_bytes();
        b.iter(|| {
            let mut mac =
                <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(black_box(&secret[..]))
                    .expect("any key length");
            mac.update(black_box(&counter));
            black_box(mac.finalize().into_bytes())
        })
    });
    for (name, code) in [
        ("verify_current_step", &current),
        ("verify_window_edge", &edge),
        ("verify_wrong_code", &wrong),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                Totp::standard(black_box(&secret)).matching_step(
                    black_box(code),
                    black_box(NOW),
                    skew,
                )
            })
        });
    }
    group.finish();
}

/// A backup code checked as the server checks one: the keyed hash of the presented code,
/// compared in constant time with each of the 10 stored hashes (no match: the worst case,
/// and a match on the last one).
fn backup_codes(c: &mut Criterion) {
    let (_dir, keys) = keys();
    let codes: Vec<String> = (0..tessera::domain::backup_code::COUNT)
        .map(|_| tessera::domain::backup_code::generate())
        .collect();
    let stored: Vec<Vec<u8>> = codes
        .iter()
        .map(|code| {
            let normalized = tessera::domain::backup_code::normalize(code).expect("valid");
            crypto::keyed_hash(&keys.pepper, BACKUP_CODE_PURPOSE, normalized.as_bytes())
        })
        .collect();
    let last = tessera::domain::backup_code::normalize(&codes[codes.len() - 1]).expect("valid");
    let absent = "0000000000".to_owned();
    assert_eq!(
        match_backup_code(&keys.pepper, &last, stored.iter().map(Vec::as_slice)),
        Some(9)
    );
    assert_eq!(
        match_backup_code(&keys.pepper, &absent, stored.iter().map(Vec::as_slice)),
        None
    );

    let mut group = c.benchmark_group("backup_code");
    for (name, code) in [
        ("check_10_stored_no_match", &absent),
        ("check_10_stored_last_matches", &last),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                match_backup_code(
                    &keys.pepper,
                    black_box(code),
                    stored.iter().map(Vec::as_slice),
                )
            })
        });
    }
    group.finish();
}

/// Signing and verifying an access token (EdDSA JWT) with the server's signer.
fn jwt(c: &mut Criterion) {
    let (_dir, keys) = keys();
    let signer = TokenSigner::new(keys.signing.clone(), "Tessera".into(), 900);
    let user = Uuid::new_v4();
    let session = Uuid::new_v4();
    let amr = vec![
        amr::PASSWORD.to_owned(),
        amr::OTP.to_owned(),
        amr::MFA.to_owned(),
    ];
    let token = signer
        .sign(user, session, amr.clone(), NOW, NOW)
        .expect("sign");
    assert_eq!(signer.verify(&token, NOW).expect("verify").sub, user);

    let mut group = c.benchmark_group("jwt");
    group.bench_function("sign", |b| {
        b.iter(|| {
            signer
                .sign(black_box(user), session, amr.clone(), NOW, NOW)
                .expect("sign")
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| signer.verify(black_box(&token), NOW).expect("verify"))
    });
    group.finish();
}

/// Opening a sealed TOTP secret (XChaCha20-Poly1305 under the master key, bound to the
/// user's row), as every second-factor check does; sealing for comparison.
fn aead(c: &mut Criterion) {
    let (_dir, keys) = keys();
    let user = Uuid::new_v4();
    let secret = totp::generate_secret();
    let aad = totp_aad(user);
    let sealed = crypto::seal(&keys.master, &aad, &secret).expect("seal");

    let mut group = c.benchmark_group("aead");
    group.bench_function("open_totp_secret", |b| {
        b.iter(|| {
            crypto::open(&keys.master, black_box(&totp_aad(user)), black_box(&sealed))
                .expect("open")
        })
    });
    group.bench_function("seal_totp_secret", |b| {
        b.iter(|| crypto::seal(&keys.master, black_box(&aad), black_box(&secret)).expect("seal"))
    });
    group.finish();
}

/// Argon2id at the configured parameters (19 MiB, t=2, p=1 by default), through the
/// server's own hasher (which wipes its working memory after each hash): the cost every
/// password check pays. Then the wipe alone, as the difference of two bare hashes.
fn argon2(c: &mut Criterion) {
    let config = Config::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hasher = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        1,
        Arc::new(Metrics::default()),
    )
    .expect("hasher");
    let password = secrecy::SecretString::from("correct horse battery staple".to_owned());
    let stored = runtime.block_on(hasher.hash(&password)).expect("hash");

    let mut group = c.benchmark_group("argon2id");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("hash_default_params", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.hash(black_box(&password)))
                .expect("hash")
        })
    });
    group.bench_function("verify_default_params", |b| {
        b.iter(|| {
            runtime
                .block_on(hasher.verify(black_box(&password), Some(&stored)))
                .expect("verify")
        })
    });

    // What wiping the working memory after each hash costs: the bare Argon2id computation
    // into a kept buffer, as the hasher runs it, with and without the wipe the hasher
    // applies (`crypto::wipe_argon2_memory`). The two differ only by the wipe.
    let params = argon2::Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .expect("params");
    let raw = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let mut blocks = vec![argon2::Block::default(); params.block_count()];
    let salt = [7u8; 16];
    let mut out = [0u8; 32];
    group.bench_function("hash_without_wipe_baseline", |b| {
        b.iter(|| {
            raw.hash_password_into_with_memory(
                black_box(b"correct horse battery staple"),
                &salt,
                &mut out,
                &mut blocks[..],
            )
            .expect("hash");
            black_box(&out);
        })
    });
    group.bench_function("hash_with_wipe", |b| {
        b.iter(|| {
            raw.hash_password_into_with_memory(
                black_box(b"correct horse battery staple"),
                &salt,
                &mut out,
                &mut blocks[..],
            )
            .expect("hash");
            crypto::wipe_argon2_memory(&mut blocks);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, totp, backup_codes, jwt, aead, argon2);
criterion_main!(benches);
