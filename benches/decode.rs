//! Decode throughput on the corpus, single thread: the fast paths (borrowed protobuf reader,
//! simd-json tape; each followed by normalization) against the plain decode into owned
//! `opentelemetry-proto` structs (prost for protobuf, serde_json for JSON), in one run.
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
use cowork_ingest::otlp::decode::{json, proto, reference, Attr, Record};
use cowork_ingest::otlp::{Compression, ContentType};
use cowork_ingest::transform::normalize::normalize;

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
            black_box(normalize("acme", resource, r, RECEIVED));
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
            black_box(normalize("acme", resource, r, RECEIVED));
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
        let (mut decoder, mut rows, policy) = (Decoder::new(64 << 20), Rows::default(), ContentPolicy::default());
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
}
