//! The decode fast paths allocate per payload, not per attribute: proven with a counting
//! global allocator (this binary holds one test, so nothing else allocates meanwhile).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use cowork_ingest::clickhouse::rows::Rows;
use cowork_ingest::config::ContentPolicy;
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::otlp::decode::{json, proto, reference, Attr, Record};
use cowork_ingest::otlp::{Compression, ContentType};
use cowork_ingest::transform::attribution::Scope;
use cowork_ingest::transform::normalize::normalize;

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed unchanged to the system allocator, which upholds the contract;
// the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let out = f();
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

fn corpus(folder: &str) -> Vec<Vec<u8>> {
    common::corpus(folder).into_iter().map(|b| b.body).collect()
}

#[test]
fn fast_paths_allocate_per_payload_not_per_attribute() {
    const RECEIVED: u64 = 1_795_100_000_000_000_000;
    for folder in ["proto-none", "json-none"] {
        let (mut attrs, mut events, mut fast, mut plain) = (0u64, 0u64, 0u64, 0u64);
        for body in corpus(folder) {
            let mut sink_attrs = 0u64;
            let mut sink_events = 0u64;
            let mut buf = body.clone();
            let (_, n) = counted(|| {
                let mut visit = |resource: &[Attr<'_>], r: &Record<'_>| {
                    let e = normalize(&Scope::new("acme"), resource, r, RECEIVED);
                    sink_attrs += r.attributes.len() as u64;
                    sink_events += 1;
                    std::hint::black_box(e);
                };
                if folder.starts_with("proto") {
                    proto::decode(&buf, &mut visit).unwrap();
                } else {
                    json::decode(&mut buf, &mut visit).unwrap();
                }
            });
            fast += n;
            attrs += sink_attrs;
            events += sink_events;
            let (_, n) = counted(|| {
                let req = if folder.starts_with("proto") {
                    reference::decode_protobuf(&body).unwrap()
                } else {
                    reference::decode_json(&body).unwrap()
                };
                std::hint::black_box(req);
            });
            plain += n;
        }
        eprintln!("{folder}: {events} events, {attrs} attributes; fast path {fast} allocations, plain decode {plain}");
        // Cowork events carry workspace.host_paths, an array: one vector in decode and one in
        // the event. Everything else comes from buffers reused across records.
        assert!(
            fast <= 2 * events + 64,
            "{folder}: {fast} allocations for {events} events"
        );
        assert!(
            fast * 5 < attrs,
            "{folder}: fewer than one allocation per five attributes"
        );
        assert!(
            plain > attrs,
            "{folder}: the plain decode allocates per attribute ({plain})"
        );

        // The consumer's whole fast path: headers to RowBinary rows for every table. Once its
        // buffers have grown (the first pass), encoding allocates only for array values.
        let bodies = corpus(folder);
        let env = Envelope {
            tenant: "acme",
            content_type: if folder.starts_with("proto") {
                ContentType::Protobuf
            } else {
                ContentType::Json
            },
            compression: Compression::Identity,
            received_at_ns: RECEIVED,
            ..Envelope::default()
        };
        let mut decoder = Decoder::new(64 << 20, Default::default());
        let mut rows = Rows::default();
        let policy = ContentPolicy::default();
        for pass in 0..2 {
            rows.clear();
            let (_, n) = counted(|| {
                for (i, b) in bodies.iter().enumerate() {
                    decoder.rows_into(&env, b, 0, i as i64, &policy, &mut rows).unwrap();
                }
            });
            if pass == 1 {
                eprintln!(
                    "{folder}: encoding {} events into rows: {n} allocations",
                    rows.records()
                );
                assert_eq!(rows.records() as u64, events);
                assert!(
                    n <= 2 * events + 64,
                    "{folder}: {n} allocations to encode {events} events"
                );
                assert!(n * 5 < attrs, "{folder}: fewer than one allocation per five attributes");
            }
        }
    }
}
