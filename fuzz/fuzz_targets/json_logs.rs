//! The json logs fast decoder against the reference: never a panic, and the same views
//! whenever the reference accepts the payload.
#![no_main]

use cowork_ingest::otlp::decode::compare;
use cowork_ingest::otlp::{ContentType, Signal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    if let Err(mismatch) = compare::check(Signal::Logs, ContentType::Json, payload) {
        panic!("json_logs: {mismatch}");
    }
});
