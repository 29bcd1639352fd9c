//! Cluster mode (`clickhouse.cluster`) against a real cluster: 2 shards x 2 replicas of
//! ClickHouse 18.16 and ZooKeeper (`scripts/cluster`), with the edge, a Kafka-protocol broker
//! and the consumer in-process. The consumer inserts through the Distributed tables on node
//! `s1r1`, synchronously (`insert_distributed_sync`), so its offsets are committed only once
//! every shard has its rows.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::clickhouse::{self, query};
use common::cluster::{Cluster, NAME};
use common::TestEdge;
use cowork_ingest::config::Config;
use cowork_ingest::consumer;
use cowork_ingest::kafka::dev_broker::DevCluster;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Setup {
    cluster: Cluster,
    _broker: DevCluster,
    edge: TestEdge,
    config: Config,
    admin: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Setup {
    /// A cluster, migrated in cluster mode through `s1r1`, and one consumer writing to it.
    async fn start() -> Setup {
        let cluster = Cluster::start();
        let (broker, edge) = common::start_with_broker(&[]).await;
        let mut config = common::kafka::consumer_settings(edge.config.clone());
        config.consumer.group_id = "cowork-cluster".into();
        config.consumer.retry_max_ms = 1000;
        config.clickhouse.cluster = NAME.into();
        let config = clickhouse::migrated(config, cluster.url("s1r1")).await;
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = admin.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (config, stop) = (config.clone(), stop.clone());
            async move { consumer::run(config, admin, stop).await.expect("consumer runs") }
        });
        common::wait_ready(addr, Duration::from_secs(30)).await;
        Setup {
            cluster,
            _broker: broker,
            edge,
            config,
            admin: addr,
            stop,
            task,
        }
    }

    async fn send(&self, folder: &str) {
        common::post_corpus(&reqwest::Client::new(), &self.edge, &common::corpus(folder)).await;
    }

    fn db(&self) -> &str {
        &self.config.clickhouse.database
    }

    /// `SELECT count() FROM db.<local table> [FINAL]` on one node: what that replica holds.
    async fn local_count(&self, node: &str, table: &str, fin: bool) -> u64 {
        let sql = format!(
            "SELECT count() FROM {}.{table}_local{}",
            self.db(),
            if fin { " FINAL" } else { "" }
        );
        query(self.cluster.url(node), &sql).await.trim().parse().unwrap()
    }

    /// Both replicas of each shard hold the same rows, and the shards together hold the corpus
    /// once: the sharding key sent every copy of an event to the same shard.
    async fn assert_replicas_agree(&self) {
        for node in common::cluster::NODES {
            query(
                self.cluster.url(node),
                &format!("SYSTEM SYNC REPLICA {}.events_local", self.db()),
            )
            .await;
        }
        let mut per_shard = Vec::new();
        for (a, b) in [("s1r1", "s1r2"), ("s2r1", "s2r2")] {
            let (x, y) = (
                self.local_count(a, "events", true).await,
                self.local_count(b, "events", true).await,
            );
            assert_eq!(x, y, "replicas {a} and {b} of one shard agree");
            assert!(x > 0, "shard of {a} holds part of the corpus");
            per_shard.push(x);
        }
        assert_eq!(
            per_shard.iter().sum::<u64>(),
            clickhouse::CORPUS_EVENTS,
            "{per_shard:?}"
        );
    }

    async fn paused(&self) -> bool {
        let text = reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines().any(|l| l == "cowork_consumer_paused 1")
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// The corpus is exact on the cluster, rollups included, and stays exact after a resend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_and_its_rollups_are_exact_on_a_cluster() {
    let s = Setup::start().await;
    let engine = query(
        s.cluster.url("s2r2"),
        &format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name IN ('events', 'events_local') ORDER BY name",
            s.db()
        ),
    )
    .await;
    assert_eq!(
        engine, "Distributed\nReplicatedReplacingMergeTree\n",
        "migrated ON CLUSTER"
    );
    s.send("proto-gzip").await;
    clickhouse::wait_events(&s.config, clickhouse::CORPUS_EVENTS, Duration::from_secs(90)).await;
    clickhouse::wait_rollups(&s.config, Duration::from_secs(60)).await;
    clickhouse::assert_matches_expected(&s.config, "on the cluster").await;
    s.send("json-none").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    clickhouse::assert_matches_expected(&s.config, "on the cluster, after a resend").await;
    s.assert_replicas_agree().await;

    // Metrics and spans on the cluster: the DELTA export for acme, the CUMULATIVE one (with its
    // restart) for globex; the cumulative baselines are read across shards.
    let root = common::signals::fixtures();
    let client = reqwest::Client::new();
    let globex = format!("Bearer {}", s.edge.keys.other_tenant);
    let acme = s.edge.bearer();
    for (path, bearer, folder) in [
        ("/v1/metrics", &acme, "metrics-proto-delta"),
        ("/v1/traces", &acme, "traces-proto"),
        ("/v1/metrics", &globex, "metrics-json-cumulative"),
    ] {
        common::post_bodies(&client, &s.edge, path, bearer, &common::corpus_at(&root, folder)).await;
    }
    let expected = common::signals::read_json(&root.join("expected-delta.json"));
    let want = common::signals::expected_users(&expected);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        clickhouse::wait_rollups(&s.config, Duration::from_secs(60)).await;
        let (a, g) = (
            common::signals::productivity(&s.config, "acme").await,
            common::signals::productivity(&s.config, "globex").await,
        );
        let spans = clickhouse::count(&s.config, "spans FINAL").await;
        if common::signals::same(&a, &want) && common::signals::same(&g, &want) && spans > 0 {
            break;
        }
        if Instant::now() >= deadline {
            common::signals::assert_same(&a, &want, "delta on the cluster");
            common::signals::assert_same(&g, &want, "cumulative on the cluster");
        }
        assert!(Instant::now() < deadline, "the signals did not land on the cluster");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        clickhouse::count(&s.config, "spans FINAL").await,
        expected["spans"]["count"].as_u64().unwrap()
    );
    s.stop().await;
}

/// One replica SIGKILLed mid-stream and started again: nothing lost or doubled, and it catches
/// up with its shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_loses_and_doubles_nothing() {
    let s = Setup::start().await;
    let bodies = common::corpus("proto-none");
    let client = reqwest::Client::new();
    let (first, rest) = bodies.split_at(bodies.len() / 3);
    common::post_corpus(&client, &s.edge, first).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while clickhouse::count(&s.config, "events").await == 0 {
        assert!(Instant::now() < deadline, "nothing stored on the cluster");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.cluster.kill_node("s2r2");
    common::post_corpus(&client, &s.edge, rest).await;
    clickhouse::wait_events(&s.config, clickhouse::CORPUS_EVENTS, Duration::from_secs(90)).await;
    s.cluster.start_node("s2r2");
    clickhouse::assert_matches_expected(&s.config, "after a replica was killed").await;
    s.assert_replicas_agree().await;
    s.stop().await;
}

/// A whole shard down: the consumer pauses and retries; once the shard is back, everything is
/// there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_down_pauses_the_consumer_and_loses_nothing() {
    let s = Setup::start().await;
    s.cluster.kill_node("s2r1");
    s.cluster.kill_node("s2r2");
    s.send("proto-gzip").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.paused().await {
        assert!(
            Instant::now() < deadline,
            "the consumer did not pause while shard 2 was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing of the paused batch counts as stored: its offsets are not committed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(s.paused().await, "still paused while the shard is down");
    s.cluster.start_node("s2r1");
    s.cluster.start_node("s2r2");
    clickhouse::wait_events(&s.config, clickhouse::CORPUS_EVENTS, Duration::from_secs(120)).await;
    clickhouse::assert_matches_expected(&s.config, "after a shard came back").await;
    assert!(!s.paused().await, "resumed");
    s.assert_replicas_agree().await;
    s.stop().await;
}
