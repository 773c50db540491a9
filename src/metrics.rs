//! Prometheus metrics through `prometheus-client`, kept per server instance: each `Metrics`
//! owns its own `Registry` (not a process-global recorder), so several servers in one
//! process, as in the test suite, each count only their own work. Rendered in the
//! Prometheus text exposition format 0.0.4 at `GET /metrics`.
//!
//! The call sites name a metric and its labels (`increment("tessera_logins_total",
//! &[("outcome", "success")])`); every name is declared once in [`COUNTERS`],
//! [`HISTOGRAMS`] or [`GAUGES`] with its help text, and the README's metrics table lists
//! them. Gauges are sampled by the caller at scrape time and handed to [`Metrics::render`].

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as GaugeMetric;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A metric's label pairs, in the order the call site gives them (the order they are
/// rendered in).
type Labels = Vec<(&'static str, String)>;

/// Label pairs as a call site or a table here writes them.
type LabelPairs = &'static [(&'static str, &'static str)];

/// A gauge sampled at scrape time: name, labels, value.
pub type Gauge = (&'static str, Vec<(&'static str, String)>, f64);

/// Counters: the exposed name (with `_total`, which the encoder adds to the registered
/// name), help text (the registry adds the full stop), and the label sets that start at
/// zero. Starting the documented outcomes at zero means a series exists from the first
/// scrape (Prometheus' `rate()` sees the first increase, and a fresh instance still shows
/// the metric's type); labels with open-ended values (routes) start empty.
const COUNTERS: &[(&str, &str, &[LabelPairs])] = &[
    (
        "tessera_http_requests_total",
        "HTTP requests by route, method and status",
        &[],
    ),
    (
        "tessera_logins_total",
        "Password-step logins and passwordless passkey sign-ins by outcome",
        &[
            &[("outcome", "success")],
            &[("outcome", "second_factor_required")],
            &[("outcome", "trusted_device")],
            &[("outcome", "enrolment_required")],
            &[("outcome", "account_disabled")],
            &[("outcome", "wrong_password")],
            &[("outcome", "unknown_account")],
            &[("outcome", "passkey")],
        ],
    ),
    (
        "tessera_second_factor_checks_total",
        "Second-factor checks by method and outcome",
        &[
            &[("method", "totp"), ("outcome", "success")],
            &[("method", "totp"), ("outcome", "failure")],
            &[("method", "backup_code"), ("outcome", "success")],
            &[("method", "backup_code"), ("outcome", "failure")],
            &[("method", "passkey"), ("outcome", "success")],
            &[("method", "passkey"), ("outcome", "failure")],
        ],
    ),
    (
        "tessera_second_factor_lockouts_total",
        "Second-factor locks applied",
        &[&[]],
    ),
    (
        "tessera_backup_codes_used_total",
        "Backup codes consumed",
        &[&[]],
    ),
    (
        "tessera_refreshes_total",
        "Refresh-token exchanges by outcome",
        &[&[("outcome", "success")], &[("outcome", "reuse_detected")]],
    ),
    (
        "tessera_notification_deliveries_total",
        "Notification delivery attempts (webhooks, emails) by channel kind and outcome: delivered, failed (retried later) or dead (given up)",
        &[
            &[("channel", "webhook"), ("outcome", "delivered")],
            &[("channel", "webhook"), ("outcome", "failed")],
            &[("channel", "webhook"), ("outcome", "dead")],
            &[("channel", "email"), ("outcome", "delivered")],
            &[("channel", "email"), ("outcome", "failed")],
            &[("channel", "email"), ("outcome", "dead")],
        ],
    ),
];

/// Latency histograms (in seconds, over [`BUCKETS`]) and their help text.
const HISTOGRAMS: &[(&str, &str)] = &[
    (
        "tessera_http_request_duration_seconds",
        "HTTP request latency by route and method",
    ),
    (
        "tessera_argon2_duration_seconds",
        "Time to hash or verify one password, queueing included",
    ),
];

/// Gauges sampled at scrape time and their help text.
const GAUGES: &[(&str, &str)] = &[
    (
        "tessera_argon2_in_flight",
        "Password hashes running or waiting for a slot",
    ),
    (
        "tessera_use_cases_in_flight",
        "Use cases running on their own tasks, detached from their requests",
    ),
    (
        "tessera_trusted_devices_active",
        "Trusted devices not yet expired",
    ),
    (
        "tessera_db_pool_connections",
        "Database pool connections by state",
    ),
    (
        "tessera_outbox_pending",
        "Notifications waiting to be delivered (queue depth)",
    ),
    (
        "tessera_outbox_oldest_pending_age_seconds",
        "Age of the oldest notification waiting to be delivered (0 when none)",
    ),
];

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;
/// Every gauge here counts something (hashes, tasks, devices, connections): whole numbers.
type GaugeFamily = Family<Labels, GaugeMetric>;

pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, Family<Labels, Counter>>,
    histograms: HashMap<&'static str, HistogramFamily>,
    gauges: HashMap<&'static str, GaugeFamily>,
    /// One scrape at a time: a scrape replaces the gauges' samples, then encodes them.
    scrape: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let counters = COUNTERS
            .iter()
            .map(|&(name, help, initial)| {
                let family = Family::<Labels, Counter>::default();
                for pairs in initial {
                    let _ = family.get_or_create(&labels(pairs));
                }
                // The encoder appends `_total` to a counter's registered name.
                let registered = name.strip_suffix("_total").unwrap_or(name);
                registry.register(registered, help, family.clone());
                (name, family)
            })
            .collect();
        let histograms = HISTOGRAMS
            .iter()
            .map(|&(name, help)| {
                let family: HistogramFamily =
                    Family::new_with_constructor(latency_histogram as fn() -> Histogram);
                registry.register(name, help, family.clone());
                (name, family)
            })
            .collect();
        let gauges = GAUGES
            .iter()
            .map(|&(name, help)| {
                let family = GaugeFamily::default();
                registry.register(name, help, family.clone());
                (name, family)
            })
            .collect();
        Self {
            registry,
            counters,
            histograms,
            gauges,
            scrape: Mutex::new(()),
        }
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    /// Adds one to a counter. A name missing from [`COUNTERS`] is a programming error:
    /// caught in debug builds, ignored in release ones.
    pub fn increment(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        match self.counters.get(name) {
            Some(family) => {
                family.get_or_create(&labels(pairs)).inc();
            }
            None => debug_assert!(false, "unknown counter {name}"),
        }
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
        match self.histograms.get(name) {
            Some(family) => family.get_or_create(&labels(pairs)).observe(seconds),
            None => debug_assert!(false, "unknown histogram {name}"),
        }
    }

    /// The exposition text; `gauges` are sampled by the caller at scrape time, and a gauge
    /// the caller could not sample (say, the database did not answer) is left out rather
    /// than shown with an old value.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        for family in self.gauges.values() {
            family.clear();
        }
        for (name, pairs, value) in gauges {
            match self.gauges.get(name) {
                Some(family) => {
                    // Counts, sampled as `f64` by the caller: whole and far below `i64::MAX`.
                    family.get_or_create(pairs).set(value.round() as i64);
                }
                None => debug_assert!(false, "unknown gauge {name}"),
            }
        }
        let mut out = String::new();
        // Writing into a `String` cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
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
