//! The consumer under overload: ClickHouse down for 10 minutes (its process stopped, then started
//! again on the same data directory and port) while `loadgen` keeps sending realistic gzip
//! sessions through the edge into real Apache Kafka (the suite's broker). The consumer, a
//! process of its own, pauses; its peak RSS (`VmHWM`) stays within the bound the README states
//! (two batches of `batch_max_bytes`, plus librdkafka's prefetch, over its idle size), during
//! the outage and through the catch-up after it; and once ClickHouse is back, every event the
//! edge acknowledged is stored exactly once.
//!
//! `COWORK_OVERLOAD_DOWN_SECS` shortens the outage for local iteration; the suite runs the
//! default, 600 s (`.config/nextest.toml` gives this binary its own time limit). The test mostly
//! sleeps: the load is a few hundred events per second.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::clickhouse::{self, ClickHouse};
use common::kafka::{self, Proc};
use cowork_ingest::ops::loadgen::{self, Protocol, Style};

/// The consumer's batches are kept small, so that the bound is tight enough to catch a consumer
/// that keeps taking messages while it cannot store them (the backlog of the outage is many
/// times the bound).
const BATCH_MAX_BYTES: u64 = 4 << 20;
/// librdkafka's prefetch queue for this test (`queued.max.messages.kbytes`), KiB.
const QUEUE_KIB: u64 = 8 << 10;
/// librdkafka may overshoot the queue by `fetch.message.max.bytes` (1 MiB by default) per
/// partition it fetches: 12 of the logs topic, 6 each of the other two.
const FETCH_OVERSHOOT: u64 = 24 << 20;
/// What else a busy consumer holds that the idle one does not: allocator slack, one payload
/// being decompressed, HTTP and Kafka client buffers.
const SLACK: u64 = 48 << 20;
/// Events per second loadgen aims at.
const RATE: f64 = 300.0;

fn paused(metrics: &str) -> bool {
    metrics.lines().any(|l| l == "cowork_consumer_paused 1")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_for_ten_minutes_pauses_the_consumer_within_its_memory_bound_and_loses_nothing() {
    let down = Duration::from_secs(
        std::env::var("COWORK_OVERLOAD_DOWN_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    let mut ch = ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = common::make_keys(&dir.path().join("keys.toml"));
    let mut config = common::config(kafka::shared(), dir.path(), &[]);
    kafka::isolate(&mut config);
    config
        .kafka
        .consumer
        .insert("queued.max.messages.kbytes".into(), QUEUE_KIB.to_string());
    let mut config = clickhouse::migrated(kafka::consumer_settings(config), &ch.url).await;
    config.consumer.batch_max_age_ms = 1000;
    kafka::create_topics(&config).await;
    let path = kafka::write_config(&config, dir.path(), "cowork.toml");
    let edge = common::start_edge_with(config.clone(), keys, tempfile::tempdir().unwrap()).await;

    let admin: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
    let mut consumer = Proc::spawn(
        "consumer",
        &path,
        &[
            format!("consumer.admin_listen={admin}"),
            format!("consumer.batch_max_bytes={BATCH_MAX_BYTES}"),
        ],
        &["consume"],
        &[("RUST_LOG", "warn,rdkafka=warn")],
    );
    consumer.wait_ready(admin, Duration::from_secs(30)).await;
    let pid = consumer.pid();
    let idle = common::status_bytes(pid, "VmRSS");
    let bound = idle + 2 * BATCH_MAX_BYTES + QUEUE_KIB * 1024 + FETCH_OVERSHOOT + SLACK;

    // Load for the whole outage and a little before and after it.
    let warm_up = Duration::from_secs(20);
    let load = tokio::spawn(loadgen::run(loadgen::Options {
        endpoint: format!("http://{}", edge.http),
        protocol: Protocol::HttpProtobuf,
        gzip: true,
        api_key: edge.keys.ingest.clone(),
        sessions: 0,
        duration: Some(warm_up + down + Duration::from_secs(20)),
        rate: RATE,
        batch: 50,
        concurrency: 2,
        seed: 1313,
        styles: vec![Style::V2, Style::Strings, Style::Last9, Style::Legacy],
        progress: None,
        signals: vec![cowork_ingest::otlp::Signal::Logs],
    }));
    tokio::time::sleep(warm_up).await;
    let before = clickhouse::count(&config, "events").await;
    assert!(before > 0, "nothing stored before the outage:\n{}", consumer.log_tail());

    ch.stop();
    let stopped = Instant::now();
    let in_kafka_at_stop = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || kafka::topic_messages(&c, &c.kafka.logs_topic))
            .await
            .unwrap()
    };
    let deadline = stopped + Duration::from_secs(60);
    loop {
        let text = kafka::scrape(admin).await;
        if paused(&text) && common::readyz(admin).await == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer did not pause within 60 s of ClickHouse stopping:\n{}",
            consumer.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let paused_after = stopped.elapsed();

    // The whole outage: still paused, within the bound, while the topic grows.
    let mut peak_down = 0;
    while stopped.elapsed() < down {
        tokio::time::sleep(Duration::from_secs(10).min(down.saturating_sub(stopped.elapsed()))).await;
        let hwm = common::status_bytes(pid, "VmHWM");
        peak_down = peak_down.max(hwm);
        assert!(
            hwm <= bound,
            "peak RSS {:.1} MiB over the bound {:.1} MiB {:?} into the outage",
            mib(hwm),
            mib(bound),
            stopped.elapsed()
        );
        assert!(
            paused(&kafka::scrape(admin).await),
            "still paused while ClickHouse is down"
        );
    }
    let in_kafka_at_restart = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || kafka::topic_messages(&c, &c.kafka.logs_topic))
            .await
            .unwrap()
    };
    assert!(
        in_kafka_at_restart > in_kafka_at_stop,
        "loadgen kept writing during the outage ({in_kafka_at_stop} then {in_kafka_at_restart} messages)"
    );
    ch.restart();
    let restarted = Instant::now();

    let report = load.await.unwrap().unwrap();
    assert_eq!(report.failed_events, 0, "the edge acknowledged everything: {report}");
    kafka::wait_caught_up(&config, Duration::from_secs(300)).await;
    clickhouse::wait_events(&config, report.events, Duration::from_secs(120)).await;
    let caught_up = restarted.elapsed();
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
        "every acknowledged event, by name, exactly once"
    );
    let distinct = clickhouse::count(&config, "events FINAL").await;
    assert_eq!(distinct, report.events, "exactly once");
    let raw = clickhouse::count(&config, "events").await;

    let text = kafka::scrape(admin).await;
    assert!(!paused(&text), "resumed once ClickHouse was back");
    assert_eq!(common::readyz(admin).await, 200, "ready again");
    let hwm = common::status_bytes(pid, "VmHWM");
    assert!(
        hwm <= bound,
        "peak RSS {:.1} MiB over the bound {:.1} MiB after the catch-up",
        mib(hwm),
        mib(bound)
    );
    eprintln!(
        "ClickHouse down {down:?}; paused {paused_after:?} after the stop; {} messages in the topic at the stop, {} at the restart; \
         caught up {caught_up:?} after the restart; {report}\n{} events stored once ({raw} rows before deduplication, {before} before the outage); \
         RSS idle {:.1} MiB, peak {:.1} MiB during the outage, {:.1} MiB in all; bound {:.1} MiB",
        in_kafka_at_stop,
        in_kafka_at_restart,
        distinct,
        mib(idle),
        mib(peak_down),
        mib(hwm),
        mib(bound)
    );
    drop(consumer);
    edge.stop().await;
}
