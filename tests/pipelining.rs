//! The consumer's pipeline, against real parts: the suite's Apache Kafka broker, a ClickHouse
//! 18.16 server of the test's own (frozen with SIGSTOP, or killed with SIGKILL and started again
//! on the same data and port), the edge in-process, and the consumer as a process of its own.
//!
//! - While ClickHouse holds an insert, the consumer keeps decoding the next batch (and, with
//!   `consumer.pipelined = false`, it does not: the two take turns).
//! - ClickHouse killed twice under steady load: every acknowledged event is stored exactly once,
//!   and the group commits everything.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::clickhouse::{self, ClickHouse, CORPUS_EVENTS};
use common::kafka::{self, Proc};
use common::TestEdge;
use cowork_ingest::config::Config;
use cowork_ingest::ops::loadgen::{self, Protocol, Style};

/// The ClickHouse server this test process started (its only one): a child of this process.
fn clickhouse_pid() -> i32 {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = rest.split_whitespace().nth(1).unwrap_or_default();
        if ppid == me && comm.starts_with("clickhouse") {
            found.push(entry.file_name().to_string_lossy().parse::<i32>().unwrap());
        }
    }
    assert_eq!(found.len(), 1, "one ClickHouse server child: {found:?}");
    found[0]
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a child of this process, which it has not reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// A pipeline of the test's own: ClickHouse, topics and group on the shared broker, the edge
/// in-process, the consumer as a process (with `sets` on its command line).
struct Setup {
    ch: ClickHouse,
    config: Config,
    edge: TestEdge,
    consumer: Proc,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(sets: &[String]) -> Setup {
        let ch = ClickHouse::start();
        let dir = tempfile::tempdir().unwrap();
        let keys = common::make_keys(&dir.path().join("keys.toml"));
        let mut config = common::config(kafka::shared(), dir.path(), &[]);
        kafka::isolate(&mut config);
        let config = clickhouse::migrated(kafka::consumer_settings(config), &ch.url).await;
        kafka::create_topics(&config).await;
        let path = kafka::write_config(&config, dir.path(), "cowork.toml");
        let edge = common::start_edge_with(config.clone(), keys, tempfile::tempdir().unwrap()).await;
        let admin: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse().unwrap();
        let mut all = vec![format!("consumer.admin_listen={admin}")];
        all.extend(sets.iter().cloned());
        let mut consumer = Proc::spawn("consumer", &path, &all, &["consume"], &[]);
        consumer.wait_ready(admin, Duration::from_secs(30)).await;
        Setup {
            ch,
            config,
            edge,
            consumer,
            admin,
            _dir: dir,
        }
    }

    async fn metric(&self, name: &str) -> f64 {
        kafka::metric_sum(&kafka::scrape(self.admin).await, name)
    }

    /// Payload bytes the consumer has taken from Kafka (decoded into a batch).
    async fn taken(&self) -> f64 {
        self.metric("cowork_consumer_bytes_total").await
    }

    /// Messages whose batch is stored.
    async fn stored(&self) -> f64 {
        self.metric("cowork_consumer_messages_total").await
    }

    /// Waits until the bytes taken stop moving (for `quiet`), and returns them.
    async fn taken_settled(&self, quiet: Duration, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        let mut last = self.taken().await;
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.taken().await;
            if now == last {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the consumer kept taking bytes for {within:?}"
            );
            last = now;
        }
    }
}

/// ClickHouse frozen (SIGSTOP) while the consumer holds a batch: the insert hangs (the server
/// accepts the connection and never answers). Then more requests arrive. Pipelined, the consumer
/// takes and decodes them into the next batch meanwhile, with nothing stored and without
/// pausing; with `pipelined = false` it takes nothing until the insert is over, and pauses once
/// the insert has been held for 5 s. Once ClickHouse runs again, the corpus is exact either way.
async fn a_held_insert(pipelined: bool) {
    let s = Setup::start(&[format!("consumer.pipelined={pipelined}")]).await;
    let bodies = common::corpus("proto-gzip");
    let (first, rest) = bodies.split_at(bodies.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    let client = reqwest::Client::new();
    common::post_corpus(&client, &s.edge, first).await;
    kafka::wait_caught_up(&s.config, Duration::from_secs(60)).await;
    let stored_before = s.stored().await;
    assert!(stored_before > 0.0);

    let pid = clickhouse_pid();
    signal(pid, libc::SIGSTOP);
    common::post_corpus(&client, &s.edge, second).await;
    // The second part is taken, its batch closes (200 ms) and its insert hangs.
    let held = s.taken_settled(Duration::from_secs(1), Duration::from_secs(20)).await;
    common::post_corpus(&client, &s.edge, third).await;
    let third_bytes: usize = third.iter().map(|b| b.body.len()).sum();
    if pipelined {
        let deadline = Instant::now() + Duration::from_secs(15);
        while s.taken().await < held + third_bytes as f64 {
            assert!(
                Instant::now() < deadline,
                "the next batch was not decoded while the insert was held:\n{}",
                s.consumer.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            s.taken().await,
            held,
            "not pipelined: nothing is taken while an insert runs"
        );
    }
    let text = kafka::scrape(s.admin).await;
    assert_eq!(
        kafka::metric_sum(&text, "cowork_consumer_messages_total"),
        stored_before,
        "nothing was stored while ClickHouse was frozen"
    );
    // Pipelined, the next batch has room: no pause, however long the insert is held. Not
    // pipelined, the loop cannot take anything while the insert runs: past 5 s it pauses (and
    // polls Kafka again, so that the group keeps it).
    assert_eq!(
        text.lines().any(|l| l == "cowork_consumer_paused 1"),
        !pipelined,
        "paused while the insert was held"
    );

    signal(pid, libc::SIGCONT);
    clickhouse::wait_events(&s.config, CORPUS_EVENTS, Duration::from_secs(90)).await;
    kafka::wait_caught_up(&s.config, Duration::from_secs(60)).await;
    clickhouse::assert_matches_expected(&s.config, "after ClickHouse was frozen mid-stream").await;
    drop(s.consumer);
    s.edge.stop().await;
    drop(s.ch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_batch_is_decoded_while_clickhouse_holds_the_insert() {
    a_held_insert(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_pipelined_decoding_waits_for_the_insert() {
    a_held_insert(false).await;
}

/// Steady `loadgen` traffic (gzip protobuf sessions) while ClickHouse is SIGKILLed twice, each
/// time started again on the same data a few seconds later, with batches in flight and filling:
/// every event the edge acknowledged is stored exactly once, and the group commits all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_killed_twice_under_load_loses_and_doubles_nothing() {
    let mut s = Setup::start(&[]).await;
    let load = tokio::spawn(loadgen::run(loadgen::Options {
        endpoint: format!("http://{}", s.edge.http),
        protocol: Protocol::HttpProtobuf,
        gzip: true,
        api_key: s.edge.keys.ingest.clone(),
        sessions: 0,
        duration: Some(Duration::from_secs(40)),
        rate: 1500.0,
        batch: 50,
        concurrency: 4,
        seed: 1717,
        styles: vec![Style::V2, Style::Strings, Style::Last9, Style::Legacy],
        progress: None,
        signals: vec![cowork_ingest::otlp::Signal::Logs],
    }));
    let mut paused_seen = 0;
    for round in 0..2 {
        tokio::time::sleep(Duration::from_secs(8)).await;
        let stored = s.stored().await;
        assert!(
            stored > 0.0,
            "round {round}: stored nothing yet:\n{}",
            s.consumer.log_tail()
        );
        signal(clickhouse_pid(), libc::SIGKILL);
        let killed = Instant::now();
        while killed.elapsed() < Duration::from_secs(5) {
            if kafka::scrape(s.admin)
                .await
                .lines()
                .any(|l| l == "cowork_consumer_paused 1")
            {
                paused_seen += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep_until((killed + Duration::from_secs(5)).into()).await;
        s.ch.restart();
    }
    assert_eq!(paused_seen, 2, "the consumer paused each time ClickHouse was gone");
    let report = load.await.unwrap().unwrap();
    assert_eq!(report.failed_events, 0, "{report}");
    assert!(report.events > 10_000, "{report}");
    kafka::wait_caught_up(&s.config, Duration::from_secs(120)).await;
    clickhouse::wait_events(&s.config, report.events, Duration::from_secs(60)).await;
    let by_event: BTreeMap<String, u64> = clickhouse::rows(
        &s.config,
        "SELECT event_name, count() FROM {db}.events FINAL GROUP BY event_name",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    assert_eq!(by_event, report.by_event, "every acknowledged event, by name");
    let once = clickhouse::count(&s.config, "events FINAL").await;
    assert_eq!(once, report.events, "exactly once");
    let ids: u64 = clickhouse::rows(&s.config, "SELECT uniqExact(event_id) FROM {db}.events").await[0][0]
        .parse()
        .unwrap();
    assert_eq!(ids, report.events, "one event id per acknowledged event");
    eprintln!(
        "{report}{once} events once, {} rows before deduplication",
        clickhouse::count(&s.config, "events").await
    );
    drop(s.consumer);
    s.edge.stop().await;
}
