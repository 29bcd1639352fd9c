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
                format!("{} is {other:?}: expected application/x-protobuf or application/json", header::CONTENT_TYPE),
            ))
        }
    };
    let encoding = header_str(msg, header::CONTENT_ENCODING).unwrap_or("identity");
    let compression = Compression::parse(encoding).ok_or_else(|| {
        DeadLetter::new("bad_headers", format!("{} {encoding:?} is not supported", header::CONTENT_ENCODING))
    })?;
    let received_at_ms = header_str(msg, header::RECEIVED_AT_MS)
        .and_then(|v| v.parse::<i64>().ok())
        .or_else(|| msg.timestamp().to_millis())
        .unwrap_or(0)
        .max(0);
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
