//! Prometheus metrics, kept per server instance (not in a process-global recorder), so
//! several servers in one process, as in the test suite, each count only their own work.
//! Rendered in the Prometheus text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

type Labels = Vec<(&'static str, String)>;

/// A gauge sampled at scrape time: name, labels, value.
pub type Gauge = (&'static str, Vec<(&'static str, String)>, f64);

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

/// Help text of every metric, which also fixes its type in the output.
const HELP: &[(&str, &str, &str)] = &[
    (
        "tessera_http_requests_total",
        "counter",
        "HTTP requests by route, method and status.",
    ),
    (
        "tessera_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by route and method.",
    ),
    (
        "tessera_logins_total",
        "counter",
        "Password-step logins by outcome.",
    ),
    (
        "tessera_second_factor_checks_total",
        "counter",
        "Second-factor checks by method and outcome.",
    ),
    (
        "tessera_second_factor_lockouts_total",
        "counter",
        "Second-factor locks applied.",
    ),
    (
        "tessera_backup_codes_used_total",
        "counter",
        "Backup codes consumed.",
    ),
    (
        "tessera_refreshes_total",
        "counter",
        "Refresh-token exchanges by outcome.",
    ),
    (
        "tessera_argon2_duration_seconds",
        "histogram",
        "Time to hash or verify one password, queueing included.",
    ),
    (
        "tessera_argon2_in_flight",
        "gauge",
        "Password hashes running or waiting for a slot.",
    ),
    (
        "tessera_trusted_devices_active",
        "gauge",
        "Trusted devices not yet expired.",
    ),
    (
        "tessera_db_pool_connections",
        "gauge",
        "Database pool connections by state.",
    ),
];

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    pub fn increment(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name, labels(pairs))).or_default() += 1;
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        let mut histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let h = histograms.entry((name, labels(pairs))).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The exposition text; `gauges` are sampled by the caller at scrape time.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "counter" => {
                    for ((n, l), v) in counters.iter().filter(|((n, _), _)| n == name) {
                        let _ = writeln!(out, "{n}{} {v}", format_labels(l, None));
                    }
                }
                "histogram" => {
                    for ((n, l), h) in histograms.iter().filter(|((n, _), _)| n == name) {
                        for (i, bound) in BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{n}_bucket{} {}",
                                format_labels(l, Some(&bound.to_string())),
                                h.counts[i]
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{n}_bucket{} {}",
                            format_labels(l, Some("+Inf")),
                            h.count
                        );
                        let _ = writeln!(out, "{n}_sum{} {}", format_labels(l, None), h.sum);
                        let _ = writeln!(out, "{n}_count{} {}", format_labels(l, None), h.count);
                    }
                }
                _ => {
                    for (n, l, v) in gauges.iter().filter(|(n, _, _)| n == name) {
                        let _ = writeln!(out, "{n}{} {v}", format_labels(l, None));
                    }
                }
            }
        }
        out
    }
}

fn format_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.increment("tessera_logins_total", &[("outcome", "success")]);
        m.increment("tessera_logins_total", &[("outcome", "success")]);
        m.observe(
            "tessera_http_request_duration_seconds",
            &[("route", "/healthz"), ("method", "GET")],
            0.003,
        );
        let text = m.render(&[("tessera_argon2_in_flight", vec![], 1.0)]);
        assert!(text.contains("tessera_logins_total{outcome=\"success\"} 2"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"0.005\"} 1"));
        assert!(text.contains("tessera_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"0.001\"} 0"));
        assert!(text.contains(
            "tessera_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"} 1"
        ));
        assert!(text.contains("tessera_argon2_in_flight 1"));
    }
}
