//! Shared test harness: a real Kafka-protocol broker (librdkafka's mock cluster over TCP), a
//! key file with one key of every kind, and the edge running in-process on port 0.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cowork_ingest::config::Config;
use cowork_ingest::edge;
use cowork_ingest::kafka::dev_broker::{self, DevCluster};
use cowork_ingest::keys::{self, Kind, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod clickhouse;
pub mod cluster;
pub mod kafka;
pub mod signals;

pub const PARTITIONS: i32 = 3;

/// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`): a process's resident and peak memory.
pub fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is running");
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `GET /readyz` on an admin port: the status, or 0 when nothing answers within 5 s.
pub async fn readyz(admin: std::net::SocketAddr) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{admin}/readyz"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// A TCP port for a test server, reserved for the rest of this process (see [`reserve_ports`]).
/// A server stopped and started again on it finds it still free.
pub fn free_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<PortBlock>> = std::sync::Mutex::new(Vec::new());
    let block = reserve_ports(&[0]);
    let port = block.base;
    HELD.lock().unwrap().push(block);
    port
}

/// Ports `base + offset` for every offset, reserved while this value lives.
pub struct PortBlock {
    pub base: u16,
    _locks: Vec<std::fs::File>,
}

/// Picks ports for test servers that are free now and stay free across a restart of their
/// server:
/// - below Linux's ephemeral range (`ip_local_port_range`, 32768.. by default), so neither an
///   outgoing connection nor a `bind(0)` of any process can take one while its server is down;
/// - locked against every other test and bench process (an flock(2) on a file per port under
///   `CARGO_TARGET_TMPDIR`, released when the value drops or the process dies);
/// - free for `bind` at the time of asking.
pub fn reserve_ports(offsets: &[u16]) -> PortBlock {
    use std::os::fd::AsRawFd;
    let locks = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-ports");
    std::fs::create_dir_all(&locks).unwrap();
    let low = 20000u32;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(low + 1000, 32768);
    let span = u32::from(offsets.iter().copied().max().unwrap_or(0)) + 1;
    for _ in 0..500 {
        let r = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap());
        let base = (low + r % (high - low - span)) as u16;
        let mut held = Vec::with_capacity(offsets.len());
        for port in offsets.iter().map(|o| base + o) {
            let lock = std::fs::File::create(locks.join(format!("{port}.lock"))).unwrap();
            // SAFETY: flock(2) on a descriptor we own; the lock goes with the File.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                break;
            }
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                break;
            }
            held.push(lock);
        }
        if held.len() == offsets.len() {
            return PortBlock { base, _locks: held };
        }
    }
    panic!("no free ports {offsets:?} above a base in {low}..{high} after 500 tries");
}

/// Keys of every kind the auth matrix needs.
pub struct TestKeys {
    pub ingest: String,
    pub other_tenant: String,
    pub read: String,
    pub personal: String,
    pub revoked: String,
    pub expired: String,
    pub ingest_id: String,
}

pub struct TestEdge {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    pub config: Config,
    pub keys: TestKeys,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.keys.ingest)
    }
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A single-broker mock cluster with the pipeline's topics.
pub fn cluster() -> DevCluster {
    let config = Config::default();
    dev_broker::start(1, PARTITIONS, &dev_broker::topics(&config)).expect("mock cluster starts")
}

pub fn make_keys(path: &Path) -> TestKeys {
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let ingest = keys::create(path, "acme", Role::Ingest, Kind::Org, None, &[]).unwrap();
    let revoked = keys::create(path, "acme", Role::Ingest, Kind::Org, None, &[]).unwrap();
    keys::revoke(path, &revoked.entry.id).unwrap();
    TestKeys {
        ingest_id: ingest.entry.id.clone(),
        ingest: ingest.token,
        other_tenant: keys::create(path, "globex", Role::Ingest, Kind::Org, None, &[])
            .unwrap()
            .token,
        read: keys::create(path, "acme", Role::Read, Kind::Org, None, &[])
            .unwrap()
            .token,
        personal: keys::create(path, "acme", Role::Ingest, Kind::Personal, None, &[])
            .unwrap()
            .token,
        revoked: revoked.token,
        expired: keys::create(path, "acme", Role::Ingest, Kind::Org, Some(past), &[])
            .unwrap()
            .token,
    }
}

/// Test configuration: the given brokers, a fresh key file, short probe and reload intervals.
pub fn config(brokers: &str, dir: &Path, extra: &[&str]) -> Config {
    let mut sets = vec![
        format!("kafka.brokers={brokers}"),
        format!("edge.keys_path={}", dir.join("keys.toml").display()),
        "edge.kafka_probe_ms=200".to_string(),
        "edge.keys_reload_ms=100".to_string(),
        "edge.publish_timeout_ms=3000".to_string(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    Config::load_from(None, &[], &sets).expect("test config is valid")
}

/// A fresh mock cluster and an edge publishing to it. Keep the cluster alive for the test.
pub async fn start_with_broker(extra: &[&str]) -> (DevCluster, TestEdge) {
    let cluster = cluster();
    let edge = start_edge(&cluster.bootstrap_servers(), extra).await;
    (cluster, edge)
}

/// Starts the edge in-process on port 0 and waits until it is ready.
pub async fn start_edge(brokers: &str, extra: &[&str]) -> TestEdge {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(&dir.path().join("keys.toml"));
    let config = config(brokers, dir.path(), extra);
    start_edge_with(config, keys, dir).await
}

pub async fn start_edge_with(config: Config, keys: TestKeys, dir: tempfile::TempDir) -> TestEdge {
    init_logs();
    let any = "127.0.0.1:0";
    let listeners = edge::Listeners {
        http: TcpListener::bind(any).await.unwrap(),
        grpc: TcpListener::bind(any).await.unwrap(),
        admin: TcpListener::bind(any).await.unwrap(),
    };
    let (http, grpc, admin) = (
        listeners.http.local_addr().unwrap(),
        listeners.grpc.local_addr().unwrap(),
        listeners.admin.local_addr().unwrap(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (config, shutdown) = (config.clone(), shutdown.clone());
        async move { edge::run(listeners, config, shutdown).await.expect("edge runs") }
    });
    let edge = TestEdge {
        http,
        grpc,
        admin,
        config,
        keys,
        dir,
        shutdown,
        task,
    };
    wait_ready(edge.admin, Duration::from_secs(20)).await;
    edge
}

pub async fn wait_ready(admin: SocketAddr, within: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(format!("http://{admin}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "edge not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,rdkafka=error")
        .with_test_writer()
        .try_init();
}

/// One message read back from Kafka.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: HashMap<String, String>,
    pub partition: i32,
    pub offset: i64,
}

fn received(m: &rdkafka::message::BorrowedMessage<'_>) -> Received {
    let mut headers = HashMap::new();
    if let Some(h) = m.headers() {
        for hd in h.iter() {
            headers.insert(
                hd.key.to_string(),
                String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
            );
        }
    }
    Received {
        payload: m.payload().unwrap_or_default().to_vec(),
        key: m.key().map(<[u8]>::to_vec),
        headers,
        partition: m.partition(),
        offset: m.offset(),
    }
}

/// Reads every message of `topic` from the beginning until `expected` arrived or `within` passed.
pub fn consume_all(brokers: &str, topic: &str, expected: usize, within: Duration) -> Vec<Received> {
    // Its close is bounded: with the broker gone, dropping a consumer would wait on it for minutes.
    let consumer = cowork_ingest::kafka::Bounded::new(
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create::<BaseConsumer>()
            .unwrap(),
        Duration::from_secs(5),
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && out.len() < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(received(&m)),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    // Linger briefly to catch anything beyond `expected` (a duplicate would show up here).
    let linger = Instant::now() + Duration::from_millis(300);
    while Instant::now() < linger {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            out.push(received(&m));
        }
    }
    out
}

/// Posts every body to the edge's `/v1/logs` with the headers the exporter sent; each must get 200.
pub async fn post_corpus(client: &reqwest::Client, edge: &TestEdge, bodies: &[CorpusBody]) {
    post_bodies(client, edge, "/v1/logs", &edge.bearer(), bodies).await
}

/// Posts every body to the edge's `path` with `bearer` and the headers the exporter sent; each
/// must get 200.
pub async fn post_bodies(client: &reqwest::Client, edge: &TestEdge, path: &str, bearer: &str, bodies: &[CorpusBody]) {
    for b in bodies {
        let mut req = client
            .post(edge.url(path))
            .header("authorization", bearer)
            .header("content-type", &b.content_type)
            .body(b.body.clone());
        if let Some(enc) = &b.content_encoding {
            req = req.header("content-encoding", enc);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", b.name, resp.text().await.unwrap());
    }
}

/// One request body of the corpus, with the headers the real exporter sent.
pub struct CorpusBody {
    pub name: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub content_encoding: Option<String>,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// The bodies of one corpus folder (`json-none`, `json-gzip`, `proto-none`, `proto-gzip`).
pub fn corpus(folder: &str) -> Vec<CorpusBody> {
    corpus_at(&fixtures(), folder)
}

/// The bodies of the captured folder `root/folder`, with the headers the real exporter sent.
pub fn corpus_at(root: &Path, folder: &str) -> Vec<CorpusBody> {
    let dir = root.join(folder);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "headers"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(format!("{}.headers", p.display())).unwrap()).unwrap();
            let h = &meta["headers"];
            CorpusBody {
                name: format!("{folder}/{}", p.file_name().unwrap().to_string_lossy()),
                body: std::fs::read(&p).unwrap(),
                content_type: h["content-type"].as_str().unwrap().to_string(),
                content_encoding: h["content-encoding"].as_str().map(str::to_string),
            }
        })
        .collect()
}

pub const CORPUS_FOLDERS: [&str; 4] = ["json-none", "json-gzip", "proto-none", "proto-gzip"];

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A valid OTLP/JSON logs request with `n` records, tagged so tests can find it again.
pub fn json_logs(tag: &str, n: usize) -> Vec<u8> {
    let records: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": "1795000002103000000",
                "body": {"stringValue": "claude_code.user_prompt"},
                "attributes": [
                    {"key": "event.name", "value": {"stringValue": "user_prompt"}},
                    {"key": "event.sequence", "value": {"intValue": i}},
                    {"key": "session.id", "value": {"stringValue": tag}}
                ]
            })
        })
        .collect();
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}]
    }]})
    .to_string()
    .into_bytes()
}
