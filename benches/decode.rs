//! Decode throughput, single thread: the fast paths (borrowed protobuf reader, simd-json tape;
//! then normalization; then the RowBinary rows the consumer inserts) against the plain decode
//! into owned `opentelemetry-proto` structs (prost for protobuf, serde_json for JSON), in one run:
//! log events on the corpus, then metric data points and spans on the captured SDK exports
//! (`tests/fixtures/signals`). The edge's validation of log requests (`validate::count_records`)
//! is measured beside them, against the same plain decode.
//!
//! ```text
//! cargo bench --bench decode                          # timings, 100 rounds
//! BENCH_ROUNDS=300 cargo bench --bench decode
//! BENCH_INSTRUCTIONS=1 cargo bench --bench decode     # and instructions per record (callgrind)
//! BENCH_ONLY=logs-proto-rows cargo bench --bench decode   # one path (for a profiler)
//! ```
//!
//! Instructions per record are the repeatable figure on a noisy machine: the bench runs itself
//! under `valgrind --tool=callgrind` once per path, for 1 and for 3 rounds, and divides the
//! difference by the records of 2 rounds (so loading the corpus and warming up cancel out).

#[path = "../tests/common/mod.rs"]
mod common;
use std::hint::black_box;
use std::time::Instant;

use cowork_ingest::clickhouse::rows::Rows;
use cowork_ingest::config::ContentPolicy;
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::otlp::decode::{json, proto, reference, Attr, Point, Record, Span};
use cowork_ingest::otlp::{validate, Compression, ContentType, Signal};
use cowork_ingest::transform::attribution::Scope;
use cowork_ingest::transform::normalize::normalize;
use cowork_ingest::transform::signals::{normalize_point, normalize_span};

const RECEIVED: u64 = 1_795_100_000_000_000_000;

type Run = Box<dyn FnMut(&[u8]) -> u64>;

/// One measured path: an id (for `BENCH_ONLY`), its table line, its bodies, and the path itself,
/// which returns the records it decoded.
struct Path {
    id: &'static str,
    name: &'static str,
    /// The id of the plain decode it is compared with.
    base: &'static str,
    bodies: &'static [Vec<u8>],
    run: Run,
}

fn corpus(folder: &str) -> &'static [Vec<u8>] {
    Vec::leak(common::corpus(folder).into_iter().map(|b| b.body).collect())
}

fn signal_bodies(folder: &str) -> &'static [Vec<u8>] {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signals");
    Vec::leak(common::corpus_at(&root, folder).into_iter().map(|b| b.body).collect())
}

/// The consumer's whole path for one signal and encoding: decode, normalize and encode RowBinary
/// rows for every table, ready to insert (`Decoder::rows_into`, exactly what `consume` runs; the
/// JSON path includes the copy simd-json parses in place).
fn rows_path(signal: Signal, content_type: ContentType) -> Run {
    let env = Envelope {
        signal,
        tenant: "acme",
        content_type,
        compression: Compression::Identity,
        received_at_ns: RECEIVED,
        ..Envelope::default()
    };
    let mut decoder = Decoder::new(64 << 20, Default::default());
    let mut rows = Rows::default();
    let policy = ContentPolicy::default();
    Box::new(move |b| {
        if rows.bytes() > 64 << 20 {
            rows.clear();
        }
        decoder.rows_into(&env, b, 0, 0, &policy, &mut rows).unwrap().total()
    })
}

/// simd-json parses in place: each path copies the body into its own scratch buffer first.
fn json_path(mut f: impl FnMut(&mut [u8]) -> u64 + 'static) -> Run {
    let mut scratch = Vec::new();
    Box::new(move |b| {
        scratch.clear();
        scratch.extend_from_slice(b);
        f(&mut scratch)
    })
}

fn logs() -> Vec<Path> {
    let proto_bodies = corpus("proto-none");
    let json_bodies = corpus("json-none");
    vec![
        Path {
            id: "logs-proto-prost",
            name: "protobuf: prost into owned structs (plain decode)",
            base: "logs-proto-prost",
            bodies: proto_bodies,
            run: Box::new(|b| {
                let req = reference::decode_protobuf(b).unwrap();
                let n = req.resource_logs.iter().flat_map(|r| &r.scope_logs);
                n.map(|s| s.log_records.len() as u64).sum()
            }),
        },
        Path {
            id: "logs-proto-validate",
            name: "protobuf: the edge's validation (schema walk, UTF-8, record count)",
            base: "logs-proto-prost",
            bodies: proto_bodies,
            run: Box::new(|b| validate::count_records(Signal::Logs, ContentType::Protobuf, b).unwrap()),
        },
        Path {
            id: "logs-proto-read",
            name: "protobuf: borrowed reader alone",
            base: "logs-proto-prost",
            bodies: proto_bodies,
            run: Box::new(|b| {
                proto::decode(b, &mut |_: &[Attr<'_>], r: &Record<'_>| {
                    black_box(r);
                })
                .unwrap()
            }),
        },
        Path {
            id: "logs-proto-normalize",
            name: "protobuf: borrowed reader + normalize",
            base: "logs-proto-prost",
            bodies: proto_bodies,
            run: Box::new(|b| {
                proto::decode(b, &mut |resource: &[Attr<'_>], r: &Record<'_>| {
                    black_box(normalize(&Scope::new("acme"), resource, r, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "logs-proto-rows",
            name: "protobuf: + RowBinary rows for every table (the consumer's path)",
            base: "logs-proto-prost",
            bodies: proto_bodies,
            run: rows_path(Signal::Logs, ContentType::Protobuf),
        },
        Path {
            id: "logs-json-serde",
            name: "JSON: serde_json into owned structs (plain decode)",
            base: "logs-json-serde",
            bodies: json_bodies,
            run: Box::new(|b| {
                let req = reference::decode_json(b).unwrap();
                let n = req.resource_logs.iter().flat_map(|r| &r.scope_logs);
                n.map(|s| s.log_records.len() as u64).sum()
            }),
        },
        Path {
            id: "logs-json-validate",
            name: "JSON: the edge's validation (structure, UTF-8, record count)",
            base: "logs-json-serde",
            bodies: json_bodies,
            run: Box::new(|b| validate::count_records(Signal::Logs, ContentType::Json, b).unwrap()),
        },
        Path {
            id: "logs-json-normalize",
            name: "JSON: simd-json tape + normalize",
            base: "logs-json-serde",
            bodies: json_bodies,
            run: json_path(|b| {
                json::decode(b, &mut |resource: &[Attr<'_>], r: &Record<'_>| {
                    black_box(normalize(&Scope::new("acme"), resource, r, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "logs-json-rows",
            name: "JSON: + RowBinary rows for every table (the consumer's path)",
            base: "logs-json-serde",
            bodies: json_bodies,
            run: rows_path(Signal::Logs, ContentType::Json),
        },
    ]
}

fn count_points(req: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest) -> u64 {
    let mut n = 0;
    reference::visit_metrics(req, &mut |_: &[Attr<'_>], _: &Point<'_>| n += 1);
    n
}

fn count_spans(req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest) -> u64 {
    let spans = req.resource_spans.iter().flat_map(|r| &r.scope_spans);
    spans.map(|s| s.spans.len() as u64).sum()
}

fn signals() -> Vec<Path> {
    let metrics_proto = signal_bodies("metrics-proto-delta");
    let metrics_json = signal_bodies("metrics-json-cumulative");
    let traces_proto = signal_bodies("traces-proto");
    let traces_json = signal_bodies("traces-json");
    vec![
        Path {
            id: "metrics-proto-prost",
            name: "metrics, protobuf: prost into owned structs",
            base: "metrics-proto-prost",
            bodies: metrics_proto,
            run: Box::new(|b| count_points(&reference::decode_metrics_protobuf(b).unwrap())),
        },
        Path {
            id: "metrics-proto-read",
            name: "metrics, protobuf: borrowed reader alone",
            base: "metrics-proto-prost",
            bodies: metrics_proto,
            run: Box::new(|b| {
                proto::decode_metrics(b, &mut |_: &[Attr<'_>], p: &Point<'_>| {
                    black_box(p);
                })
                .unwrap()
            }),
        },
        Path {
            id: "metrics-proto-normalize",
            name: "metrics, protobuf: borrowed reader + normalize",
            base: "metrics-proto-prost",
            bodies: metrics_proto,
            run: Box::new(|b| {
                proto::decode_metrics(b, &mut |resource: &[Attr<'_>], p: &Point<'_>| {
                    black_box(normalize_point(&Scope::new("acme"), resource, p, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "metrics-proto-rows",
            name: "metrics, protobuf: + RowBinary rows (the consumer's path)",
            base: "metrics-proto-prost",
            bodies: metrics_proto,
            run: rows_path(Signal::Metrics, ContentType::Protobuf),
        },
        Path {
            id: "metrics-json-serde",
            name: "metrics, JSON: serde_json into owned structs",
            base: "metrics-json-serde",
            bodies: metrics_json,
            run: Box::new(|b| count_points(&reference::decode_metrics_json(b).unwrap())),
        },
        Path {
            id: "metrics-json-normalize",
            name: "metrics, JSON: simd-json tape + normalize",
            base: "metrics-json-serde",
            bodies: metrics_json,
            run: json_path(|b| {
                json::decode_metrics(b, &mut |resource: &[Attr<'_>], p: &Point<'_>| {
                    black_box(normalize_point(&Scope::new("acme"), resource, p, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "metrics-json-rows",
            name: "metrics, JSON: + RowBinary rows",
            base: "metrics-json-serde",
            bodies: metrics_json,
            run: rows_path(Signal::Metrics, ContentType::Json),
        },
        Path {
            id: "spans-proto-prost",
            name: "spans, protobuf: prost into owned structs",
            base: "spans-proto-prost",
            bodies: traces_proto,
            run: Box::new(|b| count_spans(&reference::decode_traces_protobuf(b).unwrap())),
        },
        Path {
            id: "spans-proto-read",
            name: "spans, protobuf: borrowed reader alone",
            base: "spans-proto-prost",
            bodies: traces_proto,
            run: Box::new(|b| {
                proto::decode_traces(b, &mut |_: &[Attr<'_>], s: &Span<'_>| {
                    black_box(s);
                })
                .unwrap()
            }),
        },
        Path {
            id: "spans-proto-normalize",
            name: "spans, protobuf: borrowed reader + normalize",
            base: "spans-proto-prost",
            bodies: traces_proto,
            run: Box::new(|b| {
                proto::decode_traces(b, &mut |resource: &[Attr<'_>], s: &Span<'_>| {
                    black_box(normalize_span(&Scope::new("acme"), resource, s, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "spans-proto-rows",
            name: "spans, protobuf: + RowBinary rows (the consumer's path)",
            base: "spans-proto-prost",
            bodies: traces_proto,
            run: rows_path(Signal::Traces, ContentType::Protobuf),
        },
        Path {
            id: "spans-json-serde",
            name: "spans, JSON: serde_json into owned structs",
            base: "spans-json-serde",
            bodies: traces_json,
            run: Box::new(|b| count_spans(&reference::decode_traces_json(b).unwrap())),
        },
        Path {
            id: "spans-json-normalize",
            name: "spans, JSON: simd-json tape + normalize",
            base: "spans-json-serde",
            bodies: traces_json,
            run: json_path(|b| {
                json::decode_traces(b, &mut |resource: &[Attr<'_>], s: &Span<'_>| {
                    black_box(normalize_span(&Scope::new("acme"), resource, s, RECEIVED));
                })
                .unwrap()
            }),
        },
        Path {
            id: "spans-json-rows",
            name: "spans, JSON: + RowBinary rows",
            base: "spans-json-serde",
            bodies: traces_json,
            run: rows_path(Signal::Traces, ContentType::Json),
        },
    ]
}

/// Runs `path` over its bodies once to warm up, then `rounds` times; returns (records per
/// round, nanoseconds per record).
fn time(path: &mut Path, rounds: u32) -> (u64, f64) {
    let records: u64 = path.bodies.iter().map(|b| (path.run)(b)).sum();
    let start = Instant::now();
    for _ in 0..rounds {
        for b in path.bodies {
            black_box((path.run)(b));
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (records * u64::from(rounds)).max(1) as f64;
    (records, ns)
}

/// Instructions per record of path `id`: this bench under callgrind for 1 and 3 rounds.
fn instructions(id: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let mut collected = Vec::new();
    let mut records = 0;
    for rounds in [1u64, 3] {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .env("BENCH_ONLY", id)
            .env("BENCH_ROUNDS", rounds.to_string())
            .env_remove("BENCH_INSTRUCTIONS")
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ir = stderr
            .lines()
            .find_map(|l| l.split_once("Collected :").map(|(_, n)| n.trim().parse::<u64>()))?
            .ok()?;
        records = stdout
            .lines()
            .find_map(|l| l.strip_prefix("records per round: "))?
            .trim()
            .parse()
            .ok()?;
        collected.push(ir);
    }
    Some((collected[1] - collected[0]) as f64 / (2 * records) as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let with_instructions = std::env::var_os("BENCH_INSTRUCTIONS").is_some();
    let (mut logs, mut signals) = (logs(), signals());
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let path = logs.iter_mut().chain(&mut signals).find(|p| p.id == only);
        let path = path.unwrap_or_else(|| panic!("BENCH_ONLY={only}: no such path"));
        let (records, ns) = time(path, rounds);
        println!("records per round: {records}");
        println!("{}: {ns:.0} ns/record", path.id);
        return;
    }
    // The signal fixtures are small: four times the rounds.
    for (title, paths, rounds) in [
        ("log events, corpus", &mut logs, rounds),
        ("captured SDK exports", &mut signals, rounds * 4),
    ] {
        let mut results = Vec::new();
        for p in paths.iter_mut() {
            let (_, ns) = time(p, rounds);
            let ir = if with_instructions { instructions(p.id) } else { None };
            results.push((p.id, p.name, p.base, ns, ir));
        }
        let base_of = |id: &str| results.iter().find(|r| r.0 == id).expect("a base path");
        println!();
        print!("| path (one thread, {title}, {rounds} rounds) | ns/record | records/s | speed-up |");
        if with_instructions {
            print!(" instructions/record | instructions ratio |");
        }
        println!();
        println!(
            "|---|---:|---:|---:|{}",
            if with_instructions { "---:|---:|" } else { "" }
        );
        for &(_, name, base, ns, ir) in &results {
            let (_, _, _, base_ns, base_ir) = *base_of(base);
            print!("| {name} | {ns:.0} | {:.0} | {:.2}x |", 1e9 / ns, base_ns / ns);
            if with_instructions {
                match (ir, base_ir) {
                    (Some(ir), Some(b)) => print!(" {ir:.0} | {:.2}x |", b / ir),
                    _ => print!(" n/a | n/a |"),
                }
            }
            println!();
        }
    }
}
