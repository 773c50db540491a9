//! TOTP cost, measured in-process so every target is in one report.

use super::*;

pub(crate) struct TotpCost {
    pub(crate) hmac_ns: f64,
    pub(crate) verify_ns: f64,
}

/// The worst-case TOTP check (a wrong code: every step of the window computed and
/// compared) against one raw HMAC-SHA1 of the same 8-byte counter. The median of 31 timed
/// batches each; `cargo bench --bench micro totp` measures the same with criterion.
pub(crate) fn totp_cost_ratio() -> TotpCost {
    use hmac::{Hmac, Mac};
    use std::hint::black_box;
    let secret = seeded_secret(0);
    let now = 1_700_000_015;
    let skew = Config::default().totp_skew_steps;
    let totp = Totp::standard(&secret);
    let wrong = (0..)
        .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|code| totp.matching_step(code, now, skew).is_none())
        .expect("a wrong code");
    let counter = (totp.step_at(now) as u64).to_be_bytes();
    let time = |f: &dyn Fn()| {
        let n = 20_000;
        let mut samples: Vec<f64> = (0..31)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    f();
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let hmac_ns = time(&|| {
        let mut mac =
            <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(black_box(&secret[..]))
                .expect("any key length");
        mac.update(black_box(&counter));
        black_box(mac.finalize().into_bytes());
    });
    let verify_ns = time(&|| {
        black_box(Totp::standard(black_box(&secret)).matching_step(
            black_box(&wrong),
            black_box(now),
            skew,
        ));
    });
    TotpCost { hmac_ns, verify_ns }
}
