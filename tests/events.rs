//! Who, which team, what happened (issue 12): log records of every documented event kind, shaped
//! as the docs describe them and put on the wire by the real OpenTelemetry JS SDK
//! (`tests/fixtures/events`, made by `tools/otel-client/events.mjs`), sent through the edge, a
//! real Apache Kafka and the consumer into ClickHouse 18.16, and loaded into current ClickHouse
//! (chdb). Every typed row must be the one `expected.json` holds: the person and where it came
//! from, the team columns by their precedence, numbers sent as strings read as numbers, a
//! missing `success` as NULL, and the events nobody documented in `events` alone.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::clickhouse::{self, raw_rows, rows, unescape};
use common::kafka::{self, InProcessConsumer};
use common::{CorpusBody, TestEdge};
use cowork_ingest::clickhouse::Table;
use cowork_ingest::config::Config;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

/// The captured bodies of one folder (`proto` or `json`), in file order.
fn bodies(folder: &str) -> Vec<CorpusBody> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb" || e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| CorpusBody {
            name: p.display().to_string(),
            body: std::fs::read(&p).unwrap(),
            content_type: if folder == "proto" {
                "application/x-protobuf"
            } else {
                "application/json"
            }
            .into(),
            content_encoding: None,
        })
        .collect()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The expected rows' columns, in the order of the first row (every row has the same keys).
fn columns(rows: &[Value]) -> Vec<String> {
    rows[0].as_object().unwrap().keys().cloned().collect()
}

/// The SELECT of `columns` (arrays joined with `|`) from `table`, one row per event, ordered
/// by time (unique over the fixtures).
fn select(table: &str, columns: &[String], tenant: &str) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            "workspace_host_paths" => "arrayStringConcat(workspace_host_paths, '|')".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!(
        "SELECT {} FROM {{db}}.{table} FINAL WHERE tenant = '{tenant}' ORDER BY timestamp",
        list.join(", ")
    )
}

/// Whether a TabSeparated field holds the expected JSON value.
fn holds(want: &Value, got: &str) -> bool {
    match want {
        Value::Null => got == "\\N",
        Value::Bool(b) => got == if *b { "1" } else { "0" },
        Value::Number(n) => got
            .parse::<f64>()
            .is_ok_and(|g| (g - n.as_f64().unwrap()).abs() <= 1e-9 * g.abs().max(1.0)),
        Value::String(s) => unescape(got) == *s,
        Value::Array(items) => {
            let joined: Vec<&str> = items.iter().map(|i| i.as_str().unwrap()).collect();
            unescape(got) == joined.join("|")
        }
        Value::Object(_) => false,
    }
}

/// Every expected row of `table` is stored, column by column.
fn assert_rows(table: &str, want: &[Value], cols: &[String], got: &[Vec<String>], context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: {table} rows");
    for (w, g) in want.iter().zip(got) {
        for (i, c) in cols.iter().enumerate() {
            assert!(
                holds(&w[c], &g[i]),
                "{context}: {table}.{c} at {}: stored {:?}, expected {}",
                w["timestamp"],
                g[i],
                w[c]
            );
        }
    }
}

/// The typed tables `expected.json` lists, with their rows.
fn typed_tables(expected: &Value) -> Vec<(&'static str, Vec<Value>)> {
    Table::ALL
        .iter()
        .filter(|t| t.is_typed_event())
        .map(|t| {
            let rows = expected[t.name()]
                .as_array()
                .unwrap_or_else(|| panic!("expected.json has no {}", t.name()))
                .clone();
            (t.name(), rows)
        })
        .collect()
}

async fn post(edge: &TestEdge, bearer: &str, bodies: &[CorpusBody]) {
    common::post_bodies(&http(), edge, "/v1/logs", bearer, bodies).await;
}

async fn settle(config: &Config) {
    kafka::wait_caught_up(config, Duration::from_secs(90)).await;
    clickhouse::wait_rollups(config, Duration::from_secs(90)).await;
}

/// Every documented event kind lands in its typed table, exactly as expected.json says, on
/// 18.16 through the whole pipeline; the JSON encoding of the same records adds nothing; and
/// the cost rollups attribute spend by person and team.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_event_kind_lands_typed_with_its_person_and_team() {
    let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let bearer = edge.bearer();
    post(&edge, &bearer, &bodies("proto")).await;
    settle(&config).await;

    let expected = expected();
    let records = expected["counts"]["records"].as_u64().unwrap();
    assert_eq!(
        clickhouse::count(&config, "events FINAL WHERE tenant = 'acme'").await,
        records
    );
    for (table, want) in typed_tables(&expected) {
        let cols = columns(&want);
        let got = raw_rows(&config, &select(table, &cols, "acme")).await;
        assert_rows(table, &want, &cols, &got, "18.16");
    }
    let events: Vec<Value> = expected["events"].as_array().unwrap().clone();
    let cols: Vec<String> = columns(&events).into_iter().filter(|c| c != "body").collect();
    let got = raw_rows(&config, &select("events", &cols, "acme")).await;
    assert_rows("events", &events, &cols, &got, "18.16");
    // An event nobody has documented goes to `events` alone.
    for name in expected["undocumented"].as_array().unwrap() {
        let n = clickhouse::count(
            &config,
            &format!("events WHERE event_name = '{}'", name.as_str().unwrap()),
        )
        .await;
        assert!(n > 0, "{name} is stored in events");
    }

    // The security signals the docs map, counted by kind (bounded labels).
    let metrics = reqwest::get(format!("http://{}/metrics", consumer.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (kind, n) in [
        ("permission_bypass", 2),
        ("auth_failure", 3),
        ("mcp_connection_failure", 1),
        ("plugin_install_unofficial", 2),
        ("hook_block", 1),
        ("api_refusal", 2),
        ("tool_reject", 2),
    ] {
        let line = format!("cowork_consumer_security_events_total{{kind=\"{kind}\"}} {n}");
        assert!(metrics.lines().any(|l| l == line), "/metrics lacks {line}");
    }

    // The same records as OTLP/JSON collapse onto the protobuf copies: nothing is added.
    post(&edge, &bearer, &bodies("json")).await;
    settle(&config).await;
    assert_eq!(
        clickhouse::count(&config, "events FINAL WHERE tenant = 'acme'").await,
        records
    );
    for (table, want) in typed_tables(&expected) {
        let n = clickhouse::count(&config, &format!("{table} FINAL WHERE tenant = 'acme'")).await;
        assert_eq!(n, want.len() as u64, "{table} after the JSON copies");
    }

    // cost_daily: spend by person and team, as the api_requests rows add up.
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for r in expected["api_requests"].as_array().unwrap() {
        let key = format!(
            "{}|{}|{}|{}",
            r["user_identity"].as_str().unwrap(),
            r["team"].as_str().unwrap(),
            r["department"].as_str().unwrap(),
            r["cost_center"].as_str().unwrap()
        );
        *want.entry(key).or_default() += r["cost_usd"].as_f64().unwrap();
    }
    let got: BTreeMap<String, f64> = rows(
        &config,
        "SELECT concat(user_identity, '|', team, '|', department, '|', cost_center), toFloat64(sum(cost_usd)) \
         FROM {db}.cost_daily FINAL WHERE tenant = 'acme' GROUP BY user_identity, team, department, cost_center",
    )
    .await
    .into_iter()
    .map(|r| (unescape(&r[0]), r[1].parse().unwrap()))
    .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, w) in &want {
        assert!((got[k] - w).abs() < 1e-9, "cost of {k}: {} != {w}", got[k]);
    }
    consumer.stop().await;
}

/// The same records, encoded by the consumer's decoder and loaded into current ClickHouse
/// (chdb) with the schema rendered for it, read back as on 18.16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_row_reads_the_same_on_current_clickhouse() {
    let expected = expected();
    let loaded = common::clickhouse::load_bodies("acme", &bodies("proto")).await;
    let tables = typed_tables(&expected);
    let queries: Vec<String> = tables
        .iter()
        .map(|(t, want)| select(t, &columns(want), "acme").replace("{db}", &loaded.db))
        .collect();
    let (version, results) = clickhouse::run_on_chdb(&loaded, &queries);
    for ((table, want), got) in tables.iter().zip(&results) {
        assert_rows(table, want, &columns(want), got, &format!("ClickHouse {version}"));
    }
}

/// A key's default attributes (`keys create --attr`) attribute what the payload does not: the
/// same records sent with a key that says team `payments` and cost center `CC-9` store those
/// wherever neither the record nor the resource named a team (or a cost center), and nothing
/// else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_default_attributes_fill_in_what_the_payload_does_not_say() {
    use cowork_ingest::keys::{self, Kind, Role};
    let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let attributes = [("team", "payments"), ("cost_center", "CC-9")].map(|(k, v)| (k.to_string(), v.to_string()));
    let key = keys::create(
        &config.edge.keys_path,
        "initech",
        Role::Ingest,
        Kind::Org,
        None,
        &attributes,
    )
    .unwrap();
    let bearer = format!("Bearer {}", key.token);
    // The edge picks the new key up within its reload interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = http()
            .post(edge.url("/v1/logs"))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edge never accepted the new key ({status})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    post(&edge, &bearer, &bodies("proto")).await;
    settle(&config).await;

    let expected = expected();
    let mut filled = 0;
    for (table, mut want) in typed_tables(&expected) {
        for row in &mut want {
            for (column, default) in [("team", "payments"), ("cost_center", "CC-9")] {
                if row[column] == "" {
                    row[column] = Value::from(default);
                    filled += 1;
                }
            }
        }
        let cols = columns(&want);
        let got = raw_rows(&config, &select(table, &cols, "initech")).await;
        assert_rows(table, &want, &cols, &got, "key defaults");
    }
    assert!(filled > 0, "the fixtures have rows without a team");
    // The rollups see the same teams.
    let teams = rows(
        &config,
        "SELECT DISTINCT team FROM {db}.cost_daily FINAL WHERE tenant = 'initech' ORDER BY team",
    )
    .await;
    assert!(teams.iter().any(|r| r[0] == "payments"), "{teams:?}");
    assert!(teams.iter().all(|r| !r[0].is_empty()), "{teams:?}");
    consumer.stop().await;
}
