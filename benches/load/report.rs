//! The report: the machine, the plan and every figure with its ratio to the ceiling.

use super::*;

pub(crate) fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = proc_meminfo_kib("MemTotal")
        .map(|k| k as f64 / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "- Machine: {model}, {cores} cores, {memory:.0} GiB RAM, Linux {}\n- Toolchain: {rustc}; server built with the `bench` profile (release, thin LTO)\n",
        kernel.trim()
    )
}

pub(crate) fn proc_meminfo_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

pub(crate) fn plan_description(plan: &Plan) -> String {
    format!(
        "- Plan: {} s warm-up then {} s measured per scenario{}; {} connections (login {}, isolation {} status + {} login); scales {} and {} users\n",
        plan.warmup.as_secs_f64(),
        plan.duration.as_secs_f64(),
        if plan.quick { " (--quick)" } else { "" },
        plan.concurrency,
        plan.login_concurrency,
        plan.isolation_concurrency,
        plan.login_concurrency,
        plan.small_users,
        plan.large_users
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn render(
    backend: &str,
    plan: &Plan,
    rows: &[Row],
    notes: &[String],
    peak_kib: u64,
    totp: &TotpCost,
    took: Duration,
    load_before: &str,
    load_after: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## {backend}\n");
    let _ = writeln!(
        out,
        "| scenario | users | conns | req/s | ratio | p50 ms | p99 ms | p99.9 ms | errors | measured s | server CPU | client CPU | other CPU | server µs/req |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let o = &r.outcome;
        let ratio = r
            .ratio
            .map(|v| format!("{:.1} %", v * 100.0))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {ratio} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} % | {:.0} % | {:.0} % | {:.0} |",
            r.scenario,
            r.users,
            r.concurrency,
            o.rate(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            o.percentile_ms(99.9),
            o.errors,
            o.elapsed.as_secs_f64(),
            o.cpu.server,
            o.cpu.client,
            o.cpu.other,
            o.cpu.server_us_per_request
        );
    }
    let _ = writeln!(
        out,
        "\nRatios: to the ceiling's req/s in this run; login: to the raw Argon2id rate."
    );
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        let _ = writeln!(out, "- {}, {} users: {}", r.scenario, r.users, r.note);
    }
    let _ = writeln!(
        out,
        "\nPeak resident memory of the server over the whole run (VmHWM): **{:.1} MiB**.",
        peak_kib as f64 / 1024.0
    );
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(
        out,
        "- Load average before: {}; after: {} (1, 5, 15 min; a quiet 2-core machine reads near 0).",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "- The whole {backend} run took {:.0} s.",
        took.as_secs_f64()
    );

    // Targets.
    let small = plan.small_users;
    let large = plan.large_users;
    let rate = |name: &str, users: usize| {
        rows.iter()
            .find(|r| r.scenario.starts_with(name) && r.users == users)
    };
    let mut targets: Vec<(String, String, bool)> = Vec::new();
    for (name, min) in [("status", 0.5), ("refresh", 0.2), ("second factor", 0.1)] {
        if let Some(r) = rate(name, small) {
            let v = r.ratio.unwrap_or(0.0);
            targets.push((
                format!("{name} >= {:.0} % of the ceiling", min * 100.0),
                format!("{:.1} %", v * 100.0),
                v >= min,
            ));
        }
    }
    if let Some(r) = rate("login", large.max(small)) {
        let v = r.ratio.unwrap_or(0.0);
        targets.push((
            "login >= 90 % of the raw Argon2id rate".into(),
            format!("{:.1} %", v * 100.0),
            v >= 0.9,
        ));
    }
    if let Some(r) = rate("isolation", large.max(small)) {
        let p99 = r.outcome.percentile_ms(99.0);
        targets.push((
            "status p99 under saturated login <= 10 ms".into(),
            format!("{p99:.2} ms"),
            p99 <= 10.0,
        ));
    }
    if large > small {
        for name in ["status", "second factor"] {
            if let (Some(a), Some(b)) = (rate(name, small), rate(name, large)) {
                let v = b.outcome.rate() / a.outcome.rate().max(1e-9);
                targets.push((
                    format!("{name} at {large} users >= 80 % of its rate at {small}"),
                    format!("{:.1} %", v * 100.0),
                    v >= 0.8,
                ));
            }
        }
    }
    let mib = peak_kib as f64 / 1024.0;
    targets.push((
        "peak RSS <= 128 MiB".into(),
        format!("{mib:.1} MiB"),
        mib <= 128.0,
    ));
    let ratio = totp.verify_ns / totp.hmac_ns.max(1e-9);
    targets.push((
        "TOTP check (wrong code, ±1 step) <= 3.5x one HMAC-SHA1".into(),
        format!(
            "{ratio:.2}x ({:.0} ns vs {:.0} ns)",
            totp.verify_ns, totp.hmac_ns
        ),
        ratio <= 3.5,
    ));
    let _ = writeln!(
        out,
        "\n### Targets ({backend})\n\n| target | measured | met |\n|---|---:|:---:|"
    );
    for (target, measured, met) in targets {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    out
}
