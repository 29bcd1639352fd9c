//! Every metric name and label set, in one place.
//!
//! Names follow Prometheus conventions (units in the name, `_total` on counters). Label values
//! come from fixed sets, never from raw error strings. Counters with fixed labels are registered
//! at 0 by [`describe_edge`], so `rate()` and `increase()` work from the first scrape.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::envelope::Signal;
use crate::keys::{Forbidden, Unauthenticated};

pub const EDGE_REQUESTS: &str = "cowork_edge_requests_total";
pub const EDGE_RECEIVED_BYTES: &str = "cowork_edge_received_bytes_total";
pub const EDGE_REQUEST_DURATION: &str = "cowork_edge_request_duration_seconds";
pub const EDGE_AUTH_FAILURES: &str = "cowork_edge_auth_failures_total";
pub const EDGE_RATE_LIMITED: &str = "cowork_edge_rate_limited_total";
pub const EDGE_REJECTIONS: &str = "cowork_edge_rejections_total";
pub const EDGE_PUBLISHED_RECORDS: &str = "cowork_edge_published_records_total";
pub const EDGE_KAFKA_PRODUCE_DURATION: &str = "cowork_edge_kafka_produce_duration_seconds";
pub const EDGE_KAFKA_PRODUCE_ERRORS: &str = "cowork_edge_kafka_produce_errors_total";
pub const EDGE_KAFKA_READY: &str = "cowork_edge_kafka_ready";
pub const EDGE_INFLIGHT_BYTES: &str = "cowork_edge_inflight_bytes";
pub const EDGE_KEYS_LOADED: &str = "cowork_edge_keys_loaded";

/// Why a request was not accepted: the `reason` label of [`EDGE_REJECTIONS`].
pub const REJECTION_REASONS: &[&str] = &[
    "unauthenticated",
    "forbidden",
    "unsupported_media_type",
    "unsupported_encoding",
    "body_too_large",
    "decompressed_too_large",
    "bad_compression",
    "invalid_payload",
    "body_timeout",
    "rate_limited",
    "overloaded",
    "kafka_unavailable",
    "kafka_rejected",
];

/// Kafka produce error classes: the `class` label of [`EDGE_KAFKA_PRODUCE_ERRORS`].
pub const PRODUCE_ERROR_CLASSES: &[&str] = &["queue_full", "timeout", "too_large", "unavailable"];

/// Latency buckets in seconds, from sub-millisecond to the publish timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are non-empty")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// Describes the edge's metrics and registers fixed-label counters at 0.
pub fn describe_edge() {
    describe_counter!(
        EDGE_REQUESTS,
        "OTLP requests answered, by route, encoding, status and outcome"
    );
    describe_counter!(
        EDGE_RECEIVED_BYTES,
        Unit::Bytes,
        "Request body bytes, as sent (stage=wire) and after decompression (stage=decompressed)"
    );
    describe_histogram!(
        EDGE_REQUEST_DURATION,
        Unit::Seconds,
        "Time from request start to answer, by transport"
    );
    describe_counter!(EDGE_AUTH_FAILURES, "Requests refused by authentication, by reason");
    describe_counter!(
        EDGE_RATE_LIMITED,
        "Requests answered 429 by the per-key rate limit, by limit (events or bytes)"
    );
    describe_counter!(EDGE_REJECTIONS, "Requests not accepted, by reason");
    describe_counter!(
        EDGE_PUBLISHED_RECORDS,
        "Log records, data points or spans acknowledged by Kafka, by signal"
    );
    describe_histogram!(
        EDGE_KAFKA_PRODUCE_DURATION,
        Unit::Seconds,
        "Time from produce to Kafka's delivery report"
    );
    describe_counter!(EDGE_KAFKA_PRODUCE_ERRORS, "Failed Kafka produces, by class");
    describe_gauge!(
        EDGE_KAFKA_READY,
        "1 when the last Kafka probe or delivery succeeded, else 0"
    );
    describe_gauge!(
        EDGE_INFLIGHT_BYTES,
        Unit::Bytes,
        "Bytes held by in-flight requests (raw plus decompressed)"
    );
    describe_gauge!(EDGE_KEYS_LOADED, "API keys in the key file as last loaded");

    for stage in ["wire", "decompressed"] {
        counter!(EDGE_RECEIVED_BYTES, "stage" => stage).increment(0);
    }
    for u in Unauthenticated::ALL {
        counter!(EDGE_AUTH_FAILURES, "reason" => u.as_str()).increment(0);
    }
    for f in Forbidden::ALL {
        counter!(EDGE_AUTH_FAILURES, "reason" => f.as_str()).increment(0);
    }
    for limit in ["events", "bytes"] {
        counter!(EDGE_RATE_LIMITED, "limit" => limit).increment(0);
    }
    for reason in REJECTION_REASONS {
        counter!(EDGE_REJECTIONS, "reason" => *reason).increment(0);
    }
    for class in PRODUCE_ERROR_CLASSES {
        counter!(EDGE_KAFKA_PRODUCE_ERRORS, "class" => *class).increment(0);
    }
    for signal in Signal::ALL {
        counter!(EDGE_PUBLISHED_RECORDS, "signal" => signal.as_str()).increment(0);
    }
    gauge!(EDGE_INFLIGHT_BYTES).set(0.0);
}
