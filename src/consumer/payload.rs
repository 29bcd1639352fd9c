//! One Kafka message to rows: read the edge's headers, decompress as they say, decode on the
//! fast path, normalize every record, and encode its rows. A message that cannot be read becomes
//! a [`DeadLetter`] and leaves no rows behind.

use std::borrow::Cow;

use rdkafka::message::{Headers, Message};

use crate::config::ContentPolicy;
use crate::decode::{json, proto, Attr, Record};
use crate::edge::failure::{Failure, Reject};
use crate::edge::limits::Budget;
use crate::edge::payload::decompress;
use crate::envelope::{header, Compression, ContentType};
use crate::normalize::{normalize, Detail, TimeSource};
use crate::rows::{Origin, Rows};

/// Why a payload goes to the dead-letter topic. `class` is one of
/// [`crate::metrics::DEAD_LETTER_CLASSES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub class: &'static str,
    pub reason: String,
}

impl DeadLetter {
    fn new(class: &'static str, reason: impl Into<String>) -> DeadLetter {
        DeadLetter {
            class,
            reason: reason.into(),
        }
    }
}

/// What the edge's headers say about a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'m> {
    pub tenant: &'m str,
    pub content_type: ContentType,
    pub compression: Compression,
    pub received_at_ns: u64,
}

/// The value of header `name`, as UTF-8.
pub fn header_str<'m>(msg: &'m impl Message, name: &str) -> Option<&'m str> {
    let headers = msg.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// 2100-01-01 in Unix milliseconds: a later receive time is a broken header.
const MAX_RECEIVED_AT_MS: i64 = 4_102_444_800_000;

/// Reads the edge's headers. The receive time falls back to the Kafka timestamp, which is as
/// stable across replays as the header.
pub fn envelope<'m>(msg: &'m impl Message) -> Result<Envelope<'m>, DeadLetter> {
    let tenant = header_str(msg, header::TENANT)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DeadLetter::new("bad_headers", format!("no {} header", header::TENANT)))?;
    let content_type = match header_str(msg, header::CONTENT_TYPE) {
        Some("application/x-protobuf") => ContentType::Protobuf,
        Some("application/json") => ContentType::Json,
        other => {
            return Err(DeadLetter::new(
                "bad_headers",
                format!(
                    "{} is {other:?}: expected application/x-protobuf or application/json",
                    header::CONTENT_TYPE
                ),
            ))
        }
    };
    let encoding = header_str(msg, header::CONTENT_ENCODING).unwrap_or("identity");
    let compression = Compression::parse(encoding).ok_or_else(|| {
        DeadLetter::new(
            "bad_headers",
            format!("{} {encoding:?} is not supported", header::CONTENT_ENCODING),
        )
    })?;
    let received_at_ms = header_str(msg, header::RECEIVED_AT_MS)
        .and_then(|v| v.parse::<i64>().ok())
        .or_else(|| msg.timestamp().to_millis())
        .filter(|ms| (1..=MAX_RECEIVED_AT_MS).contains(ms))
        .ok_or_else(|| {
            DeadLetter::new(
                "bad_headers",
                format!(
                    "no usable receive time: {} and the Kafka timestamp are missing or out of range",
                    header::RECEIVED_AT_MS
                ),
            )
        })?;
    Ok(Envelope {
        tenant,
        content_type,
        compression,
        received_at_ns: received_at_ms as u64 * 1_000_000,
    })
}

/// Counts kept while decoding one payload; added to the metrics only when it succeeds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Events by [`crate::metrics::EVENT_LABELS`] index.
    pub events: [u64; 6],
    pub coercion_failures: u64,
    /// Events timed by observed, event_timestamp, received, clamped.
    pub time_fallbacks: [u64; 4],
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.events.iter().sum()
    }

    pub fn add(&mut self, other: &Stats) {
        for i in 0..6 {
            self.events[i] += other.events[i];
        }
        for i in 0..4 {
            self.time_fallbacks[i] += other.time_fallbacks[i];
        }
        self.coercion_failures += other.coercion_failures;
    }
}

/// Decodes payloads into rows, reusing its buffers from one payload to the next.
pub struct Decoder {
    budget: Budget,
    max_decompressed: usize,
    json: Vec<u8>,
}

/// Above this, the JSON scratch buffer is released after use instead of kept for the next one.
const KEEP_JSON_BUFFER: usize = 4 * 1024 * 1024;

impl Decoder {
    pub fn new(max_decompressed: usize) -> Decoder {
        Decoder {
            // Room for one payload at the limit plus the decompressor's read chunk.
            budget: Budget::new(max_decompressed + 1024 * 1024, 1),
            max_decompressed,
            json: Vec::new(),
        }
    }

    /// Encodes every record of `body` into `rows`. On failure, `rows` is as it was.
    pub fn encode(
        &mut self,
        env: &Envelope<'_>,
        body: &[u8],
        partition: i32,
        offset: i64,
        policy: &ContentPolicy,
        rows: &mut Rows,
    ) -> Result<Stats, DeadLetter> {
        let mut permit = self.budget.permit();
        let data: Cow<'_, [u8]> =
            decompress(env.compression, body, self.max_decompressed, &mut permit).map_err(|f| match f {
                Failure::Reject(r @ Reject::DecompressedTooLarge { .. }) => DeadLetter::new("too_large", r.to_string()),
                other => DeadLetter::new("bad_compression", other.to_string()),
            })?;
        let origin = Origin {
            tenant: env.tenant,
            received_at_ns: env.received_at_ns,
            partition,
            offset,
            policy,
        };
        let mark = rows.mark();
        let mut stats = Stats::default();
        let mut visit = |resource: &[Attr<'_>], record: &Record<'_>| {
            let ev = normalize(env.tenant, resource, record, env.received_at_ns);
            let kind = match ev.detail {
                Detail::UserPrompt(_) => 0,
                Detail::ApiRequest(_) => 1,
                Detail::ApiError(_) => 2,
                Detail::ToolDecision(_) => 3,
                Detail::ToolResult(_) => 4,
                Detail::Other => 5,
            };
            stats.events[kind] += 1;
            stats.coercion_failures += u64::from(ev.coercion_failures);
            match ev.time_source {
                TimeSource::Record => {}
                TimeSource::Observed => stats.time_fallbacks[0] += 1,
                TimeSource::EventTimestamp => stats.time_fallbacks[1] += 1,
                TimeSource::Received => stats.time_fallbacks[2] += 1,
                TimeSource::Clamped => stats.time_fallbacks[3] += 1,
            }
            rows.push(&origin, resource, record, &ev);
        };
        let result = match env.content_type {
            ContentType::Protobuf => proto::decode(&data, &mut visit),
            ContentType::Json => {
                // simd-json unescapes in place: it needs its own mutable copy.
                self.json.clear();
                self.json.extend_from_slice(&data);
                let r = json::decode(&mut self.json, &mut visit);
                if self.json.capacity() > KEEP_JSON_BUFFER {
                    self.json = Vec::new();
                }
                r
            }
        };
        match result {
            Ok(_) => Ok(stats),
            Err(e) => {
                rows.rollback(mark);
                Err(DeadLetter::new("undecodable", e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;

    fn message(headers: &[(&str, &str)], payload: &[u8]) -> OwnedMessage {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: Some(*v),
            });
        }
        OwnedMessage::new(
            Some(payload.to_vec()),
            None,
            "cowork-otlp-logs".into(),
            Timestamp::CreateTime(1_795_100_000_123),
            0,
            7,
            Some(h),
        )
    }

    const OK: [(&str, &str); 3] = [
        (header::TENANT, "acme"),
        (header::CONTENT_TYPE, "application/json"),
        (header::RECEIVED_AT_MS, "1795100000000"),
    ];

    #[test]
    fn the_edge_headers_say_how_to_read_a_payload() {
        let m = message(&OK, b"{}");
        let env = envelope(&m).unwrap();
        assert_eq!(env.tenant, "acme");
        assert_eq!(env.content_type, ContentType::Json);
        assert_eq!(
            env.compression,
            Compression::Identity,
            "no encoding header means identity"
        );
        assert_eq!(env.received_at_ns, 1_795_100_000_000_000_000);
    }

    #[test]
    fn without_a_receive_time_the_kafka_timestamp_is_used() {
        let m = message(&OK[..2], b"{}");
        assert_eq!(envelope(&m).unwrap().received_at_ns, 1_795_100_000_123_000_000);
    }

    #[test]
    fn a_receive_time_out_of_range_is_a_bad_header_not_a_crash() {
        let far = message(&[OK[0], OK[1], (header::RECEIVED_AT_MS, "99999999999999999")], b"{}");
        assert_eq!(envelope(&far).unwrap_err().class, "bad_headers");
        let negative = message(&[OK[0], OK[1], (header::RECEIVED_AT_MS, "-5")], b"{}");
        assert_eq!(envelope(&negative).unwrap_err().class, "bad_headers");
    }

    #[test]
    fn missing_or_unknown_headers_are_dead_lettered_with_a_reason() {
        let no_tenant = message(&OK[1..], b"{}");
        let e = envelope(&no_tenant).unwrap_err();
        assert_eq!((e.class, e.reason.as_str()), ("bad_headers", "no cowork-tenant header"));
        let xml = message(&[OK[0], (header::CONTENT_TYPE, "text/xml")], b"<x/>");
        let e = envelope(&xml).unwrap_err();
        assert_eq!(e.class, "bad_headers");
        assert!(e.reason.contains("text/xml"), "{}", e.reason);
        let brotli = message(&[OK[0], OK[1], (header::CONTENT_ENCODING, "br")], b"");
        assert!(envelope(&brotli).unwrap_err().reason.contains("\"br\""));
    }

    #[test]
    fn bad_payloads_leave_no_rows_behind() {
        let policy = ContentPolicy::default();
        let mut decoder = Decoder::new(1024);
        let mut rows = Rows::default();
        let env = |content_type, compression| Envelope {
            tenant: "acme",
            content_type,
            compression,
            received_at_ns: 1,
        };
        // Two good records, then a broken one: the whole payload goes, and its rows with it.
        let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[]},{"attributes":[]},{"attributes":7}]}]}]}"#;
        let e = decoder
            .encode(
                &env(ContentType::Json, Compression::Identity),
                json,
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class, "undecodable");
        assert_eq!(rows.mark(), crate::rows::Mark::default());
        let e = decoder
            .encode(
                &env(ContentType::Protobuf, Compression::Gzip),
                b"not gzip",
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class, "bad_compression");
        let bomb = {
            use std::io::Write;
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            g.write_all(&[0u8; 4096]).unwrap();
            g.finish().unwrap()
        };
        let e = decoder
            .encode(
                &env(ContentType::Protobuf, Compression::Gzip),
                &bomb,
                0,
                0,
                &policy,
                &mut rows,
            )
            .unwrap_err();
        assert_eq!(e.class, "too_large", "{}", e.reason);
    }
}
