//! Every metric name, label vocabulary and observable event, in one place.
//!
//! Names follow Prometheus conventions (units in the name, `_total` on counters). Label values
//! come from the enums of [`labels`], never from raw error strings. Each observable event is a
//! struct in [`edge`] or [`consumer`] whose `emit()` writes the log line and the series together
//! (Vector's `internal_events` idea, without its registration machinery). Counters with fixed
//! labels are registered at 0 by [`describe_edge`] and [`describe_consumer`], so `rate()` and
//! `increase()` work from the first scrape. [`admin`] serves them.

pub mod admin;
pub mod consumer;
pub mod edge;
pub mod labels;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::clickhouse::Table;
use crate::keys::{Forbidden, Unauthenticated};
use crate::transform::normalize::TimeSource;
use labels::{
    BytesStage, DeadLetterClass, InsertErrorClass, MessageOutcome, ProduceErrorClass, RateLimit, RebalanceKind,
    RejectReason, SecurityKind,
};

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

pub const CONSUMER_MESSAGES: &str = "cowork_consumer_messages_total";
pub const CONSUMER_BYTES: &str = "cowork_consumer_bytes_total";
pub const CONSUMER_EVENTS: &str = "cowork_consumer_events_total";
pub const CONSUMER_DEAD_LETTERS: &str = "cowork_consumer_dead_letters_total";
pub const CONSUMER_COERCION_FAILURES: &str = "cowork_consumer_coercion_failures_total";
pub const CONSUMER_TIME_FALLBACKS: &str = "cowork_consumer_time_fallbacks_total";
pub const CONSUMER_BATCH_ROWS: &str = "cowork_consumer_batch_rows";
pub const CONSUMER_BATCH_BYTES: &str = "cowork_consumer_batch_bytes";
pub const CONSUMER_INSERT_DURATION: &str = "cowork_consumer_insert_duration_seconds";
pub const CONSUMER_INSERT_ERRORS: &str = "cowork_consumer_insert_errors_total";
pub const CONSUMER_PAUSED: &str = "cowork_consumer_paused";
pub const CONSUMER_PAUSED_PARTITIONS: &str = "cowork_consumer_paused_partitions";
pub const CONSUMER_COMMITTED_RECEIVED_AT: &str = "cowork_consumer_committed_received_at_seconds";
pub const CONSUMER_LAST_INSERT: &str = "cowork_consumer_last_insert_seconds";
pub const CONSUMER_REBALANCES: &str = "cowork_consumer_rebalances_total";
pub const CONSUMER_ROLLUPS_PENDING: &str = "cowork_consumer_rollups_pending_days";
pub const CONSUMER_ROLLUP_REFRESH_DURATION: &str = "cowork_consumer_rollup_refresh_duration_seconds";
pub const CONSUMER_ROLLUP_REFRESH_ERRORS: &str = "cowork_consumer_rollup_refresh_errors_total";
pub const CONSUMER_SECURITY_EVENTS: &str = "cowork_consumer_security_events_total";
/// Rendered by [`render_lag`], not through the recorder: a revoked partition's series must
/// disappear, and the recorder cannot forget a series.
pub const CONSUMER_LAG: &str = "cowork_consumer_lag";

/// The budget gauges, labelled [`labels::BUDGET_LABELS`], rendered by [`render_budgets`] (a
/// removed budget's series must disappear) from the rollup refresher's last evaluation.
pub const BUDGET_SPEND: &str = "cowork_budget_spend_usd";
pub const BUDGET_LIMIT: &str = "cowork_budget_limit_usd";
pub const BUDGET_SPEND_RATIO: &str = "cowork_budget_spend_ratio";
pub const BUDGET_PROJECTED_RATIO: &str = "cowork_budget_projected_ratio";
pub const BUDGET_EVALUATION_ERRORS: &str = "cowork_budget_evaluation_errors_total";

static TENANT_LABEL: AtomicBool = AtomicBool::new(true);

/// Turns the `tenant` label on or off (`metrics.tenant_label`).
pub fn set_tenant_label(enabled: bool) {
    TENANT_LABEL.store(enabled, Ordering::Relaxed);
}

/// The `tenant` label's value: the tenant, or `all` when the label is switched off.
pub fn tenant(tenant: &str) -> String {
    if TENANT_LABEL.load(Ordering::Relaxed) {
        tenant.to_string()
    } else {
        "all".to_string()
    }
}

/// The lag gauge in Prometheus text format: messages behind the high watermark, per assigned
/// (topic, partition).
pub fn render_lag(lag: &BTreeMap<(String, i32), i64>) -> String {
    let mut out = format!(
        "# HELP {CONSUMER_LAG} Messages in the partition not yet committed by this consumer group (assigned partitions only)\n# TYPE {CONSUMER_LAG} gauge\n"
    );
    for ((topic, partition), n) in lag {
        let _ = writeln!(out, "{CONSUMER_LAG}{{topic=\"{topic}\",partition=\"{partition}\"}} {n}");
    }
    out
}

/// A label value in the Prometheus text format: backslash, double quote and line feed escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The budget gauges of the last evaluation ([`consumer::BudgetsEvaluated`]) in Prometheus text
/// format: for each live budget, its month-to-date spend, its monthly limit, their ratio, and the
/// ratio of the linear month-end projection. Nothing but the headers before the first evaluation.
pub fn render_budgets() -> String {
    use crate::clickhouse::budgets::Status;
    let statuses = consumer::budget_statuses();
    type Gauge = (&'static str, &'static str, fn(&Status) -> f64);
    let gauges: [Gauge; 4] = [
        (BUDGET_SPEND, "Spend in USD in the UTC month so far", |s| s.spend_usd),
        (BUDGET_LIMIT, "Monthly budget in USD", |s| s.limit_usd),
        (
            BUDGET_SPEND_RATIO,
            "Spend in the month so far over the monthly budget (1 = used up)",
            |s| s.spend_ratio(),
        ),
        (
            BUDGET_PROJECTED_RATIO,
            "Month-end spend at the rate so far (spend over the elapsed share of the month) over the monthly budget",
            |s| s.projected_ratio(),
        ),
    ];
    let [tenant, scope, value] = labels::BUDGET_LABELS;
    let mut out = String::new();
    for (name, help, value_of) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}, per budget (labels bounded by the configured budgets)\n# TYPE {name} gauge"
        );
        for s in statuses.iter() {
            let _ = writeln!(
                out,
                "{name}{{{tenant}=\"{}\",{scope}=\"{}\",{value}=\"{}\"}} {}",
                label_value(&s.tenant),
                s.scope.as_str(),
                label_value(&s.scope_value),
                value_of(s)
            );
        }
    }
    out
}

/// Latency buckets in seconds, from sub-millisecond to the publish timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch sizes, in rows and in bytes: powers of four up to the batch limits.
const ROWS_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0];
const BYTES_BUCKETS: &[f64] = &[1024.0, 16384.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0];

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are non-empty")
                .set_buckets_for_metric(Matcher::Full(CONSUMER_BATCH_ROWS.into()), ROWS_BUCKETS)
                .expect("buckets are non-empty")
                .set_buckets_for_metric(Matcher::Full(CONSUMER_BATCH_BYTES.into()), BYTES_BUCKETS)
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

    for stage in BytesStage::ALL {
        counter!(EDGE_RECEIVED_BYTES, "stage" => stage.as_str()).increment(0);
    }
    for u in Unauthenticated::ALL {
        counter!(EDGE_AUTH_FAILURES, "reason" => u.as_str()).increment(0);
    }
    for f in Forbidden::ALL {
        counter!(EDGE_AUTH_FAILURES, "reason" => f.as_str()).increment(0);
    }
    for limit in RateLimit::ALL {
        counter!(EDGE_RATE_LIMITED, "limit" => limit.as_str()).increment(0);
    }
    for reason in RejectReason::ALL {
        counter!(EDGE_REJECTIONS, "reason" => reason.as_str()).increment(0);
    }
    for class in ProduceErrorClass::ALL {
        counter!(EDGE_KAFKA_PRODUCE_ERRORS, "class" => class.as_str()).increment(0);
    }
    gauge!(EDGE_INFLIGHT_BYTES).set(0.0);
}

/// Describes the consumer's metrics and registers fixed-label counters at 0.
pub fn describe_consumer() {
    describe_counter!(
        CONSUMER_MESSAGES,
        "Kafka messages handled, by outcome (inserted or dead_lettered)"
    );
    describe_counter!(
        CONSUMER_BYTES,
        Unit::Bytes,
        "Kafka message payload bytes consumed, as stored"
    );
    describe_counter!(CONSUMER_EVENTS, "Events decoded and inserted, by event name");
    describe_counter!(
        CONSUMER_DEAD_LETTERS,
        "Payloads sent to the dead-letter topic, by class"
    );
    describe_counter!(
        CONSUMER_COERCION_FAILURES,
        "Attribute values that could not be read as their type (typed column left empty; raw value kept)"
    );
    describe_counter!(
        CONSUMER_TIME_FALLBACKS,
        "Events not timed by timeUnixNano, by the time source used instead"
    );
    describe_histogram!(CONSUMER_BATCH_ROWS, "Events per inserted batch");
    describe_histogram!(CONSUMER_BATCH_BYTES, Unit::Bytes, "RowBinary bytes per inserted batch");
    describe_histogram!(
        CONSUMER_INSERT_DURATION,
        Unit::Seconds,
        "Time of one table's insert, by table"
    );
    describe_counter!(
        CONSUMER_INSERT_ERRORS,
        "Failed inserts, by table and class (retry or reject)"
    );
    describe_gauge!(CONSUMER_PAUSED, "1 while consumption is paused to retry an insert");
    describe_gauge!(
        CONSUMER_PAUSED_PARTITIONS,
        "Partitions paused while an insert is retried"
    );
    describe_gauge!(
        CONSUMER_LAST_INSERT,
        Unit::Seconds,
        "Unix time of the last successful batch insert"
    );
    describe_counter!(CONSUMER_REBALANCES, "Partition assignments and revocations, by kind");
    describe_gauge!(
        CONSUMER_ROLLUPS_PENDING,
        "(tenant, day)s holding rows newer than their rollups' last refresh"
    );
    describe_histogram!(
        CONSUMER_ROLLUP_REFRESH_DURATION,
        Unit::Seconds,
        "Time to re-aggregate every rollup of one (tenant, day)"
    );
    describe_counter!(
        CONSUMER_ROLLUP_REFRESH_ERRORS,
        "Rollup refresh rounds that failed (retried on the next round)"
    );
    counter!(CONSUMER_ROLLUP_REFRESH_ERRORS).increment(0);
    describe_counter!(
        BUDGET_EVALUATION_ERRORS,
        "Budget evaluations that failed (the budget gauges keep the last values; retried at the next check)"
    );
    counter!(BUDGET_EVALUATION_ERRORS).increment(0);
    gauge!(CONSUMER_ROLLUPS_PENDING).set(0.0);
    for kind in RebalanceKind::ALL {
        counter!(CONSUMER_REBALANCES, "kind" => kind.as_str()).increment(0);
    }
    describe_gauge!(
        CONSUMER_COMMITTED_RECEIVED_AT,
        Unit::Seconds,
        "Edge receive time (Unix seconds) of the newest event whose offset was committed"
    );
    for outcome in MessageOutcome::ALL {
        counter!(CONSUMER_MESSAGES, "outcome" => outcome.as_str()).increment(0);
    }
    counter!(CONSUMER_BYTES).increment(0);
    // CONSUMER_EVENTS is labelled by tenant too: its series appear with each tenant's first batch.
    for class in DeadLetterClass::ALL {
        counter!(CONSUMER_DEAD_LETTERS, "class" => class.as_str()).increment(0);
    }
    counter!(CONSUMER_COERCION_FAILURES).increment(0);
    describe_counter!(
        CONSUMER_SECURITY_EVENTS,
        "Security events in stored records, by kind (bypassPermissions, failed logins, MCP connection failures, \
         unofficial plugin installs, hook blocks, refusals, rejected tools)"
    );
    for kind in SecurityKind::ALL {
        counter!(CONSUMER_SECURITY_EVENTS, "kind" => kind.as_str()).increment(0);
    }
    for source in TimeSource::ALL.into_iter().filter(|s| *s != TimeSource::Record) {
        counter!(CONSUMER_TIME_FALLBACKS, "source" => source.as_str()).increment(0);
    }
    for table in Table::ALL {
        for class in InsertErrorClass::ALL {
            counter!(CONSUMER_INSERT_ERRORS, "table" => table.name(), "class" => class.as_str()).increment(0);
        }
    }
    gauge!(CONSUMER_PAUSED).set(0.0);
    gauge!(CONSUMER_PAUSED_PARTITIONS).set(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::budgets::{Scope, Status};

    #[test]
    fn budget_gauges_are_rendered_per_budget_with_escaped_labels() {
        assert!(
            !render_budgets().contains("cowork_budget_spend_usd{"),
            "nothing before the first evaluation"
        );
        consumer::BudgetsEvaluated {
            statuses: vec![Status {
                tenant: "acme".into(),
                scope: Scope::User,
                scope_value: "o\"neil\\x\ny".into(),
                limit_usd: 200.0,
                spend_usd: 170.0,
                projected_usd: 340.0,
            }],
        }
        .emit();
        let text = render_budgets();
        let labels = r#"{tenant="acme",scope="user",scope_value="o\"neil\\x\ny"}"#;
        for line in [
            format!("cowork_budget_spend_usd{labels} 170"),
            format!("cowork_budget_limit_usd{labels} 200"),
            format!("cowork_budget_spend_ratio{labels} 0.85"),
            format!("cowork_budget_projected_ratio{labels} 1.7"),
            "# TYPE cowork_budget_projected_ratio gauge".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert!(text.contains("(labels bounded by the configured budgets)"));
    }
}
