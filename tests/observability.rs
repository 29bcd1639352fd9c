//! The running edge and consumer, each its own process, expose every metric that the alert
//! rules (`prometheus/alerts.yml`) and the dashboards (`grafana/dashboards/*.json`) use.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cowork_ingest::config::Config;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &std::path::Path, command: &str) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
            .args(["--config", config.to_str().unwrap(), command])
            .env("RUST_LOG", "error")
            .env_remove("KAFKA_BROKERS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Metric names (`cowork_*`) in a text, with histogram suffixes folded into the histogram.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("cowork_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        if name.starts_with("cowork_edge_") || name.starts_with("cowork_consumer_") {
            out.insert(name.to_string());
        }
        i = end.max(start + 1);
    }
    out
}

async fn scrape(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_dashboards_use_is_exposed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used = metric_names(&std::fs::read_to_string(root.join("prometheus/alerts.yml")).unwrap());
    let dashboards: Vec<_> = std::fs::read_dir(root.join("grafana/dashboards")).unwrap().collect();
    assert!(dashboards.len() >= 5, "five dashboards");
    for d in dashboards {
        used.extend(metric_names(&std::fs::read_to_string(d.unwrap().path()).unwrap()));
    }
    assert!(
        used.contains("cowork_consumer_lag"),
        "the alerts watch the lag: {used:?}"
    );

    let ch = common::clickhouse::shared();
    let cluster = common::cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let keys = common::make_keys(&dir.path().join("keys.toml"));
    let db = common::clickhouse::migrated(Config::default(), &ch.url)
        .await
        .clickhouse
        .database;
    let (http, grpc, edge_admin, consumer_admin) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let config = dir.path().join("cowork.toml");
    std::fs::write(
        &config,
        format!(
            "[edge]\nhttp_listen = \"127.0.0.1:{http}\"\ngrpc_listen = \"127.0.0.1:{grpc}\"\nadmin_listen = \"127.0.0.1:{edge_admin}\"\n\
             keys_path = \"{}\"\nkafka_probe_ms = 200\n\
             [kafka]\nbrokers = \"{brokers}\"\n\
             [clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n\
             [consumer]\nadmin_listen = \"127.0.0.1:{consumer_admin}\"\nbatch_max_age_ms = 100\nlag_refresh_ms = 200\n",
            dir.path().join("keys.toml").display(),
            ch.url
        ),
    )
    .unwrap();
    let _edge = spawn(&config, "edge");
    let _consumer = spawn(&config, "consume");
    common::wait_ready(
        format!("127.0.0.1:{edge_admin}").parse().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    common::wait_ready(
        format!("127.0.0.1:{consumer_admin}").parse().unwrap(),
        Duration::from_secs(30),
    )
    .await;

    // Traffic through both, so that every labelled series exists.
    let body = &common::corpus("proto-gzip")[0];
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/v1/logs"))
        .header("authorization", format!("Bearer {}", keys.ingest))
        .header("content-type", &body.content_type)
        .header("content-encoding", "gzip")
        .body(body.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (edge, consumer) = loop {
        let (edge, consumer) = (scrape(edge_admin).await, scrape(consumer_admin).await);
        // The batch's counters are recorded after its offsets are stored: wait for all of them.
        let inserted = [
            "cowork_consumer_last_insert_seconds ",
            "cowork_consumer_committed_received_at_seconds{",
            "cowork_consumer_events_total{",
        ]
        .iter()
        .all(|m| consumer.lines().any(|l| l.starts_with(m)));
        let lag = consumer.lines().any(|l| l.starts_with("cowork_consumer_lag{"));
        if inserted && lag {
            break (edge, consumer);
        }
        assert!(Instant::now() < deadline, "the consumer did not insert:\n{consumer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let exposed_edge = metric_names(&edge);
    let exposed_consumer = metric_names(&consumer);
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| {
            if m.starts_with("cowork_edge_") {
                !exposed_edge.contains(*m)
            } else {
                !exposed_consumer.contains(*m)
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "used by alerts or dashboards but not exposed: {missing:?}"
    );
    // Tenant labels come from the key file; lag is per partition.
    assert!(edge.contains("tenant=\"acme\""), "{edge}");
    assert!(consumer.contains("cowork_consumer_events_total{event=\"api_request\",tenant=\"acme\"}"));
    assert!(consumer.contains("cowork_consumer_lag{topic=\"cowork-otlp-logs\",partition=\"0\"}"));

    // `status` reads the same endpoints.
    let out = Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
        .args(["--config", config.to_str().unwrap(), "status", "--interval", "0.5"])
        .env_remove("KAFKA_BROKERS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The mock cluster's 3 partitions of each of the three raw topics.
    assert!(text.contains(" messages over 9 partition(s)"), "{text}");
    assert!(
        text.contains("topic cowork-otlp-metrics: lag 0 over 3 partition(s)"),
        "{text}"
    );
    assert!(text.contains("cowork-otlp-logs partition   0  lag "), "{text}");
    assert!(text.contains("newest stored event received"), "{text}");
    assert!(
        text.contains("last insert") && text.contains("dead letters: none"),
        "{text}"
    );
    assert!(text.contains("edge: ") && text.contains("Kafka reachable"), "{text}");
}
