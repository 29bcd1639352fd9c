//! End to end: the consumer (the release binary, its own process) reading the corpus from the
//! dev broker and writing it into a real ClickHouse, against ClickHouse's own insert ceiling for
//! the same rows, in one run on this machine.
//!
//! ```text
//! cargo bench --bench pipeline
//! BENCH_COPIES=100 cargo bench --bench pipeline
//! ```
//!
//! Each copy of the corpus goes in under its own tenant, so no event collapses into another.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use cowork_ingest::clickhouse::rows::Rows;
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::clickhouse::Table;
use cowork_ingest::config::{Config, ContentPolicy};
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::envelope::header;
use cowork_ingest::kafka::dev_broker;
use cowork_ingest::otlp::{Compression, ContentType};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

const RECEIVED_MS: i64 = 1_795_100_000_000;

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf reads a constant of the system; it takes no pointers.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

async fn count(url: &str, db: &str) -> u64 {
    common::clickhouse::query(url, &format!("SELECT count() FROM {db}.events"))
        .await
        .trim()
        .parse()
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let copies: usize = std::env::var("BENCH_COPIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ch = common::clickhouse::ClickHouse::start();
    // BENCH_KAFKA=host:port runs against that (real) broker, on a logs topic of this run's own
    // created by `topics check --create` (12 partitions); else against the in-memory dev broker,
    // which keeps about 5 MB per partition: enough partitions for the run.
    let real = std::env::var("BENCH_KAFKA").ok().filter(|b| !b.is_empty());
    let mut kafka_config = Config::default();
    let (_cluster, brokers, partitions) = match &real {
        Some(brokers) => {
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            kafka_config.kafka.brokers = brokers.clone();
            kafka_config.kafka.logs_topic = format!("bench-logs-{suffix}");
            kafka_config.kafka.metrics_topic = format!("bench-metrics-{suffix}");
            kafka_config.kafka.traces_topic = format!("bench-traces-{suffix}");
            kafka_config.consumer.dlq_topic = format!("bench-dlq-{suffix}");
            let (report, _) = rt
                .block_on(cowork_ingest::ops::topics::check(&kafka_config, true))
                .unwrap();
            eprint!("{report}");
            (None, brokers.clone(), 12)
        }
        None => {
            let cluster = dev_broker::start(1, 24, &dev_broker::topics(&kafka_config)).unwrap();
            let brokers = cluster.bootstrap_servers();
            (Some(cluster), brokers, 24)
        }
    };
    eprintln!(
        "broker: {}",
        if real.is_some() {
            "Apache Kafka"
        } else {
            "dev broker (in memory)"
        }
    );
    let bodies = common::corpus("proto-gzip");

    // ClickHouse's ceiling: the same rows, encoded in advance, inserted in 50k-event batches.
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
    let started = Instant::now();
    rt.block_on(async {
        for rows in &batches {
            for t in Table::ALL {
                let data = rows.buf(t).to_vec();
                if !data.is_empty() {
                    store.insert(t.name(), t.columns(), data.into()).await.unwrap();
                }
            }
        }
    });
    let ceiling = events as f64 / started.elapsed().as_secs_f64();

    // The pipeline: raw payloads in Kafka, the consumer process writing them.
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
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
            let topic = &kafka_config.kafka.logs_topic;
            // Round-robin: the mock broker drops a partition's oldest messages past ~5 MB.
            let partition = sent % partitions;
            while let Err((e, _)) = producer.send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&b.body)
                    .headers(h.clone()),
            ) {
                assert!(e.to_string().contains("Queue full"), "{e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let config = rt.block_on(common::clickhouse::migrated(Config::default(), &ch.url));
    let db = config.clickhouse.database.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumer.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nlogs_topic = \"{}\"\n[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n[consumer]\nadmin_listen = \"127.0.0.1:0\"\ndlq_topic = \"{}\"\n",
            kafka_config.kafka.logs_topic, ch.url, kafka_config.consumer.dlq_topic
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
        .args(["--config", path.to_str().unwrap(), "consume"])
        .env("RUST_LOG", "warn")
        .env_remove("KAFKA_BROKERS")
        .spawn()
        .unwrap();
    let pid = child.id();
    // Startup (joining the group) is timed apart from the steady state: from the first stored
    // row to the last.
    let (startup, first, first_at, wall, cpu) = rt.block_on(async {
        let (first, first_at) = loop {
            let n = count(&ch.url, &db).await;
            if n > 0 {
                break (n, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let startup = first_at.duration_since(started).as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            assert!(
                Instant::now() < deadline,
                "the consumer stalled at {} of {events} events",
                count(&ch.url, &db).await
            );
            if count(&ch.url, &db).await >= events {
                return (
                    startup,
                    first,
                    first_at,
                    first_at.elapsed().as_secs_f64(),
                    cpu_seconds(pid),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let _ = first_at;
    let _ = child.kill();
    let _ = child.wait();
    let pipeline = (events - first) as f64 / wall;
    println!("| {events} events ({copies} copies of the corpus, protobuf+gzip) | value |");
    println!("|---|---:|");
    println!(
        "| ClickHouse insert ceiling (pre-encoded RowBinary, 50k-event inserts, all tables) | {ceiling:.0} events/s |"
    );
    println!("| consumer start to first stored row (joins the group) | {startup:.1} s |");
    println!("| pipeline: Kafka to ClickHouse, wall clock from first to last row | {pipeline:.0} events/s |");
    println!("| pipeline / ceiling | {:.2} |", pipeline / ceiling);
    println!("| consumer CPU time | {cpu:.2} s |");
    println!(
        "| consumer CPU per million events | {:.2} s |",
        cpu / events as f64 * 1e6
    );
    println!("| events per consumer CPU-second | {:.0} |", events as f64 / cpu);
}
