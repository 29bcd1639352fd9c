//! Every signal lands: OTLP metrics and traces from the real OpenTelemetry JS SDK, through the
//! edge, a real Apache Kafka (the suite's shared broker, topics of the test's own) and the
//! consumer, into ClickHouse 18.16 (`metric_points`, `spans`, `metrics_daily`, and the
//! `productivity_daily` and `cost_reconciliation` views).
//!
//! The figures to reproduce come from the generator itself (`tools/otel-client/signals.mjs
//! --expected`): the same seed gives the same activity in both temporalities, so a DELTA export
//! and a CUMULATIVE export of it must give the same totals. Resends, a replay by a new group and
//! undecodable payloads must change nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::clickhouse::{self, rows};
use common::kafka::{self, InProcessConsumer};
use common::signals::{assert_same, expected_users, fixtures, productivity, read_json};
use common::{CorpusBody, TestEdge};
use cowork_ingest::config::Config;
use serde_json::Value;

fn exporter_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/otel-client")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Span aggregates of `tenant`, deduplicated on (trace_id, span_id), in the generator's shape.
async fn span_figures(config: &Config, tenant: &str) -> Value {
    let from = format!("(SELECT * FROM {{db}}.spans FINAL WHERE tenant = '{tenant}')");
    let one = |sql: String| {
        let c = config.clone();
        async move { rows(&c, &sql).await }
    };
    let count = one(format!("SELECT count() FROM {from}")).await[0][0]
        .parse::<u64>()
        .unwrap();
    let by_name: BTreeMap<String, u64> =
        clickhouse::pairs(one(format!("SELECT name, count() FROM {from} GROUP BY name")).await);
    let stop: BTreeMap<String, u64> = clickhouse::pairs(
        one(format!(
            "SELECT stop_reason, count() FROM {from} WHERE span_type = 'llm_request' AND stop_reason != '' GROUP BY stop_reason"
        ))
        .await,
    );
    let ttft: BTreeMap<String, Value> = one(format!(
        "SELECT model, count(), sum(ttft_ms) FROM {from} WHERE span_type = 'llm_request' AND ttft_ms IS NOT NULL GROUP BY model"
    ))
    .await
    .into_iter()
    .map(|r| {
        (
            r[0].clone(),
            serde_json::json!({"count": r[1].parse::<u64>().unwrap(), "sum": r[2].parse::<f64>().unwrap()}),
        )
    })
    .collect();
    let blocked = one(format!(
        "SELECT sum(duration_ms) FROM {from} WHERE span_type = 'tool.blocked_on_user'"
    ))
    .await[0][0]
        .parse::<f64>()
        .unwrap();
    let errors = one(format!("SELECT count() FROM {from} WHERE status = 'error'")).await[0][0]
        .parse::<u64>()
        .unwrap();
    serde_json::json!({
        "count": count, "by_name": by_name, "ttft_ms_by_model": ttft,
        "blocked_on_user_ms": blocked, "stop_reasons": stop, "errors": errors,
    })
}

fn assert_spans(got: &Value, want: &Value, context: &str) {
    for key in ["count", "by_name", "stop_reasons", "errors"] {
        assert_eq!(got[key], want[key], "{context}: spans {key}");
    }
    let (g, w) = (
        got["blocked_on_user_ms"].as_f64().unwrap(),
        want["blocked_on_user_ms"].as_f64().unwrap(),
    );
    assert!((g - w).abs() < 1e-6, "{context}: blocked on user {g} != {w}");
    let wt = want["ttft_ms_by_model"].as_object().unwrap();
    let gt = got["ttft_ms_by_model"].as_object().unwrap();
    assert_eq!(
        gt.keys().collect::<Vec<_>>(),
        wt.keys().collect::<Vec<_>>(),
        "{context}: ttft models"
    );
    for (model, w) in wt {
        assert_eq!(gt[model]["count"], w["count"], "{context}: ttft count of {model}");
        let (g, w) = (gt[model]["sum"].as_f64().unwrap(), w["sum"].as_f64().unwrap());
        assert!((g - w).abs() < 1e-6, "{context}: ttft sum of {model}: {g} != {w}");
    }
}

async fn post(edge: &TestEdge, path: &str, bearer: &str, bodies: &[CorpusBody]) {
    assert!(!bodies.is_empty(), "no bodies for {path}");
    common::post_bodies(&http(), edge, path, bearer, bodies).await;
}

/// Waits until every topic is consumed and every rollup refreshed.
async fn settle(config: &Config) {
    kafka::wait_caught_up(config, Duration::from_secs(90)).await;
    clickhouse::wait_rollups(config, Duration::from_secs(90)).await;
}

/// The captured SDK exports (DELTA protobuf for tenant acme, CUMULATIVE JSON for globex, and
/// their spans) give the generator's figures, and the same figures in both temporalities. Sent
/// again, and replayed by a new consumer group, they still do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_metrics_and_spans_are_exact_in_both_temporalities_under_resends_and_replays() {
    let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let root = fixtures();
    let acme = edge.bearer();
    let globex = format!("Bearer {}", edge.keys.other_tenant);
    let send_all = || async {
        post(
            &edge,
            "/v1/metrics",
            &acme,
            &common::corpus_at(&root, "metrics-proto-delta"),
        )
        .await;
        post(&edge, "/v1/traces", &acme, &common::corpus_at(&root, "traces-proto")).await;
        post(
            &edge,
            "/v1/metrics",
            &globex,
            &common::corpus_at(&root, "metrics-json-cumulative"),
        )
        .await;
        post(&edge, "/v1/traces", &globex, &common::corpus_at(&root, "traces-json")).await;
    };
    send_all().await;
    settle(&config).await;

    let delta = read_json(&root.join("expected-delta.json"));
    let cumulative = read_json(&root.join("expected-cumulative.json"));
    let want = expected_users(&delta);
    assert_same(&expected_users(&cumulative), &want, "the generator's two runs");
    let check = |context: &'static str| {
        let (config, want, delta, cumulative) = (config.clone(), want.clone(), delta.clone(), cumulative.clone());
        async move {
            assert_same(
                &productivity(&config, "acme").await,
                &want,
                &format!("{context}: delta"),
            );
            assert_same(
                &productivity(&config, "globex").await,
                &want,
                &format!("{context}: cumulative"),
            );
            assert_spans(&span_figures(&config, "acme").await, &delta["spans"], context);
            assert_spans(&span_figures(&config, "globex").await, &cumulative["spans"], context);
        }
    };
    check("first delivery").await;
    let stored = clickhouse::count(&config, "metric_points FINAL").await;
    assert!(stored > 0);

    // Every point keeps its metric's shape and the documented attributes, typed.
    let shapes = rows(
        &config,
        "SELECT DISTINCT tenant, kind, temporality, monotonic, value_type FROM {db}.metric_points ORDER BY tenant",
    )
    .await;
    assert_eq!(
        shapes,
        [
            ["acme", "sum", "delta", "1", "double"].map(String::from).to_vec(),
            ["globex", "sum", "cumulative", "1", "double"]
                .map(String::from)
                .to_vec(),
        ],
        "Claude Code's counters are monotonic double sums"
    );
    let suffixed = rows(
        &config,
        "SELECT countIf(model LIKE '%[%'), countIf(model_variant = '1m') FROM {db}.metric_points",
    )
    .await;
    assert_eq!(suffixed[0][0], "0", "the [1m] suffix is split off the model");
    assert_ne!(suffixed[0][1], "0", "and kept as the variant");
    let untyped = rows(
        &config,
        "SELECT count() FROM {db}.metric_points WHERE has(attribute_keys, 'session.id') OR has(attribute_keys, 'model')",
    )
    .await;
    assert_eq!(untyped[0][0], "0", "typed attributes are not repeated in the arrays");

    // The same exports again (an exporter retrying after lost responses): nothing changes.
    send_all().await;
    settle(&config).await;
    assert_eq!(clickhouse::count(&config, "metric_points FINAL").await, stored);
    assert!(
        clickhouse::count(&config, "metric_points").await > stored || {
            // The copies may already have merged away; the Kafka topic shows they were sent.
            let (c, t) = (config.clone(), config.kafka.metrics_topic.clone());
            let n = tokio::task::spawn_blocking(move || kafka::read_topic(&c, &t, Duration::from_secs(30)).len())
                .await
                .unwrap();
            n == 2 * common::corpus_at(&root, "metrics-proto-delta").len()
                + 2 * common::corpus_at(&root, "metrics-json-cumulative").len()
        },
        "the resend reached the consumer"
    );
    check("after a resend").await;

    // A new consumer group replays all three topics from the beginning into the same tables.
    consumer.stop().await;
    let mut replay = config.clone();
    replay.consumer.group_id = format!("{}-replay", config.consumer.group_id);
    let consumer = InProcessConsumer::start(replay.clone()).await;
    settle(&replay).await;
    check("after a replay by a new group").await;

    // Cost reconciliation: with no api_request events, the events side is empty.
    let rec = rows(
        &config,
        "SELECT round(sum(metric_cost_usd), 6), sum(event_cost_usd), sum(metric_input_tokens) FROM {db}.cost_reconciliation WHERE tenant = 'acme'",
    )
    .await;
    let cost: f64 = want.values().map(|f| f["cost_usd"]).sum();
    let input: f64 = want.values().map(|f| f["input_tokens"]).sum();
    assert!((rec[0][0].parse::<f64>().unwrap() - cost).abs() < 1e-6, "{rec:?}");
    assert_eq!(rec[0][1], "0");
    assert_eq!(rec[0][2].parse::<f64>().unwrap(), input);

    // `forget` erases a user's metric points, spans and rollup rows too.
    let user = want.keys().next().unwrap().clone();
    let store = cowork_ingest::clickhouse::store::Store::new(&config.clickhouse);
    let removed = cowork_ingest::clickhouse::erasure::forget(&store, "acme", &user)
        .await
        .unwrap();
    let removed: BTreeMap<&str, u64> = removed.into_iter().collect();
    assert!(
        removed["metric_points"] > 0 && removed["metrics_daily"] > 0,
        "{removed:?}"
    );
    for table in ["metric_points", "spans", "metrics_daily", "productivity_daily"] {
        let left = clickhouse::count(
            &config,
            &format!(
                "{table} WHERE tenant = 'acme' AND user_email = '{}'",
                user.replace('\'', "\\'")
            ),
        )
        .await;
        assert_eq!(left, 0, "{table} still holds {user}");
    }
    assert!(
        clickhouse::count(&config, "metric_points WHERE tenant = 'globex'").await > 0,
        "other tenants keep theirs"
    );
    consumer.stop().await;
    edge.stop().await;
}

/// Runs `signals.mjs` against the edge: the real SDK exporters over HTTP.
async fn generate(edge: &TestEdge, bearer: &str, protocol: &str, temporality: &str, out: &Path) -> Value {
    let dir = exporter_dir();
    assert!(
        dir.join("node_modules/@opentelemetry/exporter-metrics-otlp-proto")
            .exists(),
        "the JS exporters are not installed: run scripts/test (it runs `npm ci` in tools/otel-client)"
    );
    let run = tokio::process::Command::new("node")
        .current_dir(&dir)
        .args(["signals.mjs", "--metrics-url", &edge.url("/v1/metrics")])
        .args(["--traces-url", &edge.url("/v1/traces")])
        .args(["--protocol", protocol, "--temporality", temporality])
        .args(["--seed", "21", "--sessions", "5", "--intervals", "3"])
        .args(["--header", &format!("Authorization={bearer}")])
        .args(["--expected", out.to_str().unwrap()])
        .kill_on_drop(true)
        .output();
    let out_json = match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(r) => r.expect("node runs"),
        Err(_) => panic!("signals.mjs did not finish within 120 s"),
    };
    let stdout = String::from_utf8_lossy(&out_json.stdout);
    assert!(
        out_json.status.success() && stdout.contains("failed exports: 0"),
        "{protocol}/{temporality}: {stdout}{}",
        String::from_utf8_lossy(&out_json.stderr)
    );
    read_json(out)
}

/// The real SDK exporting live, DELTA over http/protobuf and CUMULATIVE over http/json with a
/// process restart: both runs of the same activity give the same productivity totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_sdk_gives_the_same_totals_in_both_temporalities() {
    let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let globex = format!("Bearer {}", edge.keys.other_tenant);
    let delta = generate(&edge, &edge.bearer(), "proto", "delta", &dir.path().join("d.json")).await;
    let cumulative = generate(&edge, &globex, "json", "cumulative", &dir.path().join("c.json")).await;
    settle(&config).await;
    let want = expected_users(&delta);
    assert_same(&expected_users(&cumulative), &want, "the generator's two runs");
    assert_same(&productivity(&config, "acme").await, &want, "live delta");
    assert_same(&productivity(&config, "globex").await, &want, "live cumulative");
    assert_spans(
        &span_figures(&config, "acme").await,
        &delta["spans"],
        "live proto spans",
    );
    assert_spans(
        &span_figures(&config, "globex").await,
        &cumulative["spans"],
        "live json spans",
    );
    let restarts = rows(
        &config,
        "SELECT uniqExact(start_time_unix_nano) > uniqExact(session_id) FROM {db}.metric_points WHERE tenant = 'globex'",
    )
    .await;
    assert_eq!(restarts[0][0], "1", "a restarted process starts a new series");
    consumer.stop().await;
    edge.stop().await;
}

/// Payloads the edge accepts (their structure is sound down to each metric and span) but the
/// consumer cannot decode go to the dead-letter topic with a reason, are counted, and do not
/// hold up the good payloads behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_metrics_and_spans_are_dead_lettered() {
    let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let client = http();
    let bad = [
        (
            "/v1/metrics",
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"claude_code.commit.count","sum":{"dataPoints":3}}]}]}]}"#,
        ),
        (
            "/v1/traces",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5,"name":"claude_code.tool"}]}]}]}"#,
        ),
    ];
    for (path, body) in bad {
        let r = client
            .post(edge.url(path))
            .header("authorization", edge.bearer())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{path}: the edge checks structure only down to each record"
        );
    }
    let root = fixtures();
    post(
        &edge,
        "/v1/metrics",
        &edge.bearer(),
        &common::corpus_at(&root, "metrics-proto-delta"),
    )
    .await;
    post(
        &edge,
        "/v1/traces",
        &edge.bearer(),
        &common::corpus_at(&root, "traces-proto"),
    )
    .await;
    settle(&config).await;
    let expected = read_json(&root.join("expected-delta.json"));
    assert_same(
        &productivity(&config, "acme").await,
        &expected_users(&expected),
        "good payloads",
    );
    let (c, dlq) = (config.clone(), config.consumer.dlq_topic.clone());
    let dead = tokio::task::spawn_blocking(move || kafka::read_topic(&c, &dlq, Duration::from_secs(30)))
        .await
        .unwrap();
    let mut payloads: Vec<String> = dead
        .iter()
        .map(|d| String::from_utf8_lossy(&d.2).into_owned())
        .collect();
    payloads.sort();
    let mut want: Vec<String> = bad.iter().map(|(_, b)| b.to_string()).collect();
    want.sort();
    assert_eq!(payloads, want, "both bad payloads, byte for byte, and nothing else");
    let metrics = kafka::scrape(consumer.admin).await;
    assert_eq!(
        kafka::metric_sum(&metrics, "cowork_consumer_dead_letters_total{class=\"undecodable\"}"),
        2.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("cowork_consumer_events_total{event=\"metric_point\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("cowork_consumer_committed_received_at_seconds{signal=\"traces\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("topic=\"{}\"", config.kafka.metrics_topic)),
        "metrics-topic lag: {metrics}"
    );
    consumer.stop().await;
    edge.stop().await;
}

/// A cumulative series across midnight, restarted on the second day, beside the DELTA export of
/// the same activity: `metrics_daily` gives each day the same increase for both, and a late
/// point of the first day still counts on the first day only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_series_count_their_increase_per_day_across_midnight_and_restarts() {
    use cowork_ingest::clickhouse::rows::Rows;
    use cowork_ingest::clickhouse::store::Store;
    use cowork_ingest::clickhouse::{rollups, Table};
    use cowork_ingest::config::ContentPolicy;
    use cowork_ingest::consumer::{Decoder, Envelope};
    use cowork_ingest::otlp::{Compression, ContentType, Signal};
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use prost::Message;

    const DAY: u64 = 86_400_000_000_000;
    let midnight = 20_788 * DAY; // 2026-12-01
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    // (start, time, value) points of `claude_code.lines_of_code.count{type=added}`.
    let request = |temporality: i32, points: &[(u64, u64, f64)]| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", "claude-code")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "claude_code.lines_of_code.count".into(),
                        data: Some(metric::Data::Sum(Sum {
                            aggregation_temporality: temporality,
                            is_monotonic: true,
                            data_points: points
                                .iter()
                                .map(|(start, time, v)| NumberDataPoint {
                                    attributes: vec![
                                        kv("type", "added"),
                                        kv("user.email", "ana@acme.example"),
                                        kv("session.id", "s1"),
                                    ],
                                    start_time_unix_nano: *start,
                                    time_unix_nano: *time,
                                    value: Some(number_data_point::Value::AsDouble(*v)),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let m = |minutes: i64| (midnight as i64 + minutes * 60_000_000_000) as u64;
    let (start, restart) = (m(-120), m(30));
    // Day 1: +4 then +6 (10). Day 2: +5 before the restart, then the new process +3 and +4.
    let cumulative = [
        request(2, &[(start, m(-60), 4.0), (start, m(-1), 10.0)]),
        request(2, &[(start, m(10), 15.0), (restart, m(40), 3.0), (restart, m(50), 7.0)]),
    ];
    let delta = [
        request(1, &[(start, m(-60), 4.0)]),
        request(
            1,
            &[
                (m(-60), m(-1), 6.0),
                (m(-1), m(10), 5.0),
                (restart, m(40), 3.0),
                (m(40), m(50), 4.0),
            ],
        ),
    ];
    let late = request(2, &[(start, m(-30), 7.0)]); // day 1, between the two day-1 points

    let config = clickhouse::migrated(Config::default(), &clickhouse::shared().url).await;
    let store = Store::new(&config.clickhouse);
    let mut decoder = Decoder::new(1 << 20, Default::default());
    let policy = ContentPolicy::default();
    let mut load = |tenant: &'static str, bodies: Vec<Vec<u8>>| {
        let mut rows = Rows::default();
        for (i, body) in bodies.iter().enumerate() {
            let env = Envelope {
                signal: Signal::Metrics,
                tenant,
                content_type: ContentType::Protobuf,
                compression: Compression::Identity,
                received_at_ns: midnight + 2 * DAY,
                ..Envelope::default()
            };
            decoder.rows_into(&env, body, 0, i as i64, &policy, &mut rows).unwrap();
        }
        rows
    };
    let daily = |tenant: &'static str| {
        let c = config.clone();
        async move {
            rows(
                &c,
                &format!(
                    "SELECT toString(day), sum(lines_added) FROM {{db}}.productivity_daily WHERE tenant = '{tenant}' GROUP BY day ORDER BY day"
                ),
            )
            .await
        }
    };
    let want = vec![
        vec!["2026-11-30".to_string(), "10".to_string()],
        vec!["2026-12-01".to_string(), "12".to_string()],
    ];
    for (tenant, bodies) in [("cum", cumulative.to_vec()), ("del", delta.to_vec())] {
        let r = load(tenant, bodies);
        let t = Table::MetricPoints;
        store
            .insert(t.name(), t.columns(), r.buf(t).to_vec().into())
            .await
            .unwrap();
    }
    rollups::rebuild(&store, None, None, None, &mut |_| {}).await.unwrap();
    assert_eq!(
        daily("cum").await,
        want,
        "cumulative: each day's increase; the restart starts over"
    );
    assert_eq!(daily("del").await, want, "delta: the same activity");
    // A late day-1 point (below the day's last value) changes nothing; refreshing both days again
    // (the consumer marks the day after a cumulative point's day) agrees.
    let r = load("cum", vec![late]);
    let t = Table::MetricPoints;
    store
        .insert(t.name(), t.columns(), r.buf(t).to_vec().into())
        .await
        .unwrap();
    rollups::rebuild(&store, None, Some("cum"), None, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(daily("cum").await, want, "after a late point");
}

/// Other OTel clients share the endpoint: gauges (`asInt` and `asDouble`), histograms with
/// their buckets, exponential histograms and summaries are stored with their shape, next to
/// Claude Code's sums, and spans with every typed attribute round-trip through RowBinary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_kind_and_span_shape_is_stored() {
    use cowork_ingest::clickhouse::rows::Rows;
    use cowork_ingest::clickhouse::store::Store;
    use cowork_ingest::clickhouse::Table;
    use cowork_ingest::config::ContentPolicy;
    use cowork_ingest::consumer::{Decoder, Envelope};
    use cowork_ingest::otlp::{Compression, ContentType, Signal};
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    let t = 1_796_115_600_000_000_000u64;
    let kv = |k: &str, v: any_value::Value| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let str_ = |s: &str| any_value::Value::StringValue(s.into());
    let metric = |name: &str, data: metric::Data| Metric {
        name: name.into(),
        unit: "ms".into(),
        data: Some(data),
        ..Default::default()
    };
    let number = |v: number_data_point::Value| NumberDataPoint {
        attributes: vec![kv("host", str_("a"))],
        time_unix_nano: t,
        value: Some(v),
        ..Default::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", str_("other-sdk"))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric(
                        "queue.depth",
                        metric::Data::Gauge(Gauge {
                            data_points: vec![
                                number(number_data_point::Value::AsInt(-7)),
                                NumberDataPoint {
                                    time_unix_nano: t + 1,
                                    ..number(number_data_point::Value::AsDouble(2.5))
                                },
                            ],
                        }),
                    ),
                    metric(
                        "request.latency",
                        metric::Data::Histogram(Histogram {
                            aggregation_temporality: 1,
                            data_points: vec![HistogramDataPoint {
                                start_time_unix_nano: t - 60_000_000_000,
                                time_unix_nano: t,
                                count: 6,
                                sum: Some(930.0),
                                min: Some(5.0),
                                max: Some(500.0),
                                bucket_counts: vec![1, 3, 2],
                                explicit_bounds: vec![10.0, 100.0],
                                ..Default::default()
                            }],
                        }),
                    ),
                    metric(
                        "request.size",
                        metric::Data::ExponentialHistogram(ExponentialHistogram {
                            aggregation_temporality: 2,
                            data_points: vec![ExponentialHistogramDataPoint {
                                time_unix_nano: t,
                                count: 4,
                                sum: Some(40.0),
                                ..Default::default()
                            }],
                        }),
                    ),
                    metric(
                        "gc.pause",
                        metric::Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                time_unix_nano: t,
                                count: 3,
                                sum: 12.0,
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", str_("claude-code"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0xAB; 16],
                    span_id: vec![0x01; 8],
                    parent_span_id: vec![0x02; 8],
                    name: "claude_code.llm_request".into(),
                    kind: span::SpanKind::Internal as i32,
                    start_time_unix_nano: t,
                    end_time_unix_nano: t + 2_500_000_000,
                    attributes: vec![
                        kv("model", str_("claude-opus-4-6[1m]")),
                        kv("ttft_ms", any_value::Value::IntValue(812)),
                        kv("attempt", any_value::Value::IntValue(2)),
                        kv("success", any_value::Value::BoolValue(false)),
                        kv("status_code", any_value::Value::IntValue(529)),
                        kv("error", str_("overloaded")),
                        kv("user_prompt", str_("secret")),
                        kv("new_context", str_("also secret")),
                        kv("llm_request.context", str_("interaction")),
                    ],
                    status: Some(Status {
                        code: 2,
                        message: "overloaded".into(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };

    let config = clickhouse::migrated(Config::default(), &clickhouse::shared().url).await;
    let store = Store::new(&config.clickhouse);
    let mut decoder = Decoder::new(1 << 20, Default::default());
    let mut encoded = Rows::default();
    let policy = ContentPolicy {
        prompt: cowork_ingest::transform::content::ContentAction::Drop,
        ..ContentPolicy::default()
    };
    for (signal, body) in [
        (Signal::Metrics, metrics.encode_to_vec()),
        (Signal::Traces, spans.encode_to_vec()),
    ] {
        let env = Envelope {
            signal,
            tenant: "acme",
            content_type: ContentType::Protobuf,
            compression: Compression::Identity,
            received_at_ns: t,
            ..Envelope::default()
        };
        decoder.rows_into(&env, &body, 0, 0, &policy, &mut encoded).unwrap();
    }
    for table in [Table::MetricPoints, Table::Spans] {
        store
            .insert(table.name(), table.columns(), encoded.buf(table).to_vec().into())
            .await
            .unwrap_or_else(|e| panic!("{table}: ClickHouse takes the encoded rows: {e}"));
    }
    let points = rows(
        &config,
        "SELECT metric, kind, temporality, value, value_type, count, ifNull(sum, -1), ifNull(min, -1), ifNull(max, -1), \
         toString(bucket_counts), toString(explicit_bounds), service_name, toString(attribute_keys) \
         FROM {db}.metric_points ORDER BY metric, time_unix_nano",
    )
    .await;
    let want: Vec<Vec<&str>> = vec![
        vec![
            "gc.pause",
            "summary",
            "unspecified",
            "12",
            "double",
            "3",
            "12",
            "-1",
            "-1",
            "[]",
            "[]",
            "other-sdk",
            "[]",
        ],
        vec![
            "queue.depth",
            "gauge",
            "unspecified",
            "-7",
            "int",
            "0",
            "-1",
            "-1",
            "-1",
            "[]",
            "[]",
            "other-sdk",
            "['host']",
        ],
        vec![
            "queue.depth",
            "gauge",
            "unspecified",
            "2.5",
            "double",
            "0",
            "-1",
            "-1",
            "-1",
            "[]",
            "[]",
            "other-sdk",
            "['host']",
        ],
        vec![
            "request.latency",
            "histogram",
            "delta",
            "930",
            "double",
            "6",
            "930",
            "5",
            "500",
            "[1,3,2]",
            "[10,100]",
            "other-sdk",
            "[]",
        ],
        vec![
            "request.size",
            "exponential_histogram",
            "cumulative",
            "40",
            "double",
            "4",
            "40",
            "-1",
            "-1",
            "[]",
            "[]",
            "other-sdk",
            "[]",
        ],
    ];
    assert_eq!(points, want);
    let span = rows(
        &config,
        "SELECT trace_id, span_id, parent_span_id, duration_ms, model, model_variant, ttft_ms, attempt, success, \
         http_status_code, error, status, status_message, isNull(user_prompt), toString(attribute_keys) FROM {db}.spans",
    )
    .await;
    assert_eq!(
        span,
        [[
            "ab".repeat(16).as_str(),
            &"01".repeat(8),
            &"02".repeat(8),
            "2500",
            "claude-opus-4-6",
            "1m",
            "812",
            "2",
            "0",
            "529",
            "overloaded",
            "error",
            "overloaded",
            "1",
            "['llm_request.context']",
        ]
        .map(String::from)
        .to_vec()],
        "typed, the prompt dropped by the policy, new_context (prompt content) dropped from the arrays"
    );
}
