//! The edge under ten times its sustainable request rate, as a process of its own publishing to
//! real Apache Kafka (the suite's broker).
//!
//! 1. Sustainable: eight clients, each sending its next request when the last was answered, for
//!    a few seconds. Every request is acknowledged; their rate is R.
//! 2. Overload: requests arrive open-loop at 10 R for ten seconds, each on its own connection,
//!    half of them large uncompressed bodies that outgrow the first buffer reservation.
//!    - Every answer is 200, or 429/503 with a `Retry-After` of whole seconds: the client always
//!      reads an answer, never a reset connection, even for a body refused half-way through
//!      because the in-flight budget was spent (the rest of the body is read and discarded).
//!    - The edge's peak RSS (`VmHWM`) stays within its bound: its idle size, plus twice
//!      `edge.max_inflight_bytes` (every held body and librdkafka's copy of it), plus 64 KiB
//!      per open connection (its header buffer), plus slack.
//! 3. After: every acknowledged request is in Kafka (a 503 may still be followed by a late
//!    delivery, so there may be more), and the edge accepts again.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::{self, Proc};

const MIB: u64 = 1 << 20;
/// The edge's in-flight budget for this test: small, so overload spends it.
const INFLIGHT: u64 = 16 * MIB;
/// What each open connection may hold outside the budget: its header buffer.
const PER_CONNECTION: u64 = 64 << 10;
/// What a busy edge holds beyond its idle size, the budget and its connections: allocator slack,
/// tokio and librdkafka bookkeeping.
const SLACK: u64 = 64 * MIB;
/// How long the overload lasts.
const OVERLOAD: Duration = Duration::from_secs(10);
/// The most requests the test keeps in flight at once (its own file descriptors).
const MAX_OUTSTANDING: usize = 400;

fn vm_hwm(pid: u32) -> u64 {
    common::status_bytes(pid, "VmHWM")
}

/// What one request got back: its status (0 when no answer was read) and Retry-After.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    /// Why no answer was read; failures print it (through `Debug`).
    #[allow(dead_code)]
    error: Option<String>,
}

async fn send(client: &reqwest::Client, url: &str, auth: &str, body: &Body) -> Answer {
    let mut req = client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json");
    if body.gzip {
        req = req.header("content-encoding", "gzip");
    }
    match req.body(body.bytes.clone()).send().await {
        Ok(r) => Answer {
            status: r.status().as_u16(),
            retry_after: r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("?").to_string()),
            error: None,
        },
        Err(e) => Answer {
            status: 0,
            retry_after: None,
            error: Some(format!("{e:?}")),
        },
    }
}

#[derive(Clone)]
struct Body {
    bytes: bytes::Bytes,
    gzip: bool,
    records: usize,
}

/// A realistic gzip batch, and a large uncompressed one (over 256 KiB).
fn bodies() -> Vec<Body> {
    let small = common::json_logs("overload-gzip", 50);
    let mut n = 200;
    let large = loop {
        let b = common::json_logs("overload-large", n);
        if b.len() > 256 * 1024 {
            break b;
        }
        n *= 2;
    };
    vec![
        Body {
            bytes: common::gzip(&small).into(),
            gzip: true,
            records: 50,
        },
        Body {
            bytes: large.into(),
            gzip: false,
            records: n,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_sustainable_rate_gets_429_or_503_with_retry_after_within_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let keys = common::make_keys(&dir.path().join("keys.toml"));
    let mut config = common::config(kafka::shared(), dir.path(), &[]);
    kafka::isolate(&mut config);
    kafka::create_topics(&config).await;
    let path = kafka::write_config(&config, dir.path(), "cowork.toml");
    let (http, grpc, admin) = (common::free_port(), common::free_port(), common::free_port());
    let mut edge = Proc::spawn(
        "edge",
        &path,
        &[
            format!("edge.http_listen=127.0.0.1:{http}"),
            format!("edge.grpc_listen=127.0.0.1:{grpc}"),
            format!("edge.admin_listen=127.0.0.1:{admin}"),
            format!("edge.max_inflight_bytes={INFLIGHT}"),
            // The budget must hold one whole request: body plus decompressed (10 MiB here).
            format!("edge.max_body_bytes={}", 2 * MIB),
            format!("edge.max_decompressed_bytes={}", 8 * MIB),
            "edge.max_connections=4096".to_string(),
        ],
        &["edge"],
        &[("RUST_LOG", "info,rdkafka=warn")],
    );
    let admin_addr: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    edge.wait_ready(admin_addr, Duration::from_secs(30)).await;
    let pid = edge.pid();
    let idle = vm_hwm(pid);
    // Connections: the overload's, the closed-loop clients', and the probe's.
    let connections = (MAX_OUTSTANDING + 8 + 1) as u64;
    let bound = idle + 2 * INFLIGHT + connections * PER_CONNECTION + SLACK;

    let url = format!("http://127.0.0.1:{http}/v1/logs");
    let auth = format!("Bearer {}", keys.ingest);
    let bodies = bodies();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // 1. The sustainable rate: eight closed-loop clients (what the edge sustains with every request accepted) for 4 s.
    let mut acked_records = 0usize;
    let mut acked = 0usize;
    let started = Instant::now();
    let mut loops = Vec::new();
    for c in 0..8 {
        let (client, url, auth, bodies) = (client.clone(), url.clone(), auth.clone(), bodies.clone());
        loops.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut i = c;
            while started.elapsed() < Duration::from_secs(4) {
                let body = &bodies[i % bodies.len()];
                got.push((send(&client, &url, &auth, body).await, body.records));
                i += 1;
            }
            got
        }));
    }
    for l in loops {
        for (answer, records) in l.await.unwrap() {
            assert_eq!(
                answer.status, 200,
                "at the sustainable rate everything is accepted: {answer:?}"
            );
            acked += 1;
            acked_records += records;
        }
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    assert!(acked >= 4, "only {acked} requests in 4 s:\n{}", edge.log_tail());

    // 2. Ten times that, open loop.
    let offered = 10.0 * rate;
    let interval = Duration::from_secs_f64(1.0 / offered);
    let outstanding = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut peak = 0;
    let started = Instant::now();
    let mut next = Instant::now();
    let mut i = 0usize;
    while started.elapsed() < OVERLOAD {
        while outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let body = bodies[i % bodies.len()].clone();
        let (client, url, auth, outstanding) = (client.clone(), url.clone(), auth.clone(), outstanding.clone());
        outstanding.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(async move {
            let answer = send(&client, &url, &auth, &body).await;
            outstanding.fetch_sub(1, Ordering::Relaxed);
            (answer, body.records)
        }));
        i += 1;
        if i % 50 == 0 {
            peak = peak.max(vm_hwm(pid));
        }
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let achieved = i as f64 / started.elapsed().as_secs_f64();
    let mut statuses = BTreeMap::<u16, usize>::new();
    for t in tasks {
        let (answer, records) = t.await.unwrap();
        *statuses.entry(answer.status).or_default() += 1;
        match answer.status {
            200 => {
                acked += 1;
                acked_records += records;
            }
            429 | 503 => {
                let secs = answer.retry_after.as_deref().and_then(|s| s.parse::<u64>().ok());
                assert!(
                    secs.is_some_and(|s| s >= 1),
                    "a {} without a Retry-After of whole seconds: {answer:?}",
                    answer.status
                );
            }
            _ => panic!(
                "under overload every answer is 200, 429 or 503; got {answer:?} (statuses so far {statuses:?}):\n{}",
                edge.log_tail()
            ),
        }
    }
    peak = peak.max(vm_hwm(pid));
    eprintln!(
        "sustainable {rate:.0} req/s; offered {offered:.0}, achieved {achieved:.0} req/s; statuses {statuses:?}; \
         idle {:.0} MiB, peak {:.0} MiB, bound {:.0} MiB",
        idle as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        bound as f64 / MIB as f64
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) + statuses.get(&503).copied().unwrap_or(0) > 0,
        "ten times the sustainable rate is refused in part ({statuses:?})"
    );
    assert!(
        peak <= bound,
        "peak RSS {:.0} MiB over the bound {:.0} MiB (idle {:.0} MiB + 2 x {} MiB in flight + \
         {connections} connections x 64 KiB + {} MiB)",
        peak as f64 / MIB as f64,
        bound as f64 / MIB as f64,
        idle as f64 / MIB as f64,
        INFLIGHT / MIB,
        SLACK / MIB
    );

    // 3. It accepts again, and Kafka has every acknowledged request (and perhaps late deliveries).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = send(&client, &url, &auth, &bodies[0]).await;
        if answer.status == 200 {
            acked += 1;
            acked_records += bodies[0].records;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge does not accept again after the overload: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let messages = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || kafka::topic_messages(&c, &c.kafka.logs_topic) as usize)
            .await
            .unwrap()
    };
    assert!(
        messages >= acked,
        "{acked} requests acknowledged, {} messages in Kafka",
        messages
    );
    eprintln!(
        "{acked} acknowledged ({acked_records} records), {} in Kafka (503s may be followed by late deliveries)",
        messages
    );
}
