//! The Kafka envelope reader, on any headers: never a panic, and what it accepts is usable.
//! The input is text-like, one header per line, `name: value` (a line without `: ` is a header
//! with a null value); a first line `@ts <millis>` is the Kafka timestamp. Names and values may
//! be any bytes but a newline.
#![no_main]

use cowork_ingest::envelope::{key_attributes, Envelope, HeaderList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut list = HeaderList::default();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if i == 0 {
            if let Some(ts) = line.strip_prefix(b"@ts ") {
                list.timestamp_ms = std::str::from_utf8(ts).ok().and_then(|t| t.parse().ok());
                continue;
            }
        }
        match line.windows(2).position(|w| w == b": ") {
            Some(at) => list.headers.push((&line[..at], Some(&line[at + 2..]))),
            None => list.headers.push((line, None)),
        }
    }
    if let Ok(envelope) = Envelope::read(&list) {
        assert!(!envelope.tenant.is_empty(), "accepted without a tenant");
        assert!(envelope.received_at_ns > 0, "accepted without a receive time");
        if let Ok(pairs) = key_attributes(envelope.key_attributes) {
            assert!(
                pairs.windows(2).all(|w| w[0].0 < w[1].0),
                "key attributes are sorted and unique"
            );
        }
    }
});
