//! End to end, in one run on this machine, the consumer (the release binary, its own process)
//! pipelined and not, side by side:
//!
//! 1. **Ceiling**: ClickHouse's own insert rate for the corpus' rows, encoded in advance, in
//!    50k-event batches: a batch's tables inserted one after another, and all at once
//!    (alternated, `BENCH_RUNS` each); the ceiling is the faster median.
//! 2. **Drain**: the same payloads waiting in the raw topic (as the edge publishes them); the
//!    consumer reads them all into ClickHouse: wall clock from the first stored row to the last
//!    (against the ceiling), and its CPU time from `/proc`. The variants run in turn, alternated,
//!    each on the same backlog with a group and a database of its own.
//! 3. **Live**: `loadgen` (realistic gzip protobuf sessions) feeds the edge (the release binary)
//!    at a steady rate; the edge publishes to Apache Kafka, and every variant's consumer, all at
//!    once (a group and a database each), writes the same messages into ClickHouse: consumer CPU
//!    per event from `/proc`, while it runs.
//!
//! ```text
//! cargo bench --bench pipeline
//! BENCH_COPIES=100 BENCH_RUNS=1 BENCH_LIVE_SECS=0 cargo bench --bench pipeline
//! BENCH_BASELINE_BIN=/path/to/old/cowork-ingest cargo bench --bench pipeline
//! ```
//!
//! Variants: `pipelined = false` and `pipelined = true` of this build, and with
//! `BENCH_BASELINE_BIN`, another build of `cowork-ingest` (such as main's before the pipeline)
//! run with the same settings. Knobs: `BENCH_COPIES` (200 copies of the corpus, each under its
//! own tenant, so no event collapses into another), `BENCH_RUNS` (2 drains per variant),
//! `BENCH_LIVE_SECS` (30; 0 skips the live run), `BENCH_LIVE_RATE` (events/s, 10000),
//! `BENCH_SETS` (more `--set key=value` for every consumer, space-separated), `BENCH_KAFKA`
//! (`host:port` of an Apache Kafka for every phase; unset: the drain reads the
//! in-memory dev broker and the live run uses the test suite's Apache Kafka, `COWORK_TEST_KAFKA`
//! or one started by `scripts/kafka`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cowork_ingest::clickhouse::rows::Rows;
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::clickhouse::Table;
use cowork_ingest::config::{Config, ContentPolicy};
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::envelope::header;
use cowork_ingest::kafka::dev_broker;
use cowork_ingest::ops::loadgen::{self, Protocol, Style};
use cowork_ingest::otlp::{Compression, ContentType};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

const RECEIVED_MS: i64 = 1_795_100_000_000;

/// Inserts every batch's pre-encoded rows: its tables one after another, or all at once.
async fn insert_all(store: &Store, batches: &[Rows], concurrent: bool) {
    for rows in batches {
        let inserts = Table::ALL.into_iter().filter(|t| !rows.buf(*t).is_empty()).map(|t| {
            let data = rows.buf(t).to_vec();
            async move { store.insert(t.name(), t.columns(), data.into()).await.unwrap() }
        });
        if concurrent {
            futures::future::join_all(inserts).await;
        } else {
            for insert in inserts {
                insert.await;
            }
        }
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf reads a constant of the system; it takes no pointers.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The whole machine's (busy, total) clock ticks since boot, from the first line of /proc/stat.
fn machine_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap())
        .collect();
    let idle = ticks[3] + ticks[4]; // idle, iowait
    let total: f64 = ticks.iter().take(8).sum(); // up to steal; guest time is counted in user
    (total - idle, total)
}

/// CPU use over a window: seconds of a process, and the machine's busy share.
struct Window {
    ch_cpu: f64,
    machine: (f64, f64),
    started: Instant,
}

impl Window {
    fn open(ch_pid: u32) -> Window {
        Window {
            ch_cpu: cpu_seconds(ch_pid),
            machine: machine_ticks(),
            started: Instant::now(),
        }
    }

    /// (ClickHouse's cores, the machine's busy share) since `open`.
    fn close(&self, ch_pid: u32) -> (f64, f64) {
        let (busy, total) = machine_ticks();
        let cores = (cpu_seconds(ch_pid) - self.ch_cpu) / self.started.elapsed().as_secs_f64();
        (cores, (busy - self.machine.0) / (total - self.machine.1))
    }
}

/// One drain's figures.
struct Drain {
    /// Consumer start to its first stored row, s.
    startup: f64,
    /// Events per second, first stored row to last.
    rate: f64,
    /// The consumer's CPU seconds, all of it.
    cpu: f64,
    /// The consumer's peak RSS, MiB.
    rss: f64,
    /// ClickHouse's CPU, in cores, first row to last.
    ch_cores: f64,
    /// The consumer's CPU in cores over the same window.
    consumer_cores: f64,
    /// Busy share of the whole machine (both cores), first row to last.
    busy: f64,
}

/// Peak RSS of a process (`VmHWM`), MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    common::status_bytes(pid, "VmHWM") as f64 / (1 << 20) as f64
}

/// Rows in `db.events`.
async fn count(url: &str, db: &str) -> u64 {
    // From the parts' metadata, not `count()`, which 18.16 answers by reading a column: polled
    // every 20 ms, that would take ClickHouse's CPU from the run it measures.
    let sql = format!("SELECT sum(rows) FROM system.parts WHERE database = '{db}' AND table = 'events' AND active");
    common::clickhouse::query(url, &sql).await.trim().parse().unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A consumer build and its settings.
struct Variant {
    name: String,
    bin: PathBuf,
    sets: Vec<String>,
}

fn variants() -> Vec<Variant> {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_cowork-ingest"));
    let mut v = Vec::new();
    if let Some(old) = std::env::var_os("BENCH_BASELINE_BIN").filter(|s| !s.is_empty()) {
        v.push(Variant {
            name: format!("baseline ({})", Path::new(&old).display()),
            bin: old.into(),
            sets: vec![],
        });
    }
    v.push(Variant {
        name: "pipelined = false".into(),
        bin: ours.clone(),
        sets: vec!["consumer.pipelined=false".into()],
    });
    v.push(Variant {
        name: "pipelined = true (default)".into(),
        bin: ours,
        sets: vec![],
    });
    v
}

/// A `cowork-ingest` process; killed when dropped.
struct Running(Child);

impl Running {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `BIN --config CONFIG [--set S]... ARGS` with warnings only on stderr.
fn spawn(bin: &Path, config: &Path, sets: &[String], args: &[&str]) -> Running {
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(config);
    for s in sets {
        cmd.args(["--set", s]);
    }
    Running(
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .env_remove("KAFKA_BROKERS")
            .env_remove("COWORK_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
    )
}

/// The consumer's configuration file: brokers, topic names, ClickHouse; everything else is the
/// production default (the group, database and admin port come as `--set`s).
fn consumer_toml(dir: &Path, name: &str, brokers: &str, k: &Config, url: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nlogs_topic = \"{}\"\nmetrics_topic = \"{}\"\ntraces_topic = \"{}\"\n\
             [clickhouse]\nurl = \"{url}\"\n[consumer]\ndlq_topic = \"{}\"\n",
            k.kafka.logs_topic, k.kafka.metrics_topic, k.kafka.traces_topic, k.consumer.dlq_topic
        ),
    )
    .unwrap();
    path
}

fn consumer_sets(v: &Variant, db: &str) -> Vec<String> {
    let mut sets = vec![
        format!("clickhouse.database={db}"),
        format!("consumer.group_id=bench-{}", uuid::Uuid::new_v4().simple()),
        format!("consumer.admin_listen=127.0.0.1:{}", common::free_port()),
    ];
    sets.extend(v.sets.iter().cloned());
    // More settings for every variant, e.g. `clickhouse.rollup_refresh_ms=3600000`.
    if let Ok(extra) = std::env::var("BENCH_SETS") {
        sets.extend(extra.split_whitespace().map(String::from));
    }
    sets
}

/// Topic names of this run's own (the broker may be shared).
fn own_topics() -> Config {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let mut c = Config::default();
    c.kafka.logs_topic = format!("bench-logs-{suffix}");
    c.kafka.metrics_topic = format!("bench-metrics-{suffix}");
    c.kafka.traces_topic = format!("bench-traces-{suffix}");
    c.consumer.dlq_topic = format!("bench-dlq-{suffix}");
    c
}

/// One drain: the consumer reads the whole backlog.
fn drain(rt: &tokio::runtime::Runtime, v: &Variant, toml: &Path, url: &str, ch_pid: u32, events: u64) -> Drain {
    let db = rt
        .block_on(common::clickhouse::migrated(Config::default(), url))
        .clickhouse
        .database;
    let started = Instant::now();
    let child = spawn(&v.bin, toml, &consumer_sets(v, &db), &["consume"]);
    let pid = child.pid();
    rt.block_on(async {
        let (first, first_at, window, cpu_at_first) = loop {
            let n = count(url, &db).await;
            if n > 0 {
                break (n, Instant::now(), Window::open(ch_pid), cpu_seconds(pid));
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{}: nothing stored",
                v.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let n = count(url, &db).await;
            assert!(
                Instant::now() < deadline,
                "{}: stalled at {n} of {events} events",
                v.name
            );
            if n >= events {
                let wall = first_at.elapsed().as_secs_f64();
                let (ch_cores, busy) = window.close(ch_pid);
                let cpu = cpu_seconds(pid);
                return Drain {
                    startup: first_at.duration_since(started).as_secs_f64(),
                    rate: (events - first) as f64 / wall,
                    cpu,
                    rss: peak_rss_mib(pid),
                    ch_cores,
                    consumer_cores: (cpu - cpu_at_first) / wall,
                    busy,
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let copies: usize = env_or("BENCH_COPIES", 200);
    let runs: usize = env_or("BENCH_RUNS", 2);
    let live_secs: f64 = env_or("BENCH_LIVE_SECS", 30.0);
    let live_rate: f64 = env_or("BENCH_LIVE_RATE", 10_000.0);
    let variants = variants();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ch = common::clickhouse::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let real = std::env::var("BENCH_KAFKA").ok().filter(|b| !b.is_empty());
    let bodies = common::corpus("proto-gzip");

    // 1. ClickHouse's ceiling: the same rows, encoded in advance, inserted in 50k-event batches.
    let config = rt.block_on(common::clickhouse::migrated(Config::default(), &ch.url));
    let store = Store::new(&config.clickhouse);
    let mut decoder = Decoder::new(64 << 20, Default::default());
    let policy = ContentPolicy::default();
    let tenants: Vec<String> = (0..copies).map(|c| format!("bench-{c}")).collect();
    let mut batches = vec![Rows::default()];
    for tenant in &tenants {
        for b in &bodies {
            let env = Envelope {
                tenant,
                content_type: ContentType::Protobuf,
                compression: Compression::Gzip,
                received_at_ns: RECEIVED_MS as u64 * 1_000_000,
                ..Envelope::default()
            };
            let rows = batches.last_mut().unwrap();
            decoder.rows_into(&env, &b.body, 0, 0, &policy, rows).unwrap();
            if rows.records() >= 50_000 {
                batches.push(Rows::default());
            }
        }
    }
    let events: u64 = batches.iter().map(|r| r.records() as u64).sum();
    let tables_per_batch = Table::ALL.iter().filter(|t| !batches[0].buf(**t).is_empty()).count();
    // One table after another, and every table of a batch at once: alternated, `runs` each.
    let mut ceilings = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, concurrent) in [false, true].into_iter().enumerate() {
            let window = Window::open(ch.pid());
            let started = Instant::now();
            rt.block_on(insert_all(&store, &batches, concurrent));
            let rate = events as f64 / started.elapsed().as_secs_f64();
            let (cores, busy) = window.close(ch.pid());
            eprintln!(
                "ceiling ({}): {rate:.0} events/s, ClickHouse {cores:.2} cores, machine {:.0}% busy",
                if concurrent { "tables at once" } else { "tables in turn" },
                busy * 100.0
            );
            ceilings[i].push((rate, cores, busy));
        }
    }
    let [serial, concurrent] = ceilings.map(|mut c| {
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        c[c.len() / 2]
    });
    let (ceiling, ceiling_ch_cores, ceiling_busy) = if concurrent.0 > serial.0 { concurrent } else { serial };
    drop(batches);

    // 2. Drain: raw payloads in Kafka, each variant's consumer process writing all of them.
    let drain_topics = own_topics();
    let (_cluster, drain_brokers, partitions) = match &real {
        Some(brokers) => {
            let mut c = drain_topics.clone();
            c.kafka.brokers = brokers.clone();
            let (report, _) = rt.block_on(cowork_ingest::ops::topics::check(&c, true)).unwrap();
            eprint!("{report}");
            (None, brokers.clone(), 12)
        }
        None => {
            // The dev broker keeps about 5 MB per partition: enough partitions for the run.
            let cluster = dev_broker::start(1, 24, &dev_broker::topics(&drain_topics)).unwrap();
            let brokers = cluster.bootstrap_servers();
            (Some(cluster), brokers, 24)
        }
    };
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &drain_brokers)
        .create()
        .unwrap();
    let mut sent = 0;
    for tenant in &tenants {
        for b in &bodies {
            sent += 1;
            let mut h = OwnedHeaders::new();
            for (k, v) in [
                (header::TENANT, tenant.as_str()),
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "gzip"),
                (header::RECEIVED_AT_MS, &RECEIVED_MS.to_string()),
            ] {
                h = h.insert(Header { key: k, value: Some(v) });
            }
            // Round-robin: the mock broker drops a partition's oldest messages past ~5 MB.
            while let Err((e, _)) = producer.send(
                BaseRecord::<(), _>::to(&drain_topics.kafka.logs_topic)
                    .partition(sent % partitions)
                    .payload(&b.body)
                    .headers(h.clone()),
            ) {
                assert!(e.to_string().contains("Queue full"), "{e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let toml = consumer_toml(dir.path(), "drain.toml", &drain_brokers, &drain_topics, &ch.url);
    let mut drains: Vec<Vec<Drain>> = variants.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (i, v) in variants.iter().enumerate() {
            let r = drain(&rt, v, &toml, &ch.url, ch.pid(), events);
            eprintln!(
                "drain {run} {}: {:.0} events/s, {:.2} µs CPU per event, ClickHouse {:.2} cores, machine {:.0}% busy",
                v.name,
                r.rate,
                r.cpu / events as f64 * 1e6,
                r.ch_cores,
                r.busy * 100.0
            );
            drains[i].push(r);
        }
    }

    // 3. Live: loadgen -> edge -> Apache Kafka -> every variant's consumer at once.
    let live = (live_secs > 0.0).then(|| {
        let brokers = real.clone().unwrap_or_else(|| common::kafka::shared().to_string());
        let mut config = own_topics();
        config.kafka.brokers = brokers.clone();
        let (report, _) = rt.block_on(cowork_ingest::ops::topics::check(&config, true)).unwrap();
        eprint!("{report}");
        let keys = common::make_keys(&dir.path().join("keys.toml"));
        let edge_admin: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
        let edge_http: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
        let toml = consumer_toml(dir.path(), "live.toml", &brokers, &config, &ch.url);
        let edge = spawn(
            Path::new(env!("CARGO_BIN_EXE_cowork-ingest")),
            &toml,
            &[
                format!("edge.keys_path={}", dir.path().join("keys.toml").display()),
                format!("edge.http_listen={edge_http}"),
                format!("edge.grpc_listen=127.0.0.1:{}", common::free_port()),
                format!("edge.admin_listen={edge_admin}"),
            ],
            &["edge"],
        );
        let consumers: Vec<(String, Running)> = variants
            .iter()
            .map(|v| {
                let db = rt
                    .block_on(common::clickhouse::migrated(Config::default(), &ch.url))
                    .clickhouse
                    .database;
                let sets = consumer_sets(v, &db);
                let admin: SocketAddr = sets[2].split('=').nth(1).unwrap().parse().unwrap();
                let child = spawn(&v.bin, &toml, &sets, &["consume"]);
                rt.block_on(common::wait_ready(admin, Duration::from_secs(60)));
                (db, child)
            })
            .collect();
        rt.block_on(common::wait_ready(edge_admin, Duration::from_secs(60)));
        let cpu_before: Vec<f64> = consumers.iter().map(|c| cpu_seconds(c.1.pid())).collect();
        let edge_before = cpu_seconds(edge.pid());
        let started = Instant::now();
        let report = rt
            .block_on(loadgen::run(loadgen::Options {
                endpoint: format!("http://{edge_http}"),
                protocol: Protocol::HttpProtobuf,
                gzip: true,
                api_key: keys.ingest.clone(),
                sessions: 0,
                duration: Some(Duration::from_secs_f64(live_secs)),
                rate: live_rate,
                batch: 100,
                concurrency: 8,
                seed: 7,
                styles: vec![Style::V2, Style::Strings, Style::Last9, Style::Legacy],
                progress: None,
                signals: vec![cowork_ingest::otlp::Signal::Logs],
            }))
            .unwrap();
        let sent_for = started.elapsed().as_secs_f64();
        let edge_cpu = cpu_seconds(edge.pid()) - edge_before;
        assert_eq!(report.failed_events, 0, "{report}");
        let mut out = Vec::new();
        for ((db, child), before) in consumers.iter().zip(cpu_before) {
            let deadline = Instant::now() + Duration::from_secs(300);
            let n = loop {
                let n = rt.block_on(count(&ch.url, db));
                if n >= report.events {
                    break n;
                }
                assert!(
                    Instant::now() < deadline,
                    "live: stalled at {n} of {} events",
                    report.events
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            out.push((
                cpu_seconds(child.pid()) - before,
                n,
                started.elapsed().as_secs_f64(),
                peak_rss_mib(child.pid()),
            ));
        }
        (report, sent_for, edge_cpu, out)
    });

    let w = variants.len();
    let head = |what: &str| {
        println!(
            "| {what} | {} |",
            variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(" | ")
        );
        println!("|---|{}", "---:|".repeat(w));
    };
    let row = |what: &str, cells: Vec<String>| println!("| {what} | {} |", cells.join(" | "));
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    println!(
        "\nClickHouse 18.16 insert ceiling (pre-encoded RowBinary, 50k-event batches, {tables_per_batch} tables each, median of {runs}): \
         {:.0} events/s with a batch's tables in turn, {:.0} with them all at once; the ceiling is the faster, {ceiling:.0} events/s \
         (ClickHouse {ceiling_ch_cores:.2} cores, machine {:.0}% busy)\n",
        serial.0,
        concurrent.0,
        ceiling_busy * 100.0
    );
    head(&format!(
        "drain: {events} events ({copies} copies of the corpus, protobuf+gzip) from {}, median of {runs}",
        if real.is_some() {
            "Apache Kafka"
        } else {
            "the dev broker"
        }
    ));
    let per = |f: &dyn Fn(&Drain) -> f64| -> Vec<f64> {
        drains.iter().map(|rs| median(rs.iter().map(f).collect())).collect()
    };
    row(
        "consumer start to first stored row (s)",
        per(&|r| r.startup).iter().map(|x| format!("{x:.1}")).collect(),
    );
    row(
        "pipeline, first to last row (events/s)",
        per(&|r| r.rate).iter().map(|x| format!("{x:.0}")).collect(),
    );
    row(
        "pipeline / ceiling (goal ≥ 0.8)",
        per(&|r| r.rate)
            .iter()
            .map(|x| format!("**{:.2}**", x / ceiling))
            .collect(),
    );
    row(
        "consumer CPU per event (µs)",
        per(&|r| r.cpu / events as f64 * 1e6)
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect(),
    );
    row(
        "consumer peak RSS (VmHWM, MiB)",
        per(&|r| r.rss).iter().map(|x| format!("{x:.0}")).collect(),
    );
    row(
        &format!("ClickHouse CPU, first row to last (cores; {ceiling_ch_cores:.2} at the ceiling)"),
        per(&|r| r.ch_cores).iter().map(|x| format!("{x:.2}")).collect(),
    );
    row(
        "consumer CPU, first row to last (cores)",
        per(&|r| r.consumer_cores).iter().map(|x| format!("{x:.2}")).collect(),
    );
    row(
        &format!("machine busy, both cores ({:.0}% at the ceiling)", ceiling_busy * 100.0),
        per(&|r| r.busy * 100.0).iter().map(|x| format!("{x:.0}%")).collect(),
    );
    if let Some((report, sent_for, edge_cpu, out)) = live {
        println!();
        head(&format!(
            "live: loadgen → edge → Apache Kafka → consumers, {} events ({:.0}/s for {sent_for:.0} s, gzip protobuf, 100 per request)",
            report.events,
            report.events as f64 / sent_for
        ));
        row(
            "consumer CPU per event (µs, goal ≤ 1.5)",
            out.iter()
                .map(|(cpu, n, _, _)| format!("**{:.2}**", cpu / *n as f64 * 1e6))
                .collect(),
        );
        row(
            "consumer CPU (s)",
            out.iter().map(|(cpu, _, _, _)| format!("{cpu:.2}")).collect(),
        );
        row(
            "last row stored after the load began (s)",
            out.iter().map(|(_, _, at, _)| format!("{at:.1}")).collect(),
        );
        row(
            "consumer peak RSS (VmHWM, MiB)",
            out.iter().map(|(_, _, _, rss)| format!("{rss:.0}")).collect(),
        );
        println!(
            "\nedge CPU per event in the live run: {:.2} µs ({edge_cpu:.2} s for {} events)",
            edge_cpu / report.events as f64 * 1e6,
            report.events
        );
    }
}
