//! Schema v2 on both ClickHouse generations: a v1 database (migrations 001 and 002, with the
//! cross-day copies v1's merges could never collapse) upgrades without losing a row; the plain forms
//! apply on 18.16 and on current ClickHouse, the current forms (LowCardinality, codecs, skip
//! indexes, TTL) on current ClickHouse (chdb).

mod common;

use std::process::Command;

use common::clickhouse::{self as ch, query};
use cowork_ingest::clickhouse::schema::{self, Features, Target, MIGRATIONS};
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::config::Config;

/// `event_day` as text; day 0 prints as 0000-00-00 on 18.16 and 1970-01-01 on current releases.
const DAY: &str = "if(event_day = toDate('1970-01-01'), 'day 0', toString(event_day))";

async fn scalar(url: &str, sql: &str) -> String {
    query(url, sql).await.trim().to_string()
}

/// A v1 database as v1's `migrate` left it, with rows as v1's consumer wrote them.
async fn v1_database(url: &str, db: &str) {
    let plain = Target {
        features: Features::for_version((18, 16)),
        cluster: None,
    };
    query(url, &format!("CREATE DATABASE {db}")).await;
    query(
        url,
        &format!("CREATE TABLE {db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime('UTC')) ENGINE = MergeTree ORDER BY version"),
    )
    .await;
    for m in &MIGRATIONS[..2] {
        for s in m.statements(db, &plain) {
            query(url, &s).await;
        }
        query(
            url,
            &format!(
                "INSERT INTO {db}.schema_migrations VALUES ({}, '{}', '{}', now())",
                m.version,
                m.name,
                m.checksum()
            ),
        )
        .await;
    }
    // e1: timed by the client. e2: no usable time of its own, so v1 stored each copy at its
    // receive time, two days apart: two rows that FINAL could not collapse. e3: a tool decision
    // sent twice on the same day.
    for (id, ts, source, name, session) in [
        ("e1______________", "2026-11-18 10:00:00", "record", "api_request", "s1"),
        (
            "e2______________",
            "2026-11-18 11:00:00",
            "clamped",
            "api_request",
            "s1",
        ),
        (
            "e2______________",
            "2026-11-20 09:00:00",
            "clamped",
            "api_request",
            "s1",
        ),
        (
            "e3______________",
            "2026-11-19 12:00:00",
            "record",
            "tool_decision",
            "s2",
        ),
        (
            "e3______________",
            "2026-11-19 12:00:00",
            "record",
            "tool_decision",
            "s2",
        ),
    ] {
        query(
            url,
            &format!(
                "INSERT INTO {db}.events (event_id, tenant, timestamp, time_source, event_name, session_id, user_email, service_name, normalizer_version) \
                 VALUES ('{id}', 'acme', '{ts}', '{source}', '{name}', '{session}', 'a@acme.example', 'claude-code', 1)"
            ),
        )
        .await;
        let typed = if name == "api_request" {
            format!("INSERT INTO {db}.api_requests (event_id, tenant, timestamp, session_id, user_email, model, cost_usd, input_tokens, normalizer_version) VALUES ('{id}', 'acme', '{ts}', '{session}', 'a@acme.example', 'claude-sonnet-4-5', {}, 10, 1)", if id.starts_with("e1") { "0.5" } else { "0.25" })
        } else {
            format!("INSERT INTO {db}.tool_decisions (event_id, tenant, timestamp, session_id, user_email, tool_name, decision, normalizer_version) VALUES ('{id}', 'acme', '{ts}', '{session}', 'a@acme.example', 'Bash', 'reject', 1)")
        };
        query(url, &typed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_database_upgrades_to_v2_without_losing_a_row() {
    let server = ch::shared();
    let url = server.url.clone();
    let db = format!("t_{}", uuid::Uuid::new_v4().simple());
    v1_database(&url, &db).await;
    // v1 filed e2's copies under two day partitions, which merges never join.
    let e2_rows = |url: String, db: String| async move {
        query(&url, &format!("OPTIMIZE TABLE {db}.events FINAL")).await;
        scalar(
            &url,
            &format!("SELECT count() FROM {db}.events WHERE event_id = 'e2______________'"),
        )
        .await
    };
    assert_eq!(e2_rows(url.clone(), db.clone()).await, "2", "v1: e2 twice, for good");
    // A leftover of an upgrade interrupted while copying: dropped and copied again.
    query(
        &url,
        &format!("CREATE TABLE {db}.api_errors_v2 (x UInt8) ENGINE = Memory"),
    )
    .await;

    let mut config = Config::default();
    config.clickhouse.url = url.clone();
    config.clickhouse.database = db.clone();
    let store = Store::new(&config.clickhouse);
    let target = Target::detect(&store).await.unwrap();
    let mut steps = Vec::new();
    let ran = schema::migrate(&store, &target, &mut |s| steps.push(s.to_string()))
        .await
        .unwrap();
    assert_eq!(ran, ["003_v2", "004_signals", "005_directory_budgets"]);
    assert!(steps.iter().any(|s| s.starts_with("events: copying day")), "{steps:?}");
    cowork_ingest::clickhouse::rollups::rebuild(&store, None, None, None, &mut |_| {})
        .await
        .unwrap();

    // Every event is there once; e2's copies met on day 0, and merging collapses them.
    assert_eq!(
        scalar(&url, &format!("SELECT count() FROM {db}.events FINAL")).await,
        "3"
    );
    assert_eq!(
        e2_rows(url.clone(), db.clone()).await,
        "1",
        "v2: e2's copies share a partition"
    );
    assert_eq!(
        query(
            &url,
            &format!("SELECT event_id, {DAY} FROM {db}.events FINAL ORDER BY event_id")
        )
        .await,
        "e1______________\t2026-11-18\ne2______________\tday 0\ne3______________\t2026-11-19\n"
    );
    assert_eq!(
        query(
            &url,
            &format!("SELECT event_id, {DAY}, toFloat64(cost_usd) FROM {db}.api_requests FINAL ORDER BY event_id")
        )
        .await,
        "e1______________\t2026-11-18\t0.5\ne2______________\tday 0\t0.25\n",
        "typed rows take their day from the event"
    );
    assert_eq!(
        scalar(&url, &format!("SELECT count() FROM {db}.tool_decisions FINAL")).await,
        "1"
    );
    // The views became tables kept by the rollups, with the same columns and exact figures.
    for view in ["sessions", "cost_daily"] {
        assert_eq!(
            scalar(
                &url,
                &format!("SELECT engine FROM system.tables WHERE database = '{db}' AND name = '{view}'")
            )
            .await,
            "ReplacingMergeTree"
        );
    }
    assert_eq!(
        scalar(
            &url,
            &format!("SELECT toFloat64(sum(cost_usd)) FROM {db}.cost_daily FINAL")
        )
        .await,
        "0.75"
    );
    assert_eq!(
        query(&url, &format!("SELECT session_id, api_requests, tool_decisions, tool_rejects FROM {db}.sessions FINAL ORDER BY session_id")).await,
        "s1\t2\t0\t0\ns2\t0\t1\t1\n"
    );
    // Nothing is left behind, the consumer's check passes, and a second run is a no-op.
    assert_eq!(
        scalar(&url, &format!("SELECT count() FROM system.tables WHERE database = '{db}' AND (name LIKE '%\\_v1' OR name LIKE '%\\_v2')")).await,
        "0"
    );
    schema::check(&store).await.unwrap();
    assert!(schema::migrate(&store, &target, &mut |_| {}).await.unwrap().is_empty());
}

/// The plain forms (what 18.16 gets) and the current forms apply on current ClickHouse; the
/// current forms have what they promise.
#[test]
fn both_forms_apply_on_current_clickhouse() {
    let plain = Target {
        features: Features::for_version((18, 16)),
        cluster: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check.py");
    let ttl = cowork_ingest::clickhouse::retention::ttl_clause(30);
    std::fs::write(
        &script,
        format!(
            r#"
import json, sys
from chdb import session
s = session.Session()
def run(sql): return str(s.query(sql, "TabSeparated"))
def apply(ddl):
    for stmt in ddl.split(";\n"):
        body = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
        if body: run(body)
args = json.load(open(sys.argv[1]))
apply(args["plain"]); apply(args["current"])
run("ALTER TABLE cur.events MODIFY {ttl}")
print(json.dumps({{
  "plain_lc": run("SELECT count() FROM system.columns WHERE database = 'old' AND type LIKE '%LowCardinality%'").strip(),
  "current_lc": run("SELECT count() FROM system.columns WHERE database = 'cur' AND type LIKE '%LowCardinality%'").strip(),
  "codecs": run("SELECT count() FROM system.columns WHERE database = 'cur' AND compression_codec != ''").strip(),
  "indexes": run("SELECT arrayStringConcat(groupArray(name), ',') FROM (SELECT name FROM system.data_skipping_indices WHERE database = 'cur' AND table = 'events' ORDER BY name)").strip(),
  "ttl": run("SELECT engine_full FROM system.tables WHERE database = 'cur' AND name = 'events'").strip(),
  "tables": run("SELECT count() FROM system.tables WHERE database = 'old'").strip() + "/" + run("SELECT count() FROM system.tables WHERE database = 'cur'").strip(),
}}))
"#
        ),
    )
    .unwrap();
    let args = dir.path().join("args.json");
    std::fs::write(
        &args,
        serde_json::json!({
            "plain": schema::render("old", &plain),
            "current": schema::render("cur", &ch::current_target()),
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(ch::chdb_python())
        .arg(&script)
        .arg(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "chdb: {}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["plain_lc"], "0");
    assert!(
        got["current_lc"].as_str().unwrap().parse::<u32>().unwrap() > 20,
        "{got}"
    );
    assert!(got["codecs"].as_str().unwrap().parse::<u32>().unwrap() > 20, "{got}");
    assert_eq!(got["indexes"], "idx_prompt_id,idx_user_email");
    assert!(got["ttl"].as_str().unwrap().contains("TTL if(event_day = "), "{got}");
    let tables: Vec<&str> = got["tables"].as_str().unwrap().split('/').collect();
    assert_eq!(tables[0], tables[1], "both forms make the same tables");
}
