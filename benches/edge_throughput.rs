//! Edge throughput on one core against the dev broker, side by side with a bare HTTP server
//! that accepts and discards the same bodies on the same core, in the same run.
//!
//! The server under test (its tokio runtime and, by inheritance, librdkafka's producer threads)
//! is pinned to CPU 0. The load client and the mock broker are pinned to CPU 1.
//!
//! ```text
//! cargo bench --bench edge_throughput            # 8 s per run
//! BENCH_SECS=20 BENCH_CONNS=64 cargo bench --bench edge_throughput
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use cowork_ingest::config::Config;
use cowork_ingest::kafka::dev_broker;
use cowork_ingest::net::server;
use cowork_ingest::{edge, keys};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use prost::Message;
use tokio_util::sync::CancellationToken;

const EVENTS_PER_BATCH: usize = 50;

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % num_cpus(), &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A realistic batch: 50 records from the corpus under one resource and scope.
fn batch() -> ExportLogsServiceRequest {
    let mut first: Option<(ResourceLogs, ScopeLogs)> = None;
    let mut records = Vec::new();
    for b in common::corpus("proto-none") {
        let req = ExportLogsServiceRequest::decode(&b.body[..]).unwrap();
        for rl in req.resource_logs {
            for sl in &rl.scope_logs {
                if first.is_none() {
                    first = Some((rl.clone(), sl.clone()));
                }
                records.extend(sl.log_records.iter().cloned());
            }
        }
    }
    let (mut rl, mut sl) = first.unwrap();
    sl.log_records = records.into_iter().take(EVENTS_PER_BATCH).collect();
    rl.scope_logs = vec![sl];
    ExportLogsServiceRequest {
        resource_logs: vec![rl],
    }
}

struct Run {
    name: String,
    requests: u64,
    errors: u64,
    secs: f64,
}

/// Drives `url` with `conns` concurrent keep-alive connections for `secs` after a warm-up.
fn load(url: &str, auth: &str, content_type: &str, body: Bytes, conns: usize, secs: u64, name: &str) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(conns)
            .build()
            .unwrap();
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Instant::now() + Duration::from_secs(2 + secs);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (client, ok, bad, counting, body) =
                (client.clone(), ok.clone(), bad.clone(), counting.clone(), body.clone());
            let (url, auth, ct) = (url.to_string(), auth.to_string(), content_type.to_string());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    let r = client
                        .post(&url)
                        .header("authorization", &auth)
                        .header("content-type", &ct)
                        .body(body.clone())
                        .send()
                        .await;
                    let good = match r {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if counting.load(Ordering::Relaxed) {
                        if good {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        counting.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        counting.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        for t in tasks {
            let _ = t.await;
        }
        Run {
            name: name.into(),
            requests: ok.load(Ordering::Relaxed),
            errors: bad.load(Ordering::Relaxed),
            secs: elapsed,
        }
    })
}

/// Runs `serve_fn` on its own thread pinned to CPU 0 until the returned token is cancelled.
fn spawn_server<F, Fut>(serve_fn: F) -> (CancellationToken, std::thread::JoinHandle<()>)
where
    F: FnOnce(CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let token = CancellationToken::new();
    let t = token.clone();
    let handle = std::thread::spawn(move || {
        pin(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .build()
            .unwrap();
        rt.block_on(serve_fn(t));
    });
    (token, handle)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here.
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let conns: usize = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    pin(1);
    // BENCH_KAFKA=host:port runs against that (real) broker, on topics of this run's own,
    // created as in production by `topics check --create`; else against the in-memory dev broker.
    let real = std::env::var("BENCH_KAFKA").ok().filter(|b| !b.is_empty());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topic_sets = |brokers: &str| {
        let mut sets = vec![format!("kafka.brokers={brokers}")];
        if real.is_some() {
            sets.extend([
                format!("kafka.logs_topic=bench-logs-{suffix}"),
                format!("kafka.metrics_topic=bench-metrics-{suffix}"),
                format!("kafka.traces_topic=bench-traces-{suffix}"),
                format!("consumer.dlq_topic=bench-dlq-{suffix}"),
            ]);
        }
        sets
    };
    let (_cluster, brokers, broker_label) = match &real {
        Some(brokers) => {
            let config = Config::load_from(None, &[], &topic_sets(brokers)).unwrap();
            let rt = tokio::runtime::Runtime::new().unwrap();
            let (report, _) = rt.block_on(cowork_ingest::ops::topics::check(&config, true)).unwrap();
            eprint!("{report}");
            (None, brokers.clone(), "Apache Kafka")
        }
        None => {
            let cluster = dev_broker::start(1, 6, &dev_broker::topics(&Config::default())).unwrap();
            let brokers = cluster.bootstrap_servers();
            (Some(cluster), brokers, "dev broker")
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("keys.toml");
    let token = keys::create(&keys_path, "bench", keys::Role::Ingest, keys::Kind::Org, None, &[])
        .unwrap()
        .token;
    let auth = format!("Bearer {token}");
    let req = batch();
    let proto = Bytes::from(req.encode_to_vec());
    let json = Bytes::from(serde_json::to_vec(&to_otlp_json(&req)).unwrap());
    eprintln!(
        "batch: {EVENTS_PER_BATCH} events, {} bytes protobuf, {} bytes JSON; {conns} connections, {secs} s per run",
        proto.len(),
        json.len()
    );

    let mut runs = Vec::new();
    for (label, ct, body) in [
        ("protobuf", "application/x-protobuf", proto.clone()),
        ("json", "application/json", json.clone()),
    ] {
        // Bare server: same accept loop, reads the whole body, answers 200.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, handle) = spawn_server(move |t| async move {
            let router = axum::Router::new().route(
                "/v1/logs",
                post(|body: axum::body::Body| async move {
                    let _ = body.collect().await;
                    ""
                }),
            );
            server::serve(
                tokio::net::TcpListener::from_std(listener).unwrap(),
                None,
                router,
                t,
                Duration::from_secs(1),
                10_000,
            )
            .await;
        });
        runs.push(load(
            &format!("http://{addr}/v1/logs"),
            &auth,
            ct,
            body.clone(),
            conns,
            secs,
            &format!("bare HTTP server, {label}"),
        ));
        stop.cancel();
        handle.join().unwrap();

        // The edge: auth, limits, decompression check, validation, publish, wait for the ack.
        let ports: Vec<std::net::TcpListener> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let http = ports[0].local_addr().unwrap();
        let mut sets = topic_sets(&brokers);
        sets.push(format!("edge.keys_path={}", keys_path.display()));
        let config = Config::load_from(None, &[], &sets).unwrap();
        let (stop, handle) = spawn_server(move |t| async move {
            let mut it = ports.into_iter().map(|l| {
                l.set_nonblocking(true).unwrap();
                tokio::net::TcpListener::from_std(l).unwrap()
            });
            let listeners = edge::Listeners {
                http: it.next().unwrap(),
                grpc: it.next().unwrap(),
                admin: it.next().unwrap(),
            };
            edge::run(listeners, config, t).await.unwrap();
        });
        std::thread::sleep(Duration::from_secs(2));
        runs.push(load(
            &format!("http://{http}/v1/logs"),
            &auth,
            ct,
            body.clone(),
            conns,
            secs,
            &format!("edge → {broker_label}, {label}"),
        ));
        stop.cancel();
        handle.join().unwrap();
    }

    println!("| server (one core) | requests/s | events/s | errors | vs bare |");
    println!("|---|---:|---:|---:|---:|");
    for pair in runs.chunks(2) {
        let bare = pair[0].requests as f64 / pair[0].secs;
        for r in pair {
            let rps = r.requests as f64 / r.secs;
            println!(
                "| {} | {:.0} | {:.0} | {} | {:.2} |",
                r.name,
                rps,
                rps * EVENTS_PER_BATCH as f64,
                r.errors,
                rps / bare
            );
        }
    }
}

/// OTLP/JSON for a logs request: camelCase keys, int64 as strings, as the JS exporter sends it.
fn to_otlp_json(req: &ExportLogsServiceRequest) -> serde_json::Value {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    fn any(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> serde_json::Value {
        match v.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => serde_json::json!({"stringValue": s}),
            Some(Value::IntValue(i)) => serde_json::json!({"intValue": i.to_string()}),
            Some(Value::DoubleValue(d)) => serde_json::json!({"doubleValue": d}),
            Some(Value::BoolValue(b)) => serde_json::json!({"boolValue": b}),
            Some(Value::ArrayValue(a)) => {
                serde_json::json!({"arrayValue": {"values": a.values.iter().map(|v| any(&Some(v.clone()))).collect::<Vec<_>>()}})
            }
            _ => serde_json::json!({}),
        }
    }
    let attrs = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
        kvs.iter()
            .map(|kv| serde_json::json!({"key": kv.key, "value": any(&kv.value)}))
            .collect::<Vec<_>>()
    };
    serde_json::json!({"resourceLogs": req.resource_logs.iter().map(|rl| serde_json::json!({
        "resource": {"attributes": attrs(rl.resource.as_ref().map_or(&[][..], |r| &r.attributes))},
        "scopeLogs": rl.scope_logs.iter().map(|sl| serde_json::json!({
            "scope": {"name": sl.scope.as_ref().map_or("", |s| &s.name)},
            "logRecords": sl.log_records.iter().map(|r| serde_json::json!({
                "timeUnixNano": r.time_unix_nano.to_string(),
                "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
                "body": any(&r.body),
                "attributes": attrs(&r.attributes),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()})
}
