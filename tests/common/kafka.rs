//! Apache Kafka for tests (`scripts/kafka`): the suite's shared broker, private brokers a test
//! may kill and restart, and the pieces the Kafka tests share: isolated topic and group names,
//! topics created the production way, committed lag over every partition, the consumer
//! in-process or as a child process, and the corpus totals of `expected.json`.
//!
//! The shared broker is `COWORK_TEST_KAFKA` when the runner (`scripts/test`) exports it, else
//! one this helper starts with `scripts/kafka start --dir <CARGO_TARGET_TMPDIR>/test-kafka
//! --port 0`. That start is idempotent and takes a lock on the directory (`flock` on
//! `DIR.lock` in the script), so test processes starting at once all get the same broker; it
//! is left running for the next test process (`scripts/kafka stop --dir target/tmp/test-kafka`
//! ends it). Tests share it by using their own topics and groups ([`isolate`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cowork_ingest::config::Config;
use cowork_ingest::consumer;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `scripts/kafka`: `COWORK_KAFKA_SCRIPT`, else the one in this checkout.
pub fn script() -> PathBuf {
    std::env::var_os("COWORK_KAFKA_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka"))
}

/// Runs `scripts/kafka ARGS`; panics with its output unless it succeeds.
fn run_script(args: &[&str]) -> Output {
    run_script_with(args, |_| {})
}

fn run_script_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = Command::new(script());
    cmd.args(args).stdin(Stdio::null());
    adjust(&mut cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", script().display()));
    assert!(
        out.status.success(),
        "scripts/kafka {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The bootstrap address of the suite's shared broker (see the module comment).
pub fn shared() -> &'static str {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Some(addr) = std::env::var("COWORK_TEST_KAFKA").ok().filter(|a| !a.is_empty()) {
            return addr;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-kafka");
        // In a process group of its own: the broker outlives this test process, and a runner
        // that kills a timed-out test's process group must not take it from the other tests.
        let out = run_script_with(&["start", "--dir", dir.to_str().unwrap(), "--port", "0"], |c| {
            std::os::unix::process::CommandExt::process_group(c, 0);
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("scripts/kafka start printed no address"))
            .trim()
            .to_string()
    })
}

/// The SASL listener of a broker started with `--scram`.
#[derive(Debug, Clone)]
pub struct Sasl {
    pub addr: String,
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

impl Sasl {
    /// `kafka.client` settings that log in as this user (or with `password` instead).
    pub fn client(&self, password: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("security.protocol".into(), "SASL_PLAINTEXT".into()),
            ("sasl.mechanism".into(), self.mechanism.clone()),
            ("sasl.username".into(), self.user.clone()),
            ("sasl.password".into(), password.into()),
        ])
    }
}

/// A broker of one test's own (`scripts/kafka start --dir <tempdir>/kafka --port 0`): it can be
/// killed and started again on the same data and port. Dropping it kills it (SIGKILL).
pub struct Broker {
    pub addr: String,
    pub sasl: Option<Sasl>,
    /// Its plaintext port, reserved for this process: a restart finds it free.
    port: u16,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// With a SASL_PLAINTEXT/SCRAM-SHA-512 listener and the user `user`.
    pub fn start_scram(user: &str, password: &str) -> Broker {
        Broker::start_with(&["--scram", "--scram-user", user, "--scram-password", password])
    }

    fn start_with(extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("kafka");
        let mut b = Broker {
            addr: String::new(),
            port: super::free_port(),
            sasl: None,
            dir,
            _tmp: tmp,
        };
        b.run_start(extra);
        b
    }

    fn run_start(&mut self, extra: &[&str]) {
        let started = Instant::now();
        let port = self.port.to_string();
        let mut args = vec!["start", "--dir", self.dir.to_str().unwrap(), "--port", &port];
        args.extend_from_slice(extra);
        let out = run_script(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = stdout.lines().collect();
        self.addr = lines
            .last()
            .expect("an address on stdout's last line")
            .trim()
            .to_string();
        self.sasl = lines.iter().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[0] == "sasl").then(|| Sasl {
                addr: f[1].into(),
                mechanism: f[2].into(),
                user: f[3].into(),
                password: f[4].into(),
            })
        });
        eprintln!("private Kafka on {} ready in {:?}", self.addr, started.elapsed());
    }

    /// SIGKILL now (`scripts/kafka kill`); the data stays.
    pub fn kill(&self) {
        run_script(&["kill", "--dir", self.dir.to_str().unwrap()]);
    }

    /// Starts it again on the same data and port (the SCRAM settings are remembered).
    pub fn restart(&mut self) {
        let before = self.addr.clone();
        self.run_start(&[]);
        assert_eq!(self.addr, before, "the broker came back on its port");
    }

    /// The end of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(format!("{}.log", self.dir.display())).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["kill", "--dir", self.dir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Points `config` at topics and a group of its own (a fresh uuid suffix), so tests can share
/// a broker; returns the suffix.
pub fn isolate(config: &mut Config) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let k = &mut config.kafka;
    k.logs_topic = format!("t-{id}-logs");
    k.metrics_topic = format!("t-{id}-metrics");
    k.traces_topic = format!("t-{id}-traces");
    config.consumer.dlq_topic = format!("t-{id}-logs-dlq");
    config.consumer.group_id = format!("g-{id}");
    id
}

/// Creates this configuration's topics with `topics check --create`, the production path, and
/// fails the test unless every topic can then do its job. Returns the report.
pub async fn create_topics(config: &Config) -> String {
    let (report, ok) = cowork_ingest::ops::topics::check(config, true)
        .await
        .expect("topics check reaches Kafka");
    assert!(ok, "topics check --create left problems:\n{report}");
    report
}

/// A plain consumer client of `config`'s brokers and `kafka.client` settings (so it logs in
/// like the services), in `group`; its close is bounded.
pub fn client(config: &Config, group: &str) -> cowork_ingest::kafka::Bounded<BaseConsumer> {
    let consumer = cowork_ingest::kafka::client(config)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create::<BaseConsumer>()
        .expect("a Kafka client");
    cowork_ingest::kafka::Bounded::new(consumer, Duration::from_secs(5))
}

/// Partitions of `topic` (from the cluster's metadata), or None if Kafka does not answer.
pub fn partitions(c: &BaseConsumer, topic: &str) -> Option<i32> {
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len() as i32)
}

/// Committed lag of `config`'s group on its raw topics (logs, metrics, traces) over every
/// partition; None while Kafka does not answer, or the group has not committed on some non-empty
/// partition yet.
pub fn lag(config: &Config) -> Option<i64> {
    let c = client(config, &config.consumer.group_id);
    let k = &config.kafka;
    let mut total = 0;
    for topic in [&k.logs_topic, &k.metrics_topic, &k.traces_topic] {
        total += topic_lag(&c, topic)?;
    }
    Some(total)
}

fn topic_lag(c: &BaseConsumer, topic: &str) -> Option<i64> {
    let n = partitions(c, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition(topic, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    let mut total = 0;
    for p in 0..n {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(5)).ok()?;
        let at = match committed.find_partition(topic, p)?.offset() {
            Offset::Offset(o) => o,
            _ if high == low => high,
            _ => return None,
        };
        total += high - at;
    }
    Some(total)
}

/// Waits until the group has committed every message of the raw logs topic.
pub async fn wait_caught_up(config: &Config, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let c = config.clone();
        let lag = tokio::task::spawn_blocking(move || lag(&c)).await.unwrap();
        if lag == Some(0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {} still lags by {lag:?} on {} after {within:?}",
            config.consumer.group_id,
            config.kafka.logs_topic
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every message of `topic`, read from the beginning up to the high watermarks as they were
/// when the read started: `(partition, offset, payload)`.
/// Messages in `topic` (the sum of its partitions' high watermarks), without reading them.
pub fn topic_messages(config: &Config, topic: &str) -> i64 {
    let c = client(config, &format!("watermarks-{}", uuid::Uuid::new_v4().simple()));
    let n = partitions(&c, topic).unwrap_or_else(|| panic!("no metadata for {topic}"));
    (0..n)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"))
                .1
        })
        .sum()
}

pub fn read_topic(config: &Config, topic: &str, within: Duration) -> Vec<(i32, i64, Vec<u8>)> {
    let c = client(config, &format!("read-{}", uuid::Uuid::new_v4().simple()));
    let n = partitions(&c, topic).unwrap_or_else(|| panic!("no metadata for {topic}"));
    let mut tpl = TopicPartitionList::new();
    let mut left: HashMap<i32, i64> = HashMap::new();
    for p in 0..n {
        let (low, high) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"));
        if high > low {
            left.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
    }
    let mut out = Vec::new();
    if left.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + within;
    while !left.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{topic}: read {} messages, partitions {:?} not read to their end within {within:?}",
            out.len(),
            left.keys().collect::<Vec<_>>()
        );
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let (p, o) = (m.partition(), m.offset());
                if left.get(&p).is_some_and(|high| o + 1 >= *high) {
                    left.remove(&p);
                }
                out.push((p, o, m.payload().unwrap_or_default().to_vec()));
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// An edge in-process on `brokers` (with `client` as `kafka.client`), topics and a group of its
/// own created by `topics check --create`, and a migrated database: the edge and the
/// configuration a consumer of the same pipeline uses.
pub async fn pipeline(brokers: &str, client: BTreeMap<String, String>, extra: &[&str]) -> (super::TestEdge, Config) {
    let dir = tempfile::tempdir().unwrap();
    let keys = super::make_keys(&dir.path().join("keys.toml"));
    let mut config = super::config(brokers, dir.path(), extra);
    config.kafka.client = client;
    isolate(&mut config);
    create_topics(&config).await;
    let config = super::clickhouse::migrated(consumer_settings(config), &super::clickhouse::shared().url).await;
    let edge = super::start_edge_with(config.clone(), keys, dir).await;
    (edge, config)
}

/// The settings every test consumer uses: short batches, quick group membership, a lag that
/// is read twice a second.
pub fn consumer_settings(mut config: Config) -> Config {
    config.consumer.lag_refresh_ms = 500;
    config.consumer.shutdown_flush_ms = 5000;
    config.consumer.batch_max_age_ms = 200;
    config.consumer.retry_max_ms = 1000;
    config.consumer.admin_listen = "127.0.0.1:0".parse().unwrap();
    config.kafka.consumer.insert("session.timeout.ms".into(), "6000".into());
    config
        .kafka
        .consumer
        .insert("heartbeat.interval.ms".into(), "500".into());
    config
}

/// A consumer running in this process.
pub struct InProcessConsumer {
    pub admin: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessConsumer {
    pub async fn start(config: Config) -> InProcessConsumer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { consumer::run(config, listener, stop).await.expect("consumer runs") }
        });
        super::wait_ready(admin, Duration::from_secs(30)).await;
        InProcessConsumer { admin, stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the consumer stops within 60 s")
            .expect("the consumer task did not panic");
    }
}

/// Writes the parts of `config` the services read to a TOML file in `dir` (and checks that it
/// loads back); `--set` flags can change it per process.
pub fn write_config(config: &Config, dir: &Path, name: &str) -> PathBuf {
    use toml::{Table, Value};
    fn s(v: impl ToString) -> Value {
        Value::String(v.to_string())
    }
    fn n(v: impl TryInto<i64>) -> Value {
        Value::Integer(v.try_into().unwrap_or(i64::MAX))
    }
    fn map(m: &BTreeMap<String, String>) -> Value {
        Value::Table(m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
    }
    let e = &config.edge;
    let edge = Table::from_iter([
        ("http_listen".into(), s(e.http_listen)),
        ("grpc_listen".into(), s(e.grpc_listen)),
        ("admin_listen".into(), s(e.admin_listen)),
        ("keys_path".into(), s(e.keys_path.display())),
        ("keys_reload_ms".into(), n(e.keys_reload_ms)),
        ("kafka_probe_ms".into(), n(e.kafka_probe_ms)),
        ("publish_timeout_ms".into(), n(e.publish_timeout_ms)),
    ]);
    let k = &config.kafka;
    let kafka = Table::from_iter([
        ("brokers".into(), s(&k.brokers)),
        ("logs_topic".into(), s(&k.logs_topic)),
        ("metrics_topic".into(), s(&k.metrics_topic)),
        ("traces_topic".into(), s(&k.traces_topic)),
        ("client".into(), map(&k.client)),
        ("producer".into(), map(&k.producer)),
        ("consumer".into(), map(&k.consumer)),
    ]);
    let ch = &config.clickhouse;
    let clickhouse = Table::from_iter([("url".into(), s(&ch.url)), ("database".into(), s(&ch.database))]);
    let c = &config.consumer;
    let consumer = Table::from_iter([
        ("group_id".into(), s(&c.group_id)),
        ("dlq_topic".into(), s(&c.dlq_topic)),
        ("admin_listen".into(), s(c.admin_listen)),
        ("batch_max_rows".into(), n(c.batch_max_rows)),
        ("batch_max_age_ms".into(), n(c.batch_max_age_ms)),
        ("retry_max_ms".into(), n(c.retry_max_ms)),
        ("lag_refresh_ms".into(), n(c.lag_refresh_ms)),
        ("shutdown_flush_ms".into(), n(c.shutdown_flush_ms)),
    ]);
    let doc = Table::from_iter([
        ("edge".into(), Value::Table(edge)),
        ("kafka".into(), Value::Table(kafka)),
        ("clickhouse".into(), Value::Table(clickhouse)),
        ("consumer".into(), Value::Table(consumer)),
    ]);
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    Config::load_from(Some(&path), &[], &[]).unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    path
}

/// A `cowork-ingest` child process; its stderr goes to a file. Dropping it kills it.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// `cowork-ingest --config CONFIG [--set S]... ARGS`, with `RUST_LOG=info` unless `env`
    /// says otherwise; stderr to `<dir>/<name>.log`.
    pub fn spawn(name: &str, config: &Path, sets: &[String], args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = config.with_file_name(format!("{name}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cowork-ingest"));
        cmd.arg("--config").arg(config);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.args(args)
            .env("RUST_LOG", "info,rdkafka=warn")
            .env_remove("KAFKA_BROKERS")
            .env_remove("COWORK_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cowork-ingest does not start: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (graceful shutdown), without waiting.
    pub fn term(&self) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet (we hold the Child).
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
    }

    /// Waits up to `within` for its `/readyz` on `admin` to answer 200; fails, with its log,
    /// when it exits first or is still not ready then.
    pub async fn wait_ready(&mut self, admin: SocketAddr, within: Duration) {
        let deadline = Instant::now() + within;
        while super::readyz(admin).await != 200 {
            if let Some(status) = self.wait_exit(Duration::ZERO).await {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} is not ready within {within:?}:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `within` for it to exit; None if it is still running then.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().expect("not reaped yet").try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `/metrics` text of an admin port.
pub async fn scrape(admin: SocketAddr) -> String {
    let resp = reqwest::Client::new()
        .get(format!("http://{admin}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("scraping {admin}: {e}"));
    resp.text().await.unwrap()
}

/// The partitions of `topic` whose `cowork_consumer_lag` series a consumer exposes: the ones it
/// owns.
pub fn owned_partitions(metrics: &str, topic: &str) -> BTreeSet<i32> {
    let prefix = format!("cowork_consumer_lag{{topic=\"{topic}\",partition=\"");
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix)?.split('"').next()?.parse().ok())
        .collect()
}

/// The sum of every series of `name` (with any labels) in a `/metrics` text.
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
