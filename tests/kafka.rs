//! The pipeline against a real Apache Kafka (KRaft, `scripts/kafka`): topics created by
//! `topics check --create`, the corpus end to end, a broker killed mid-stream, a consumer group
//! of processes that lose members, and SCRAM credentials.
//!
//! Tests share the suite's broker (`COWORK_TEST_KAFKA`, or one `common::kafka::shared` starts)
//! with topics and a group of their own; the ones that kill a broker or need SASL start a
//! private one. ClickHouse is the shared 18.16 server of this binary, a database per test.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::clickhouse;
use common::clickhouse::CORPUS_EVENTS;
use common::kafka::{self, Broker, InProcessConsumer, Proc};
use common::{readyz, CorpusBody, TestEdge};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Posts every body as the exporter sent it; each must get 200.
async fn send(edge: &TestEdge, bodies: &[CorpusBody]) {
    let client = http();
    common::post_corpus(&client, edge, bodies).await;
}

/// Posts `json_logs(tag, records)`; returns the status and the Retry-After header.
async fn post_tagged(client: &reqwest::Client, edge: &TestEdge, tag: &str, records: usize) -> (u16, Option<u64>) {
    match client
        .post(edge.url("/v1/logs"))
        .header("authorization", edge.bearer())
        .header("content-type", "application/json")
        .body(common::json_logs(tag, records))
        .send()
        .await
    {
        Ok(r) => (
            r.status().as_u16(),
            r.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        ),
        Err(_) => (0, None),
    }
}

/// Polls `/readyz` on `admin` until it answers `want` (200 or 503).
async fn wait_readyz(admin: std::net::SocketAddr, want: u16, within: Duration, what: &str) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let got = readyz(admin).await;
        if got == want {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /readyz on {admin} still answers {got}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The corpus through the edge, the shared Kafka broker (12 partitions, created by `topics
/// check --create`), the consumer and ClickHouse, in each of its four encodings on a pipeline of
/// its own: `expected.json` exactly. Then the same requests again in every encoding into the
/// last one (new Kafka messages, the same events): still exactly `expected.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_is_exact_end_to_end_through_real_kafka() {
    let started = Instant::now();
    let folders = common::CORPUS_FOLDERS;
    for (i, folder) in folders.iter().enumerate() {
        let (edge, config) = kafka::pipeline(kafka::shared(), BTreeMap::new(), &[]).await;
        let consumer = InProcessConsumer::start(config.clone()).await;
        let first = common::corpus(folder);
        send(&edge, &first).await;
        clickhouse::wait_events(&config, CORPUS_EVENTS, Duration::from_secs(90)).await;
        kafka::wait_caught_up(&config, Duration::from_secs(60)).await;
        clickhouse::assert_matches_expected(&config, &format!("{folder}, first delivery")).await;
        if i + 1 < folders.len() {
            consumer.stop().await;
            edge.stop().await;
            continue;
        }

        // The same requests again in every encoding, as exporters retrying after lost responses
        // (and switching protocols) would: the event ids do not depend on the encoding.
        let mut sent = first.len();
        for folder in folders {
            let bodies = common::corpus(folder);
            sent += bodies.len();
            send(&edge, &bodies).await;
        }
        kafka::wait_caught_up(&config, Duration::from_secs(90)).await;
        let topic = config.kafka.logs_topic.clone();
        let c = config.clone();
        let messages = tokio::task::spawn_blocking(move || kafka::read_topic(&c, &topic, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(messages.len(), sent, "one Kafka message per accepted request");
        let spread: BTreeSet<i32> = messages.iter().map(|m| m.0).collect();
        assert!(
            spread.len() >= 6,
            "requests keyed by request id spread over the 12 partitions: {spread:?}"
        );
        assert!(
            clickhouse::count(&config, "events").await >= CORPUS_EVENTS,
            "the resent events were written"
        );
        clickhouse::assert_matches_expected(&config, "after the corpus again in every encoding").await;
        consumer.stop().await;
        edge.stop().await;
    }
    eprintln!("corpus end to end through Kafka in {:?}", started.elapsed());
}

/// `topics check --create` on a new broker creates all four topics with the settings the
/// README promises (checked with Kafka's own tool) and reports their real configs; a second
/// run creates nothing and finds no problem (only the single-node replication warning); a
/// topic whose `max.message.bytes` is then lowered is reported as a PROBLEM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_check_creates_the_four_topics_then_reports_them_correct() {
    use cowork_ingest::ops::topics;
    // A new cluster, as `scripts/up` or a deployment's first run meets it.
    let broker = Broker::start();
    let brokers = broker.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(brokers, dir.path(), &[]);
    let id = kafka::isolate(&mut config);
    let k = &config.kafka;
    let want = [
        (k.logs_topic.clone(), "raw logs", 12),
        (config.consumer.dlq_topic.clone(), "dead letters", 3),
        (k.metrics_topic.clone(), "raw metrics", 6),
        (k.traces_topic.clone(), "raw traces", 6),
    ];
    // edge.max_body_bytes (4 MiB) plus 64 KiB of headers.
    let max_message_bytes = (4 << 20) + (64 << 10);
    let replication_warning = "warning: replication factor 1: a broker loss can lose acknowledged payloads; use 3";

    let (report, ok) = topics::check(&config, true).await.unwrap();
    assert!(ok, "{report}");
    for (name, role, partitions) in &want {
        assert!(
            report.contains(&format!("created {name} (replication 1, min.insync.replicas 1)\n")),
            "{name} is created:\n{report}"
        );
        assert!(
            report.contains(&format!(
                "warning  {name} ({role}): {partitions} partition(s), replication 1\n"
            )),
            "{name} is reported with its partitions:\n{report}"
        );
    }
    assert_eq!(report.matches(replication_warning).count(), 4, "{report}");
    assert!(
        !report.contains("did not describe"),
        "a real broker describes the configs, so they are checked:\n{report}"
    );
    assert!(!report.contains("PROBLEM") && !report.contains("problem:"), "{report}");

    // What Kafka's own tool says about them: partitions, replication, and the topic configs.
    let described = kafka_tool(&[
        "topics",
        "--bootstrap-server",
        brokers,
        "--describe",
        "--topic",
        &format!("t-{id}-.*"),
    ]);
    for (name, _, partitions) in &want {
        let line = described
            .lines()
            .find(|l| l.starts_with(&format!("Topic: {name}\t")))
            .unwrap_or_else(|| panic!("kafka-topics does not describe {name}:\n{described}"));
        assert!(line.contains(&format!("PartitionCount: {partitions}\t")), "{line}");
        assert!(line.contains("ReplicationFactor: 1\t"), "{line}");
        for setting in [
            format!("max.message.bytes={max_message_bytes}"),
            "min.insync.replicas=1".to_string(),
            "retention.ms=604800000".to_string(),
        ] {
            assert!(line.contains(&setting), "{name} has {setting}: {line}");
        }
    }

    // Again: nothing to create, nothing wrong; the same verdicts.
    let (again, ok) = topics::check(&config, true).await.unwrap();
    assert!(ok, "{again}");
    assert!(
        !again.contains("created") && !again.contains("could not create"),
        "{again}"
    );
    assert!(
        !again.contains("PROBLEM") && !again.contains("did not describe"),
        "{again}"
    );
    let verdicts = |r: &str| -> Vec<String> {
        r.lines()
            .filter(|l| !l.starts_with("created "))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        verdicts(&again),
        verdicts(&report),
        "the second run reports the same topics"
    );

    // The binary says the same without --create, and exits 0.
    let path = kafka::write_config(&config, dir.path(), "cowork.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
        .args(["--config", path.to_str().unwrap(), "topics", "check"])
        .env_remove("KAFKA_BROKERS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text, again, "topics check prints the report");

    // A dead-letter topic that cannot hold a large request is a problem, named as such.
    let dlq = &want[1].0;
    kafka_tool(&[
        "configs",
        "--bootstrap-server",
        brokers,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        dlq,
        "--add-config",
        "max.message.bytes=1048576",
    ]);
    let (bad, ok) = topics::check(&config, false).await.unwrap();
    assert!(!ok, "{bad}");
    assert!(bad.contains(&format!("PROBLEM  {dlq} (dead letters)")), "{bad}");
    assert!(
        bad.contains("problem: max.message.bytes is 1048576, below 4259840"),
        "{bad}"
    );
    assert_eq!(bad.matches("PROBLEM").count(), 1, "only the altered topic: {bad}");
}

/// `scripts/kafka tool ARGS`: its stdout; panics with its output unless it succeeds.
fn kafka_tool(args: &[&str]) -> String {
    let out = std::process::Command::new(kafka::script())
        .arg("tool")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/kafka tool {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One request of the client loop and its answer.
#[derive(Debug, Clone)]
struct Sent {
    tag: String,
    status: u16,
    retry_after: Option<u64>,
    sent: Instant,
    done: Instant,
}

/// Records per request in the broker-kill test.
const RECORDS: usize = 3;

/// A private broker is SIGKILLed while clients post: while it is down the edge answers 503
/// with Retry-After (never 200) and `/readyz` turns false; it is started again on the same
/// data; afterwards every request that got 200 is in Kafka and in ClickHouse exactly once
/// (with FINAL), and a request that got 503 is there once or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_loses_nothing_that_got_a_200() {
    let started = Instant::now();
    let mut broker = Broker::start();
    let (edge, config) = kafka::pipeline(&broker.addr, BTreeMap::new(), &[]).await;
    let edge = Arc::new(edge);
    let consumer = InProcessConsumer::start(config.clone()).await;

    // Four clients post small distinct requests in a loop, each tagged (its session id).
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (edge, log, stop, run) = (edge.clone(), log.clone(), stop.clone(), run.clone());
            tokio::spawn(async move {
                let client = http();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("kill-{run}-{s}-{i}");
                    let sent = Instant::now();
                    let (status, retry_after) = post_tagged(&client, &edge, &tag, RECORDS).await;
                    log.lock().unwrap().push(Sent {
                        tag,
                        status,
                        retry_after,
                        sent,
                        done: Instant::now(),
                    });
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect();
    let oks_after = |since: Instant| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200 && r.sent >= since)
            .count()
    };
    let wait_oks = |since: Instant, n: usize, what: &'static str| {
        let oks_after = &oks_after;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while oks_after(since) < n {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only {} requests got 200 within 60 s",
                    oks_after(since)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_oks(started, 40, "before the kill").await;

    // SIGKILL mid-stream.
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| broker.kill());
    let unready_at = wait_readyz(edge.admin, 503, Duration::from_secs(20), "after the broker was killed").await;
    eprintln!("edge unready {:?} after the kill", unready_at - killed_at);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down_from = Instant::now();
    let probe = http();
    for i in 0..5 {
        let (status, retry_after) = post_tagged(&probe, &edge, &format!("kill-{run}-probe-{i}"), RECORDS).await;
        assert_eq!(status, 503, "the edge answers 503 while Kafka is down");
        let retry_after = retry_after.expect("a 503 carries Retry-After");
        assert!((1..=2).contains(&retry_after), "Retry-After {retry_after} stays short");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(readyz(edge.admin).await, 503, "/readyz stays false while Kafka is down");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restart_at = Instant::now();

    // The same broker again, on its data and port.
    tokio::task::block_in_place(|| broker.restart());
    let ready_at = wait_readyz(edge.admin, 200, Duration::from_secs(60), "after the broker came back").await;
    eprintln!("edge ready {:?} after the restart began", ready_at - restart_at);
    wait_oks(ready_at, 40, "after the restart").await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let sent = log.lock().unwrap().clone();

    // From the moment the edge saw Kafka gone until the broker was started again: only 503s,
    // each with a short Retry-After.
    let while_down: Vec<&Sent> = sent
        .iter()
        .filter(|r| r.sent >= unready_at && r.done <= restart_at)
        .collect();
    let after_a_while = while_down.iter().filter(|r| r.sent >= down_from).count();
    assert!(
        after_a_while >= 20,
        "the clients kept posting while Kafka was down ({after_a_while} requests 2 s after /readyz turned false)"
    );
    for r in &while_down {
        assert_eq!(r.status, 503, "{} answered while Kafka was down", r.tag);
        assert!(
            r.retry_after.is_some_and(|s| (1..=2).contains(&s)),
            "{}: Retry-After {:?}",
            r.tag,
            r.retry_after
        );
    }
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for r in &sent {
        *by_status.entry(r.status).or_default() += 1;
    }
    assert!(
        by_status.keys().all(|s| *s == 200 || *s == 503),
        "only 200 and 503: {by_status:?}"
    );
    let acked: BTreeSet<&str> = sent
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.tag.as_str())
        .collect();
    eprintln!(
        "{} requests: {by_status:?}; killed after {:?}",
        sent.len(),
        killed_at - started
    );

    // Everything Kafka holds reaches ClickHouse.
    kafka::wait_caught_up(&config, Duration::from_secs(90)).await;
    consumer.stop().await;

    // Kafka: every acknowledged request is there, once.
    let (c, topic) = (config.clone(), config.kafka.logs_topic.clone());
    let messages = tokio::task::spawn_blocking(move || kafka::read_topic(&c, &topic, Duration::from_secs(30)))
        .await
        .unwrap();
    let mut in_kafka: HashMap<String, usize> = HashMap::new();
    for (_, _, payload) in &messages {
        *in_kafka.entry(session_of(payload)).or_default() += 1;
    }
    for tag in &acked {
        assert_eq!(
            in_kafka.get(*tag).copied().unwrap_or(0),
            1,
            "{tag} got 200: it is in Kafka exactly once"
        );
    }

    // ClickHouse, deduplicated: every acknowledged request exactly once; a 503'd one once or
    // not at all; nothing else.
    let stored: HashMap<String, u64> = clickhouse::rows(
        &config,
        &format!("SELECT session_id, count() FROM {{db}}.events FINAL WHERE session_id LIKE 'kill-{run}-%' GROUP BY session_id"),
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    let tags: BTreeSet<&str> = sent.iter().map(|r| r.tag.as_str()).collect();
    for (tag, n) in &stored {
        assert!(
            tags.contains(tag.as_str()) || tag.contains("-probe-"),
            "{tag} was never sent"
        );
        assert_eq!(*n, RECORDS as u64, "{tag}: {n} events with FINAL");
    }
    let missing: Vec<&&str> = acked.iter().filter(|t| !stored.contains_key(**t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} requests that got 200 are not in ClickHouse: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    let late = stored.keys().filter(|t| !acked.contains(t.as_str())).count();
    let final_total = clickhouse::count(&config, &format!("events FINAL WHERE session_id LIKE 'kill-{run}-%'")).await;
    assert_eq!(
        final_total,
        (acked.len() + late) as u64 * RECORDS as u64,
        "with FINAL: the acknowledged requests plus the {late} late deliveries of 503'd ones, each once"
    );
    let raw = clickhouse::count(&config, &format!("events WHERE session_id LIKE 'kill-{run}-%'")).await;
    eprintln!(
        "{} acknowledged, {late} of the 503'd delivered late; {final_total} events with FINAL, {raw} rows without; {:?} in all",
        acked.len(),
        started.elapsed()
    );
    Arc::try_unwrap(edge)
        .ok()
        .expect("no sender holds the edge")
        .stop()
        .await;
}

/// The session id of a `common::json_logs` payload: its tag.
fn session_of(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).expect("a JSON logs payload");
    let attrs = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"];
    attrs
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == "session.id"))
        .and_then(|kv| kv["value"]["stringValue"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A consumer process of the test's group, its admin port free.
struct Member {
    proc: Proc,
    admin: std::net::SocketAddr,
}

impl Member {
    async fn start(name: &str, config: &std::path::Path) -> Member {
        let admin: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
        let mut proc = Proc::spawn(
            name,
            config,
            &[format!("consumer.admin_listen={admin}")],
            &["consume"],
            &[],
        );
        proc.wait_ready(admin, Duration::from_secs(30)).await;
        Member { proc, admin }
    }
}

/// Waits until `members` own every partition of `topic` between them, each partition exactly
/// once (from their `cowork_consumer_lag` series); returns each member's partitions.
async fn wait_owned_once(members: &[&Member], topic: &str, partitions: i32, within: Duration) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + within;
    loop {
        let mut owned = Vec::new();
        for m in members {
            owned.push(kafka::owned_partitions(&kafka::scrape(m.admin).await, topic));
        }
        let mut seen: BTreeMap<i32, usize> = BTreeMap::new();
        for set in &owned {
            for p in set {
                *seen.entry(*p).or_default() += 1;
            }
        }
        let all: BTreeSet<i32> = (0..partitions).collect();
        if seen.keys().copied().collect::<BTreeSet<_>>() == all && seen.values().all(|n| *n == 1) {
            return owned;
        }
        assert!(
            Instant::now() < deadline,
            "{} members do not own the {partitions} partitions once each within {within:?}: {:?}",
            members.len(),
            members.iter().map(|m| &m.proc.name).zip(&owned).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Three `consume` processes share the 12 partitions of the raw topic while `loadgen` sends for
/// 20 s; one is SIGKILLed, another SIGTERMed (it exits 0), a fourth joins: once the group has
/// caught up, ClickHouse holds exactly what loadgen reports as accepted, every partition is
/// owned by exactly one live member, and `status` over every member's endpoint shows the group:
/// each partition once, with its owner, and the gone members as unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_twelve_partitions_and_survive_kill_and_term() {
    use cowork_ingest::ops::loadgen::{self, Protocol, Style};
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let keys = common::make_keys(&dir.path().join("keys.toml"));
    let mut config = common::config(kafka::shared(), dir.path(), &[]);
    kafka::isolate(&mut config);
    let mut config = clickhouse::migrated(kafka::consumer_settings(config), &clickhouse::shared().url).await;
    config.consumer.batch_max_age_ms = 500;
    let path = kafka::write_config(&config, dir.path(), "cowork.toml");
    let topic = config.kafka.logs_topic.clone();

    kafka::create_topics(&config).await;

    let edge = common::start_edge_with(config.clone(), keys, tempfile::tempdir().unwrap()).await;
    let mut a = Member::start("consumer-a", &path).await;
    let mut b = Member::start("consumer-b", &path).await;
    let c = Member::start("consumer-c", &path).await;
    wait_owned_once(&[&a, &b, &c], &topic, 12, Duration::from_secs(45)).await;

    let load_started = Instant::now();
    let load = tokio::spawn(loadgen::run(loadgen::Options {
        endpoint: format!("http://{}", edge.http),
        protocol: Protocol::HttpProtobuf,
        gzip: true,
        api_key: edge.keys.ingest.clone(),
        sessions: 0,
        duration: Some(Duration::from_secs(20)),
        rate: 800.0,
        batch: 40,
        concurrency: 4,
        seed: 4242,
        styles: vec![Style::V2, Style::Strings, Style::Last9, Style::Legacy],
        progress: None,
        signals: vec![cowork_ingest::otlp::Signal::Logs],
    }));
    // Every member stores a share before anyone is lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    for m in [&a, &b, &c] {
        loop {
            let text = kafka::scrape(m.admin).await;
            if kafka::metric_sum(&text, "cowork_consumer_messages_total") > 0.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} stored nothing within 30 s of load:\n{}",
                m.proc.name,
                m.proc.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep_until((load_started + Duration::from_secs(5)).into()).await;
    a.proc.kill(); // SIGKILL: its partitions wait for its session to time out
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.proc.term(); // SIGTERM: it stores its batch, commits and leaves the group
    let d = Member::start("consumer-d", &path).await;
    let exit = b.proc.wait_exit(Duration::from_secs(40)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "consumer-b exits 0 after SIGTERM ({exit:?}):\n{}",
        b.proc.log_tail()
    );

    let report = load.await.unwrap().unwrap();
    assert_eq!(report.failed_events, 0, "{report}");
    assert!(report.events > 5000, "{report}");
    kafka::wait_caught_up(&config, Duration::from_secs(120)).await;
    clickhouse::wait_events(&config, report.events, Duration::from_secs(60)).await;
    let by_event: BTreeMap<String, u64> = clickhouse::rows(
        &config,
        "SELECT event_name, count() FROM {db}.events FINAL GROUP BY event_name",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    assert_eq!(
        by_event, report.by_event,
        "what loadgen reports as accepted, by event name"
    );
    let raw = clickhouse::count(&config, "events").await;

    // The live members own the partitions once each, and each stored some of the load.
    let owned = wait_owned_once(&[&c, &d], &topic, 12, Duration::from_secs(45)).await;
    for (m, set) in [&c, &d].iter().zip(&owned) {
        assert!(!set.is_empty(), "{} owns partitions", m.proc.name);
        let text = kafka::scrape(m.admin).await;
        assert!(
            kafka::metric_sum(&text, "cowork_consumer_messages_total") > 0.0,
            "{} stored messages",
            m.proc.name
        );
    }

    // `status` with every member's endpoint (the two gone ones too) shows the whole group:
    // each member and its partitions, each partition once with its owner, no lag.
    let edge_metrics = format!("http://{}/metrics", edge.admin);
    let url = |m: &Member| format!("http://{}/metrics", m.admin);
    let text = status(&edge_metrics, &[url(&a), url(&b), url(&c), url(&d)]);
    assert!(
        // 12 partitions of the logs topic, 6 each of the metrics and traces topics.
        text.contains("lag 0 messages over 24 partition(s), 2 of 4 member(s) reachable\n"),
        "{text}"
    );
    for gone in [&a, &b] {
        assert!(
            text.contains(&format!("  member {}: metrics unreachable\n", url(gone))),
            "{} is shown as unreachable:\n{text}",
            gone.proc.name
        );
    }
    for (m, set) in [&c, &d].iter().zip(&owned) {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("  member {}: ", url(m))))
            .unwrap_or_else(|| panic!("{} is not shown:\n{text}", m.proc.name));
        let metrics = kafka::scrape(m.admin).await;
        let all: usize = [
            &config.kafka.logs_topic,
            &config.kafka.metrics_topic,
            &config.kafka.traces_topic,
        ]
        .iter()
        .map(|t| kafka::owned_partitions(&metrics, t).len())
        .sum();
        assert!(all >= set.len());
        assert!(
            line.ends_with(&format!(" events/s, {all} partition(s)")),
            "{} is shown with its {all} partitions of the three topics: {line}\n{text}",
            m.proc.name,
        );
    }
    let shown: Vec<(i32, String)> = text
        .lines()
        .filter_map(|l| {
            let rest = l
                .trim()
                .strip_prefix(topic.as_str())?
                .trim()
                .strip_prefix("partition")?;
            let p = rest.split_whitespace().next()?.parse().ok()?;
            Some((p, rest.split("member ").nth(1)?.trim().to_string()))
        })
        .collect();
    let want: Vec<(i32, String)> = (0..12)
        .map(|p| {
            let owner = if owned[0].contains(&p) { &c } else { &d };
            (p, url(owner))
        })
        .collect();
    assert_eq!(
        shown, want,
        "each partition once, with the member that owns it:\n{text}"
    );
    assert!(
        !text.contains("reported by") && text.contains("dead letters: none") && text.contains("Kafka reachable"),
        "{text}"
    );
    eprintln!(
        "{text}{report}\n{raw} rows without FINAL; c owns {:?}, d owns {:?}; {:?} in all",
        owned[0],
        owned[1],
        started.elapsed()
    );
    edge.stop().await;
}

/// `cowork-ingest status --edge-metrics E --consumer-metrics C...` (one flag per URL).
fn status(edge: &str, consumers: &[String]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cowork-ingest"));
    cmd.args(["status", "--interval", "0.5", "--edge-metrics", edge]);
    for c in consumers {
        cmd.args(["--consumer-metrics", c]);
    }
    let out = cmd
        .env_remove("KAFKA_BROKERS")
        .env_remove("COWORK_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "status: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A broker with SASL_PLAINTEXT/SCRAM-SHA-512: the edge and the consumer log in with
/// `kafka.client` settings and a request lands in ClickHouse; with a wrong password `edge` and
/// `consume` each exit non-zero within 30 s, saying that the SASL credentials were refused,
/// without printing the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_credentials_pass_through_and_a_wrong_password_fails_startup_without_printing_it() {
    let user = "cowork-test";
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let broker = Broker::start_scram(user, &password);
    let sasl = broker.sasl.clone().expect("--scram prints the SASL listener");
    assert_eq!(
        (sasl.mechanism.as_str(), sasl.user.as_str(), sasl.password.as_str()),
        ("SCRAM-SHA-512", user, password.as_str())
    );
    assert_ne!(sasl.addr, broker.addr, "SASL has a listener of its own");

    // Topics created over SASL, then the edge and the consumer logged in.
    let (edge, config) = kafka::pipeline(&sasl.addr, sasl.client(&password), &[]).await;
    let consumer = InProcessConsumer::start(config.clone()).await;
    let tag = format!("scram-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = post_tagged(&http(), &edge, &tag, 4).await;
    assert_eq!(status, 200, "the edge publishes over SASL");
    clickhouse::wait_events(&config, 4, Duration::from_secs(60)).await;
    assert_eq!(
        clickhouse::count(&config, &format!("events FINAL WHERE session_id = '{tag}'")).await,
        4
    );
    consumer.stop().await;
    edge.stop().await;

    // A wrong password stops startup with a sentence, and the password is not in it.
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config.clone();
    bad.kafka.client = sasl.client(&wrong);
    bad.edge.keys_path = dir.path().join("keys.toml");
    common::make_keys(&bad.edge.keys_path);
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    (bad.edge.http_listen, bad.edge.grpc_listen, bad.edge.admin_listen) = (any, any, any);
    let path = kafka::write_config(&bad, dir.path(), "wrong.toml");
    for command in ["edge", "consume"] {
        let t0 = Instant::now();
        let mut p = Proc::spawn(command, &path, &[], &[command], &[]);
        let exit = p.wait_exit(Duration::from_secs(30)).await;
        let stderr = p.log();
        let exit = exit
            .unwrap_or_else(|| panic!("`{command}` still runs 30 s after starting with a wrong password:\n{stderr}"));
        assert!(
            !exit.success(),
            "`{command}` exits non-zero with a wrong password:\n{stderr}"
        );
        assert!(
            stderr.contains("SASL") || stderr.to_lowercase().contains("authentication"),
            "`{command}` says the credentials were refused:\n{stderr}"
        );
        assert!(!stderr.contains(&wrong), "`{command}` printed the password:\n{stderr}");
        eprintln!(
            "`{command}` with a wrong password exited ({exit}) in {:?}",
            t0.elapsed()
        );
    }
    drop(broker);
}
