//! The proto logs fast decoder against the reference: never a panic, and the same views
//! whenever the reference accepts the payload; the edge's check gives the reference's verdict.
#![no_main]

use cowork_ingest::otlp::decode::compare;
use cowork_ingest::otlp::{ContentType, Signal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    if let Err(mismatch) = compare::check(Signal::Logs, ContentType::Protobuf, payload) {
        panic!("proto_logs: {mismatch}");
    }
});
