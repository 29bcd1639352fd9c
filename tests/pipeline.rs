//! The whole pipeline against real parts: the edge in-process, librdkafka's mock cluster over
//! TCP, the consumer, and a real ClickHouse server (Debian's 18.16 in CI).
//!
//! The corpus is dated 2026-11-18: nothing here depends on today's date, and retention is off
//! unless a test sets it with an explicit "today".

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::clickhouse::{self, pairs, query, ClickHouse};
use common::{CorpusBody, TestEdge};
use cowork_ingest::config::Config;
use cowork_ingest::consumer;
use cowork_ingest::envelope::header;
use cowork_ingest::kafka::dev_broker::DevCluster;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Pipeline {
    cluster: DevCluster,
    edge: TestEdge,
    config: Config,
    consumers: Vec<(CancellationToken, tokio::task::JoinHandle<()>)>,
    admins: Vec<SocketAddr>,
}

/// The settings every test consumer uses (short batches, quick group membership), in `group`,
/// giving up on the last batch 1 s into shutdown.
fn consumer_config(config: Config, group: &str) -> Config {
    let mut config = common::kafka::consumer_settings(config);
    config.consumer.group_id = group.to_string();
    config.consumer.shutdown_flush_ms = 1000;
    config
}

impl Pipeline {
    async fn start(clickhouse_url: &str, extra: &[&str]) -> Pipeline {
        let (cluster, edge) = common::start_with_broker(extra).await;
        let config = clickhouse::migrated(consumer_config(edge.config.clone(), "cowork-test"), clickhouse_url).await;
        let mut p = Pipeline {
            cluster,
            edge,
            config,
            consumers: Vec::new(),
            admins: Vec::new(),
        };
        p.start_consumer(None).await;
        p
    }

    fn brokers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    fn db(&self) -> &str {
        &self.config.clickhouse.database
    }

    fn url(&self) -> &str {
        &self.config.clickhouse.url
    }

    /// Starts one more consumer, in the default group or in `group` (a new group replays the
    /// topic from offset 0).
    async fn start_consumer(&mut self, group: Option<&str>) -> SocketAddr {
        let mut config = self.config.clone();
        if let Some(g) = group {
            config.consumer.group_id = g.to_string();
        }
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = admin.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { consumer::run(config, admin, stop).await.expect("consumer runs") }
        });
        common::wait_ready(addr, Duration::from_secs(20)).await;
        self.consumers.push((stop, task));
        self.admins.push(addr);
        addr
    }

    async fn stop_consumers(&mut self) {
        for (stop, task) in self.consumers.drain(..) {
            stop.cancel();
            let _ = task.await;
        }
    }

    async fn send(&self, bodies: &[CorpusBody]) {
        let client = reqwest::Client::new();
        common::post_corpus(&client, &self.edge, bodies).await;
    }

    async fn count(&self, from: &str) -> u64 {
        clickhouse::count(&self.config, from).await
    }

    /// Waits until the group has committed every message of the raw topic.
    async fn wait_caught_up(&self, group: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let lag = lag(&self.brokers(), group, &self.config.kafka.logs_topic);
            if lag == Some(0) {
                return;
            }
            assert!(Instant::now() < deadline, "group {group} still lags by {lag:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_events(&self, want: u64, within: Duration) {
        clickhouse::wait_events(&self.config, want, within).await
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        clickhouse::rows(&self.config, sql).await
    }
}

/// Committed lag of `group` on `topic` over all partitions; None if the group has not committed
/// on some non-empty partition yet.
fn lag(brokers: &str, group: &str, topic: &str) -> Option<i64> {
    let consumer = cowork_ingest::kafka::Bounded::new(
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .create::<BaseConsumer>()
            .unwrap(),
        Duration::from_secs(5),
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..common::PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    let mut total = 0;
    for p in 0..common::PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).ok()?;
        let at = match committed.find_partition(topic, p)?.offset() {
            Offset::Offset(o) => o,
            _ if high == low => high,
            _ => return None,
        };
        total += high - at;
    }
    Some(total)
}

/// The corpus in one encoding: stored exactly; a client resend and a full replay from offset 0
/// change nothing.
async fn corpus_round_trip(folder: &str) {
    let ch = clickhouse::shared();
    let mut p = Pipeline::start(&ch.url, &[]).await;
    let bodies = common::corpus(folder);
    p.send(&bodies).await;
    p.wait_events(clickhouse::CORPUS_EVENTS, Duration::from_secs(60)).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    clickhouse::assert_matches_expected(&p.config, &format!("{folder}, first delivery")).await;

    // Every request again, as an exporter retrying after a lost response would: new offsets.
    p.send(&bodies).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(60)).await;
    assert!(
        p.count("events").await >= clickhouse::CORPUS_EVENTS,
        "the resend was written"
    );
    clickhouse::assert_matches_expected(&p.config, &format!("{folder}, after a resend")).await;

    // A full replay of the topic from offset 0 by another group.
    p.start_consumer(Some("cowork-replay")).await;
    p.wait_caught_up("cowork-replay", Duration::from_secs(60)).await;
    clickhouse::assert_matches_expected(&p.config, &format!("{folder}, after a replay")).await;
    p.stop_consumers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_json_none() {
    corpus_round_trip("json-none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_json_gzip() {
    corpus_round_trip("json-gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_proto_none() {
    corpus_round_trip("proto-none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_proto_gzip() {
    corpus_round_trip("proto-gzip").await;
}

fn raw_producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap()
}

fn edge_headers(content_type: &str) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    for (k, v) in [
        (header::TENANT, "acme"),
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_ENCODING, "identity"),
        (header::RECEIVED_AT_MS, "1795100000000"),
        (header::SIGNAL, "logs"),
    ] {
        h = h.insert(Header { key: k, value: Some(v) });
    }
    h
}

/// A garbage payload lands in the dead-letter topic with its headers and reason; the message
/// behind it on the same partition is stored; redrive sends it back (and it fails again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_dead_lettered_and_the_partition_moves_on() {
    let ch = clickhouse::shared();
    let p = Pipeline::start(&ch.url, &[]).await;
    let producer = raw_producer(&p.brokers());
    let topic = p.config.kafka.logs_topic.clone();
    let garbage = b"\x0a\xff\xff\xff\xff\x0fnot protobuf".to_vec();
    producer
        .send(
            BaseRecord::<(), _>::to(&topic)
                .partition(1)
                .payload(&garbage)
                .headers(edge_headers("application/x-protobuf")),
        )
        .unwrap();
    let good = common::json_logs("after-garbage", 3);
    producer
        .send(
            BaseRecord::<(), _>::to(&topic)
                .partition(1)
                .payload(&good)
                .headers(edge_headers("application/json")),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    p.wait_events(3, Duration::from_secs(30)).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    let dlq = &p.config.consumer.dlq_topic;
    let dead = common::consume_all(&p.brokers(), dlq, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1, "one dead letter");
    let d = &dead[0];
    assert_eq!(d.payload, garbage, "the payload is kept byte for byte");
    assert_eq!(d.headers["cowork-dlq-class"], "undecodable");
    assert!(d.headers["cowork-dlq-reason"].contains("protobuf"), "{:?}", d.headers);
    assert_eq!(d.headers["cowork-dlq-topic"], topic);
    assert_eq!(d.headers["cowork-dlq-partition"], "1");
    assert_eq!(d.headers["cowork-dlq-offset"], "0");
    assert_eq!(d.headers[header::TENANT], "acme", "original headers are kept");
    assert_eq!(d.headers[header::CONTENT_TYPE], "application/x-protobuf");

    let n = cowork_ingest::ops::redrive::redrive(&p.config, None).await.unwrap();
    assert_eq!(n, 1, "redrive re-publishes the dead letter");
    assert_eq!(
        cowork_ingest::ops::redrive::redrive(&p.config, None).await.unwrap(),
        0,
        "and remembers where it stopped"
    );
    let dead = common::consume_all(&p.brokers(), dlq, 2, Duration::from_secs(20));
    assert_eq!(dead.len(), 2, "the redriven garbage failed again and came back");
    assert_eq!(p.count("events FINAL").await, 3);
}

/// `edge_headers` plus a header whose name is not UTF-8, which no Rust API of rdkafka can
/// write (names are `&str`) but another producer can: added through librdkafka itself.
fn with_a_header_named_in_bytes(headers: OwnedHeaders, name: &[u8]) -> OwnedHeaders {
    // SAFETY: `BorrowedHeaders` is rdkafka's transparent view of the native `rd_kafka_headers_t`
    // (its own `from_native_ptr` casts the pointer the same way), the list is ours and not
    // shared, and librdkafka copies the name and value it is given.
    unsafe {
        let list = headers.as_borrowed() as *const rdkafka::message::BorrowedHeaders
            as *mut rdkafka::bindings::rd_kafka_headers_t;
        let value = b"from another producer";
        let err = rdkafka::bindings::rd_kafka_header_add(
            list,
            name.as_ptr().cast(),
            name.len() as isize,
            value.as_ptr().cast(),
            value.len() as isize,
        );
        assert_eq!(err, rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    headers
}

/// A message with a header whose name is not UTF-8 (rdkafka 0.39 panics on reading such a name)
/// neither stops the consumer nor holds its partition: the header is skipped, the good message
/// is stored, and a garbage one beside it is dead-lettered with the readable headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_that_is_not_utf8_is_skipped() {
    let ch = clickhouse::shared();
    let p = Pipeline::start(&ch.url, &[]).await;
    let producer = raw_producer(&p.brokers());
    let topic = p.config.kafka.logs_topic.clone();
    let garbage = b"\x0a\xff\xff\xff\xff\x0fnot protobuf".to_vec();
    let good = common::json_logs("bad-header-name", 3);
    for (payload, mime) in [(&garbage, "application/x-protobuf"), (&good, "application/json")] {
        producer
            .send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(2)
                    .payload(payload)
                    .headers(with_a_header_named_in_bytes(edge_headers(mime), b"x-\xff\xfe")),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    p.wait_events(3, Duration::from_secs(30)).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    let dead = common::consume_all(&p.brokers(), &p.config.consumer.dlq_topic, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1, "the garbage is dead-lettered");
    assert_eq!(dead[0].payload, garbage);
    assert_eq!(dead[0].headers[header::TENANT], "acme", "the readable headers are kept");
    assert_eq!(dead[0].headers["cowork-dlq-class"], "undecodable");
    assert_eq!(p.count("events FINAL").await, 3, "the good message is stored");
}

/// ClickHouse stops mid-stream and comes back: the consumer pauses, retries, is stopped while
/// paused, and its successor stores everything exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_restart_loses_and_doubles_nothing() {
    let mut ch = ClickHouse::start();
    let mut p = Pipeline::start(&ch.url, &[]).await;
    let bodies = common::corpus("proto-gzip");
    let (first, second) = bodies.split_at(bodies.len() / 2);
    p.send(first).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(60)).await;
    let before = p.count("events FINAL").await;
    assert!(before > 0 && before < clickhouse::CORPUS_EVENTS);

    ch.stop();
    p.send(second).await; // the edge still accepts: Kafka has it
                          // The consumer fails, pauses and retries; its lag, read on its own schedule, shows it.
    let admin = p.admins[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lag_total: f64 = text
            .lines()
            .filter(|l| l.starts_with("cowork_consumer_lag{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if lag_total > 0.0 && text.lines().any(|l| l == "cowork_consumer_paused 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lag or pause shown while ClickHouse is down:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = reqwest::get(format!("http://{admin}/readyz")).await.unwrap().status();
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        ready,
        503,
        "not ready while paused: {}",
        text.lines()
            .filter(|l| l.contains("paused") || l.contains("insert_errors") || l.contains("_lag"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A graceful stop while ClickHouse is down gives up on the last batch after
    // `shutdown_flush_ms` and commits nothing past it.
    p.stop_consumers().await;
    let behind = lag(&p.brokers(), "cowork-test", &p.config.kafka.logs_topic);
    assert_ne!(behind, Some(0), "nothing is committed while ClickHouse is down");
    ch.restart();
    p.start_consumer(None).await;
    p.wait_events(clickhouse::CORPUS_EVENTS, Duration::from_secs(90)).await;
    p.wait_caught_up("cowork-test", Duration::from_secs(60)).await;
    clickhouse::assert_matches_expected(&p.config, "after a ClickHouse restart").await;
}

/// `migrate` twice is a no-op; `consume` refuses an unmigrated database and names what is
/// missing; an edited migration is refused.
#[tokio::test]
async fn migrations_are_forward_only_and_checked() {
    use cowork_ingest::clickhouse::schema;
    use cowork_ingest::clickhouse::store::Store;
    let ch = clickhouse::shared();
    let mut config = Config::default();
    config.clickhouse.url = ch.url.clone();
    config.clickhouse.database = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = Store::new(&config.clickhouse);
    let err = consumer::Consumer::new(config.clone()).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("001_tables, 002_rollups, 003_v2, 004_signals, 005_directory_budgets"),
        "{err}"
    );
    assert!(err.to_string().contains("cowork-ingest migrate"), "{err}");
    let target = schema::Target::detect(&store).await.unwrap();
    assert_eq!(
        schema::migrate(&store, &target, &mut |_| {}).await.unwrap(),
        [
            "001_tables",
            "002_rollups",
            "003_v2",
            "004_signals",
            "005_directory_budgets",
            "006_attribution"
        ],
        "an empty database gets v2 and what follows directly, and 001 and 002 are recorded"
    );
    assert!(
        schema::migrate(&store, &target, &mut |_| {}).await.unwrap().is_empty(),
        "second run applies nothing"
    );
    let db = &config.clickhouse.database;
    query(
        &ch.url,
        &format!("ALTER TABLE {db}.schema_migrations DELETE WHERE version = 1"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    query(
        &ch.url,
        &format!("INSERT INTO {db}.schema_migrations VALUES (1, '001_tables', 'edited', now())"),
    )
    .await;
    let err = schema::migrate(&store, &target, &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("forward-only"), "{err}");
}

/// Retention drops whole days by event date, per table, counted back from an explicit today.
#[tokio::test]
async fn retention_drops_old_day_partitions_only() {
    use cowork_ingest::clickhouse::store::Store;
    let ch = clickhouse::shared();
    let config = clickhouse::migrated(Config::default(), &ch.url).await;
    let db = &config.clickhouse.database;
    for (id, day) in [
        ("a", "2026-11-10 12:00:00"),
        ("b", "2026-11-18 12:00:00"),
        ("c", "2026-11-19 00:00:01"),
    ] {
        query(
            &ch.url,
            &format!("INSERT INTO {db}.events (event_id, tenant, timestamp) VALUES ('{id}', 'acme', '{day}')"),
        )
        .await;
        query(
            &ch.url,
            &format!("INSERT INTO {db}.api_requests (event_id, tenant, timestamp) VALUES ('{id}', 'acme', '{day}')"),
        )
        .await;
    }
    let store = Store::new(&config.clickhouse);
    let days = BTreeMap::from([(cowork_ingest::clickhouse::Table::Events, 3u32)]);
    let today = time::macros::date!(2026 - 11 - 22);
    let dropped = cowork_ingest::clickhouse::retention::apply_retention(&store, &days, today)
        .await
        .unwrap();
    assert_eq!(
        dropped,
        [
            ("events".to_string(), "20261110".to_string()),
            ("events".to_string(), "20261118".to_string())
        ]
    );
    let left = query(&ch.url, &format!("SELECT count() FROM {db}.events")).await;
    assert_eq!(left.trim(), "1", "2026-11-19 is within 3 days of 2026-11-22");
    let typed = query(&ch.url, &format!("SELECT count() FROM {db}.api_requests")).await;
    assert_eq!(typed.trim(), "3", "tables without retention keep everything");
}

/// One JSON payload with every kind of content, for the content policy.
fn content_payload() -> Vec<u8> {
    let rec = |name: &str, seq: i64, attrs: serde_json::Value| {
        let mut a = vec![
            serde_json::json!({"key": "event.name", "value": {"stringValue": name}}),
            serde_json::json!({"key": "event.sequence", "value": {"intValue": seq}}),
            serde_json::json!({"key": "session.id", "value": {"stringValue": "s-content"}}),
            serde_json::json!({"key": "user.email", "value": {"stringValue": "ana@acme.example"}}),
        ];
        a.extend(attrs.as_array().unwrap().iter().cloned());
        serde_json::json!({"timeUnixNano": "1795000002103000000", "attributes": a})
    };
    let records = vec![
        rec(
            "user_prompt",
            1,
            serde_json::json!([{"key": "prompt", "value": {"stringValue": "fix the build"}}]),
        ),
        rec(
            "assistant_response",
            2,
            serde_json::json!([{"key": "response", "value": {"stringValue": "done"}}]),
        ),
        rec(
            "tool_result",
            3,
            serde_json::json!([
                {"key": "tool_name", "value": {"stringValue": "Bash"}},
                {"key": "success", "value": {"stringValue": "false"}},
                {"key": "error", "value": {"stringValue": "permission denied: /etc/shadow"}},
                {"key": "tool_parameters", "value": {"stringValue": "{\"bash_command\":\"cat /etc/shadow\"}"}},
                {"key": "tool_input", "value": {"stringValue": "{\"command\":\"cat /etc/shadow\"}"}}
            ]),
        ),
    ];
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"logRecords": records}]
    }]})
    .to_string()
    .into_bytes()
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(s.as_bytes())))
}

/// Per tenant, each kind of content is kept, hashed or dropped, in typed columns and attribute
/// arrays alike. Tenants without a policy keep what the client sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_policy_keeps_hashes_or_drops_per_tenant() {
    let ch = clickhouse::shared();
    let p = Pipeline::start(
        &ch.url,
        &[
            "content.tenants.acme.prompt=hash",
            "content.tenants.acme.response=drop",
            "content.tenants.acme.tool_input=drop",
            "content.tenants.acme.tool_parameters=hash",
            "content.tenants.acme.error=drop",
        ],
    )
    .await;
    // The consumer's config came from the edge's, so the policy is in force there too.
    assert_eq!(
        p.config.content.policy("acme").prompt,
        cowork_ingest::config::ContentAction::Hash
    );
    let client = reqwest::Client::new();
    for key in [p.edge.keys.ingest.clone(), p.edge.keys.other_tenant.clone()] {
        let resp = client
            .post(p.edge.url("/v1/logs"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(content_payload())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    p.wait_events(6, Duration::from_secs(30)).await;
    // The events rows can land before the other tables' rows of the same batch: wait until
    // the batch is committed, which is after ClickHouse has every table's rows.
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    let prompts = p
        .rows("SELECT tenant, prompt FROM {db}.user_prompts FINAL ORDER BY tenant")
        .await;
    assert_eq!(prompts[0], ["acme", &sha256_hex("fix the build")]);
    assert_eq!(prompts[1], ["globex", "fix the build"]);
    let errors = p
        .rows("SELECT tenant, error FROM {db}.tool_results FINAL ORDER BY tenant")
        .await;
    assert_eq!(errors[0], ["acme", ""]);
    assert_eq!(errors[1], ["globex", "permission denied: /etc/shadow"]);
    let attrs = p
        .rows("SELECT tenant, arrayStringConcat(attribute_keys, ','), arrayStringConcat(attribute_values, '|') FROM {db}.events FINAL WHERE event_name != 'user_prompt' ORDER BY tenant, event_name")
        .await;
    // acme: response, error and tool_input are gone; tool_parameters is hashed.
    assert_eq!(attrs[0][1], "event.name,event.sequence,session.id,user.email");
    assert!(
        !attrs[1][1].contains("tool_input") && !attrs[1][1].contains("error"),
        "{:?}",
        attrs[1]
    );
    assert!(attrs[1][1].contains("tool_parameters"), "{:?}", attrs[1]);
    assert!(
        attrs[1][2].contains(&sha256_hex("{\"bash_command\":\"cat /etc/shadow\"}")),
        "{:?}",
        attrs[1]
    );
    assert!(
        !attrs[1][2].contains("shadow"),
        "no clear text of acme's content: {:?}",
        attrs[1]
    );
    // globex keeps everything.
    assert!(attrs[2][2].contains("done"), "{:?}", attrs[2]);
    assert!(
        attrs[3][1].contains("tool_input") && attrs[3][2].contains("cat /etc/shadow"),
        "{:?}",
        attrs[3]
    );
}

/// `forget` removes one user's rows of one tenant from every table, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_erases_one_user_everywhere() {
    use cowork_ingest::clickhouse::store::Store;
    let ch = clickhouse::shared();
    let p = Pipeline::start(&ch.url, &[]).await;
    p.send(&common::corpus("proto-gzip")).await;
    p.wait_events(clickhouse::CORPUS_EVENTS, Duration::from_secs(60)).await;
    // The events rows can land before the other tables' rows of the same batch: wait until
    // the batch is committed, which is after ClickHouse has every table's rows.
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    clickhouse::wait_rollups(&p.config, Duration::from_secs(60)).await;
    let user = "bo.o'neil@acme.example";
    let quoted = cowork_ingest::clickhouse::erasure::quote(user);
    let mut before = BTreeMap::new();
    let rollups = cowork_ingest::clickhouse::tables::Rollup::ALL.map(|r| r.name());
    for table in cowork_ingest::clickhouse::Table::ALL
        .map(|t| t.name())
        .into_iter()
        .chain(rollups)
        .chain(["user_directory"])
    {
        let n = p.count(&format!("{table} WHERE user_identity = {quoted}")).await;
        before.insert(table, n);
    }
    // A budget of the person's own, and one of a team, which stays.
    let db = &p.config.clickhouse.database;
    clickhouse::query(
        &p.config.clickhouse.url,
        &format!(
            "INSERT INTO {db}.budgets (tenant, scope, scope_value, monthly_usd, updated_at, version, deleted) VALUES \
             ('acme', 'user', {quoted}, 10, now(), 1, 0), ('acme', 'team', 'payments', 10, now(), 1, 0)"
        ),
    )
    .await;
    before.insert("budgets", 1);
    assert!(before["events"] > 0 && before["api_requests"] > 0);
    let store = Store::new(&p.config.clickhouse);
    let removed: BTreeMap<&str, u64> = cowork_ingest::clickhouse::erasure::forget(&store, "acme", user)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(removed, before, "it reports what it removed");
    for table in cowork_ingest::clickhouse::Table::ALL.map(|t| t.name()) {
        assert_eq!(
            p.count(&format!("{table} WHERE user_identity = {quoted}")).await,
            0,
            "{table}"
        );
    }
    for rollup in cowork_ingest::clickhouse::tables::Rollup::ALL.map(|r| r.name()) {
        assert_eq!(
            p.count(&format!("{rollup} WHERE user_identity = {quoted}")).await,
            0,
            "{rollup}"
        );
    }
    assert_eq!(p.count("budgets WHERE scope = 'team'").await, 1, "other budgets stay");
    assert_eq!(
        p.count("budgets WHERE scope = 'user'").await,
        0,
        "the person's budget goes"
    );
    assert_eq!(
        p.count("events FINAL").await,
        clickhouse::CORPUS_EVENTS - before["events"],
        "others are kept"
    );
    let other = cowork_ingest::clickhouse::erasure::forget(&store, "globex", "chen.smith@acme.example")
        .await
        .unwrap();
    assert!(
        other.iter().all(|(_, n)| *n == 0),
        "another tenant's erasure touches nothing: {other:?}"
    );
}

/// The consumer process is killed with SIGKILL mid-stream and started again: nothing is lost
/// and nothing is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_sigkill_mid_batch_loses_and_doubles_nothing() {
    let ch = clickhouse::shared();
    let (cluster, edge) = common::start_with_broker(&[]).await;
    let config = clickhouse::migrated(Config::default(), &ch.url).await;
    let p = Pipeline {
        cluster,
        edge,
        config,
        consumers: Vec::new(),
        admins: Vec::new(),
    };
    p.send(&common::corpus("json-gzip")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumer.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
brokers = "{}"
[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[clickhouse]
url = "{}"
database = "{}"
[consumer]
group_id = "cowork-kill"
admin_listen = "127.0.0.1:0"
batch_max_rows = 20
batch_max_age_ms = 50
"#,
            p.brokers(),
            p.url(),
            p.db()
        ),
    )
    .unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
            .args(["--config", path.to_str().unwrap(), "consume"])
            .env("RUST_LOG", "info")
            .env_remove("KAFKA_BROKERS")
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.path().join("consumer.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = p.count("events").await;
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "the consumer stored nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        at_kill < clickhouse::CORPUS_EVENTS,
        "killed mid-stream ({at_kill} events stored)"
    );

    let mut child = spawn();
    p.wait_events(clickhouse::CORPUS_EVENTS, Duration::from_secs(90)).await;
    p.wait_caught_up("cowork-kill", Duration::from_secs(60)).await;
    clickhouse::wait_rollups(&p.config, Duration::from_secs(60)).await;
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("KEEP_LOG").is_some() {
        std::fs::copy(dir.path().join("consumer.log"), "/tmp/sigkill-consumer.log").unwrap();
    }
    clickhouse::assert_matches_expected(&p.config, "after SIGKILL and restart").await;
}

/// `loadgen` traffic in every protocol and attribute style lands exactly: what it reports as
/// accepted is what ClickHouse holds, event by event name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_traffic_lands_exactly_in_every_protocol() {
    use cowork_ingest::ops::loadgen::{self, Protocol, Style};
    let ch = clickhouse::shared();
    let p = Pipeline::start(&ch.url, &[]).await;
    let mut total = loadgen::Report::default();
    for (i, (protocol, gzip)) in [
        (Protocol::HttpProtobuf, true),
        (Protocol::HttpJson, false),
        (Protocol::Grpc, true),
    ]
    .into_iter()
    .enumerate()
    {
        let endpoint = match protocol {
            Protocol::Grpc => format!("http://{}", p.edge.grpc),
            _ => format!("http://{}", p.edge.http),
        };
        let report = loadgen::run(loadgen::Options {
            endpoint,
            protocol,
            gzip,
            api_key: p.edge.keys.ingest.clone(),
            sessions: 12,
            duration: None,
            rate: 0.0,
            batch: 40,
            concurrency: 3,
            seed: 100 + i as u64,
            styles: vec![Style::V2, Style::Strings, Style::Last9, Style::Legacy],
            progress: None,
            signals: cowork_ingest::otlp::Signal::ALL.to_vec(),
        })
        .await
        .unwrap();
        assert_eq!(report.failed_events, 0, "{protocol:?}: {report}");
        assert!(report.events > 0 && report.sessions == 12, "{protocol:?}: {report}");
        assert!(report.points > 0 && report.spans > 0, "{protocol:?}: {report}");
        total.events += report.events;
        total.points += report.points;
        total.spans += report.spans;
        for (k, v) in report.by_event {
            *total.by_event.entry(k).or_default() += v;
        }
    }
    p.wait_events(total.events, Duration::from_secs(60)).await;
    // The events rows can land before the other tables' rows of the same batch: wait until
    // the batch is committed, which is after ClickHouse has every table's rows.
    p.wait_caught_up("cowork-test", Duration::from_secs(30)).await;
    let by_event = pairs(
        p.rows("SELECT event_name, count() FROM {db}.events FINAL GROUP BY event_name")
            .await,
    );
    assert_eq!(by_event, total.by_event);
    // Every style normalizes: no typed row is missing its tool or model.
    assert_eq!(p.count("tool_decisions FINAL WHERE tool_name = ''").await, 0);
    assert_eq!(p.count("tool_results FINAL WHERE tool_name = ''").await, 0);
    assert_eq!(p.count("api_requests FINAL WHERE model = '' OR cost_usd = 0").await, 0);
    assert_eq!(p.count("api_errors FINAL WHERE isNull(status_code)").await, 0);
    clickhouse::wait_rollups(&p.config, Duration::from_secs(60)).await;
    assert_eq!(p.count("sessions FINAL").await, 36);
    // The metrics and spans of the same sessions, over every protocol.
    assert_eq!(p.count("metric_points FINAL").await, total.points);
    assert_eq!(p.count("spans FINAL").await, total.spans);
    let sessions = p.rows("SELECT sum(sessions) FROM {db}.productivity_daily").await;
    assert_eq!(sessions[0][0], "36", "one session.count per session");
    // The meter counts what the events count: cost and tokens reconcile.
    let rec = p
        .rows(
            "SELECT sum(abs(cost_difference_usd)) < 0.00001, sum(metric_input_tokens) = sum(event_input_tokens), \
             sum(event_requests) > 0 FROM {db}.cost_reconciliation",
        )
        .await;
    assert_eq!(rec[0], ["1", "1", "1"], "metrics and events agree");
}
