//! Decode throughput on the corpus, single thread: the fast paths (borrowed protobuf reader,
//! simd-json tape; each followed by normalization) against the plain decode into owned
//! `opentelemetry-proto` structs (prost for protobuf, serde_json for JSON), in one run. Then the
//! same for metric data points and spans, on the captured SDK exports (`tests/fixtures/signals`).
//!
//! ```text
//! cargo bench --bench decode
//! BENCH_ROUNDS=200 cargo bench --bench decode
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
use std::hint::black_box;
use std::time::Instant;

use cowork_ingest::clickhouse::rows::Rows;
use cowork_ingest::config::ContentPolicy;
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::otlp::decode::{json, proto, reference, Attr, Point, Record, Span};
use cowork_ingest::otlp::{Compression, ContentType, Signal};
use cowork_ingest::transform::attribution::Scope;
use cowork_ingest::transform::normalize::normalize;
use cowork_ingest::transform::signals::{normalize_point, normalize_span};

const RECEIVED: u64 = 1_795_100_000_000_000_000;

fn corpus(folder: &str) -> Vec<Vec<u8>> {
    common::corpus(folder).into_iter().map(|b| b.body).collect()
}

/// Runs `f` over every body `rounds` times; returns nanoseconds per event.
fn time(bodies: &[Vec<u8>], rounds: u32, mut f: impl FnMut(&[u8]) -> u64) -> f64 {
    let mut events = 0;
    for b in bodies {
        events += f(b); // warm-up
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for b in bodies {
            black_box(f(b));
        }
    }
    start.elapsed().as_nanos() as f64 / (events * u64::from(rounds)) as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let proto_bodies = corpus("proto-none");
    let json_bodies = corpus("json-none");

    let fast_proto = time(&proto_bodies, rounds, |b| {
        let mut n = 0;
        proto::decode(b, &mut |resource: &[Attr<'_>], r: &Record<'_>| {
            black_box(normalize(&Scope::new("acme"), resource, r, RECEIVED));
            n += 1;
        })
        .unwrap();
        n
    });
    let read_proto = time(&proto_bodies, rounds, |b| {
        let mut n = 0;
        proto::decode(b, &mut |_: &[Attr<'_>], r: &Record<'_>| {
            black_box(r);
            n += 1;
        })
        .unwrap();
        n
    });
    let plain_proto = time(&proto_bodies, rounds, |b| {
        let req = reference::decode_protobuf(b).unwrap();
        req.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum()
    });
    let mut scratch = Vec::new();
    let fast_json = time(&json_bodies, rounds, |b| {
        scratch.clear();
        scratch.extend_from_slice(b); // simd-json parses in place
        let mut n = 0;
        json::decode(&mut scratch, &mut |resource: &[Attr<'_>], r: &Record<'_>| {
            black_box(normalize(&Scope::new("acme"), resource, r, RECEIVED));
            n += 1;
        })
        .unwrap();
        n
    });
    let plain_json = time(&json_bodies, rounds, |b| {
        let req = reference::decode_json(b).unwrap();
        req.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum()
    });

    // The consumer's whole fast path: decode, normalize and encode RowBinary rows for every
    // table, ready to insert (the JSON path includes the copy simd-json parses in place).
    let rows_of = |content_type: ContentType, bodies: &[Vec<u8>]| {
        let env = Envelope {
            tenant: "acme",
            content_type,
            compression: Compression::Identity,
            received_at_ns: RECEIVED,
            ..Envelope::default()
        };
        let (mut decoder, mut rows, policy) = (
            Decoder::new(64 << 20, Default::default()),
            Rows::default(),
            ContentPolicy::default(),
        );
        time(bodies, rounds, |b| {
            if rows.bytes() > 64 << 20 {
                rows.clear();
            }
            let stats = decoder.rows_into(&env, b, 0, 0, &policy, &mut rows).unwrap();
            stats.total()
        })
    };
    let rows_proto = rows_of(ContentType::Protobuf, &proto_bodies);
    let rows_json = rows_of(ContentType::Json, &json_bodies);

    println!("| path (one thread, corpus, {rounds} rounds) | ns/event | events/s | speed-up |");
    println!("|---|---:|---:|---:|");
    for (name, ns, base) in [
        (
            "protobuf: prost into owned structs (plain decode)",
            plain_proto,
            plain_proto,
        ),
        ("protobuf: borrowed reader alone", read_proto, plain_proto),
        (
            "protobuf: borrowed reader + normalize (fast path)",
            fast_proto,
            plain_proto,
        ),
        (
            "protobuf: fast path + RowBinary rows for every table",
            rows_proto,
            plain_proto,
        ),
        (
            "JSON: serde_json into owned structs (plain decode)",
            plain_json,
            plain_json,
        ),
        ("JSON: simd-json tape + normalize (fast path)", fast_json, plain_json),
        (
            "JSON: fast path + RowBinary rows for every table",
            rows_json,
            plain_json,
        ),
    ] {
        println!("| {name} | {ns:.0} | {:.0} | {:.2}x |", 1e9 / ns, base / ns);
    }

    signals(rounds);
}

fn signal_bodies(folder: &str) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signals");
    common::corpus_at(&root, folder).into_iter().map(|b| b.body).collect()
}

/// Metric points and spans: prost (and serde_json) into owned structs, the borrowed readers, and
/// the consumer's whole path (decode, normalize, RowBinary rows).
fn signals(rounds: u32) {
    let rounds = rounds * 4; // the fixture is small
    let metrics_proto = signal_bodies("metrics-proto-delta");
    let metrics_json = signal_bodies("metrics-json-cumulative");
    let traces_proto = signal_bodies("traces-proto");
    let traces_json = signal_bodies("traces-json");
    let count_points = |req: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest| {
        let mut n = 0;
        reference::visit_metrics(req, &mut |_: &[Attr<'_>], _: &Point<'_>| n += 1);
        n
    };
    let plain_points = time(&metrics_proto, rounds, |b| {
        let req = reference::decode_metrics_protobuf(b).unwrap();
        count_points(&req)
    });
    let read_points = time(&metrics_proto, rounds, |b| {
        proto::decode_metrics(b, &mut |_: &[Attr<'_>], p: &Point<'_>| {
            black_box(p);
        })
        .unwrap()
    });
    let fast_points = time(&metrics_proto, rounds, |b| {
        proto::decode_metrics(b, &mut |resource: &[Attr<'_>], p: &Point<'_>| {
            black_box(normalize_point(&Scope::new("acme"), resource, p, RECEIVED));
        })
        .unwrap()
    });
    let plain_spans = time(&traces_proto, rounds, |b| {
        let req = reference::decode_traces_protobuf(b).unwrap();
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    });
    let read_spans = time(&traces_proto, rounds, |b| {
        proto::decode_traces(b, &mut |_: &[Attr<'_>], s: &Span<'_>| {
            black_box(s);
        })
        .unwrap()
    });
    let fast_spans = time(&traces_proto, rounds, |b| {
        proto::decode_traces(b, &mut |resource: &[Attr<'_>], s: &Span<'_>| {
            black_box(normalize_span(&Scope::new("acme"), resource, s, RECEIVED));
        })
        .unwrap()
    });
    let plain_points_json = time(&metrics_json, rounds, |b| {
        let req = reference::decode_metrics_json(b).unwrap();
        count_points(&req)
    });
    let mut scratch = Vec::new();
    let fast_points_json = time(&metrics_json, rounds, |b| {
        scratch.clear();
        scratch.extend_from_slice(b);
        json::decode_metrics(&mut scratch, &mut |resource: &[Attr<'_>], p: &Point<'_>| {
            black_box(normalize_point(&Scope::new("acme"), resource, p, RECEIVED));
        })
        .unwrap()
    });
    let plain_spans_json = time(&traces_json, rounds, |b| {
        let req = reference::decode_traces_json(b).unwrap();
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    });
    let fast_spans_json = time(&traces_json, rounds, |b| {
        scratch.clear();
        scratch.extend_from_slice(b);
        json::decode_traces(&mut scratch, &mut |resource: &[Attr<'_>], s: &Span<'_>| {
            black_box(normalize_span(&Scope::new("acme"), resource, s, RECEIVED));
        })
        .unwrap()
    });
    let rows_of = |signal: Signal, content_type: ContentType, bodies: &[Vec<u8>]| {
        let env = Envelope {
            signal,
            tenant: "acme",
            content_type,
            compression: Compression::Identity,
            received_at_ns: RECEIVED,
            ..Envelope::default()
        };
        let (mut decoder, mut rows, policy) = (
            Decoder::new(64 << 20, Default::default()),
            Rows::default(),
            ContentPolicy::default(),
        );
        time(bodies, rounds, |b| {
            if rows.bytes() > 64 << 20 {
                rows.clear();
            }
            decoder.rows_into(&env, b, 0, 0, &policy, &mut rows).unwrap().total()
        })
    };
    let rows_points = rows_of(Signal::Metrics, ContentType::Protobuf, &metrics_proto);
    let rows_spans = rows_of(Signal::Traces, ContentType::Protobuf, &traces_proto);
    let rows_points_json = rows_of(Signal::Metrics, ContentType::Json, &metrics_json);
    let rows_spans_json = rows_of(Signal::Traces, ContentType::Json, &traces_json);

    println!();
    println!("| path (one thread, captured SDK exports, {rounds} rounds) | ns/record | records/s | speed-up |");
    println!("|---|---:|---:|---:|");
    for (name, ns, base) in [
        (
            "metrics, protobuf: prost into owned structs",
            plain_points,
            plain_points,
        ),
        ("metrics, protobuf: borrowed reader alone", read_points, plain_points),
        (
            "metrics, protobuf: borrowed reader + normalize",
            fast_points,
            plain_points,
        ),
        (
            "metrics, protobuf: + RowBinary rows (the consumer's path)",
            rows_points,
            plain_points,
        ),
        (
            "metrics, JSON: serde_json into owned structs",
            plain_points_json,
            plain_points_json,
        ),
        (
            "metrics, JSON: simd-json tape + normalize",
            fast_points_json,
            plain_points_json,
        ),
        ("metrics, JSON: + RowBinary rows", rows_points_json, plain_points_json),
        ("spans, protobuf: prost into owned structs", plain_spans, plain_spans),
        ("spans, protobuf: borrowed reader alone", read_spans, plain_spans),
        ("spans, protobuf: borrowed reader + normalize", fast_spans, plain_spans),
        (
            "spans, protobuf: + RowBinary rows (the consumer's path)",
            rows_spans,
            plain_spans,
        ),
        (
            "spans, JSON: serde_json into owned structs",
            plain_spans_json,
            plain_spans_json,
        ),
        (
            "spans, JSON: simd-json tape + normalize",
            fast_spans_json,
            plain_spans_json,
        ),
        ("spans, JSON: + RowBinary rows", rows_spans_json, plain_spans_json),
    ] {
        println!("| {name} | {ns:.0} | {:.0} | {:.2}x |", 1e9 / ns, base / ns);
    }
}
