//! What travels on Kafka between the edge and the consumer: one message per accepted request,
//! its body exactly as the client sent it, and headers that say everything the consumer must
//! know to decode it. The consumer never has to guess.
//!
//! This module is the contract's one home: the header names, the writer the edge uses
//! ([`Envelope::to_headers`]) and the reader the consumer uses ([`Envelope::read`]), side by side.

use std::collections::BTreeMap;

#[cfg(feature = "service")]
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

use crate::otlp::{Compression, ContentType, Signal};

/// Kafka header names. Values are UTF-8 text.
pub mod header {
    /// Tenant that owns the payload, taken from the API key (never from the payload).
    pub const TENANT: &str = "cowork-tenant";
    /// Id of the API key that sent it (the public half, never the secret).
    pub const KEY_ID: &str = "cowork-key-id";
    /// `application/x-protobuf` or `application/json`.
    pub const CONTENT_TYPE: &str = "cowork-content-type";
    /// `identity`, `gzip`, `deflate` or `zstd`: how the body is compressed as stored.
    pub const CONTENT_ENCODING: &str = "cowork-content-encoding";
    /// Receive time at the edge, Unix milliseconds.
    pub const RECEIVED_AT_MS: &str = "cowork-received-at-ms";
    /// Request id, also returned to the client as `x-request-id`.
    pub const REQUEST_ID: &str = "cowork-request-id";
    /// `logs`, `metrics` or `traces`.
    pub const SIGNAL: &str = "cowork-signal";
    /// `http` or `grpc`.
    pub const TRANSPORT: &str = "cowork-transport";
    /// Number of log records (for metrics: metrics; for traces: spans) the edge counted.
    pub const RECORDS: &str = "cowork-records";
    /// The API key's default attributes (`keys create --attr`), a compact JSON object of strings,
    /// `{"team":"payments"}`. Omitted when the key has none. Written by
    /// [`encode_key_attributes`](super::encode_key_attributes), read by
    /// [`key_attributes`](super::key_attributes).
    pub const KEY_ATTRIBUTES: &str = "cowork-key-attributes";
}

/// Everything the headers say about one payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub signal: Signal,
    pub tenant: &'a str,
    pub key_id: &'a str,
    pub content_type: ContentType,
    pub compression: Compression,
    /// Receive time at the edge, in Unix nanoseconds (whole milliseconds on the wire).
    pub received_at_ns: u64,
    pub request_id: &'a str,
    pub transport: &'a str,
    pub records: u64,
    /// The [`header::KEY_ATTRIBUTES`] text as sent, "" when absent; [`key_attributes`] reads it.
    pub key_attributes: &'a str,
}

/// Headers the consumer cannot read: the message goes to the dead-letter topic with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(pub String);

/// 2100-01-01 in Unix milliseconds: a later receive time is a broken header.
const MAX_RECEIVED_AT_MS: i64 = 4_102_444_800_000;

/// What the reader reads: a Kafka message's headers and timestamp. Kafka messages implement it
/// (with the `service` feature); [`HeaderList`] is the same from plain pairs, for the fuzz
/// targets and for tools that read headers from elsewhere.
pub trait HeaderSource {
    /// The value of the first header named `name`, as sent (`None` when absent or null).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The message's Kafka timestamp, Unix milliseconds, when it has one.
    fn timestamp_ms(&self) -> Option<i64>;
}

/// The headers of a Kafka message that rdkafka can present, in order. rdkafka 0.39 unwraps the
/// UTF-8 of every header name it hands out (`BorrowedHeaders::try_get`), so one message whose
/// producer (not the edge) named a header in other bytes would panic the consumer on every
/// retry and hold its partition for good. Such a header is skipped, as if absent: the message is
/// read, or dead-lettered, on what remains. (The panic is caught here; Rust's panic hook still
/// prints one line for it.)
#[cfg(feature = "service")]
pub fn readable_headers<M: Message>(msg: &M) -> impl Iterator<Item = Header<'_, &[u8]>> {
    let headers = msg.headers();
    let count = headers.map_or(0, |h| h.count());
    (0..count).filter_map(move |i| {
        let headers = headers?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| headers.try_get(i)))
            .ok()
            .flatten()
    })
}

#[cfg(feature = "service")]
impl<M: Message> HeaderSource for M {
    fn header(&self, name: &str) -> Option<&[u8]> {
        readable_headers(self).find(|h| h.key == name).and_then(|h| h.value)
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp().to_millis()
    }
}

/// Headers as (name, value) pairs in message order, names as raw bytes, and a timestamp.
#[derive(Debug, Clone, Default)]
pub struct HeaderList<'a> {
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    pub timestamp_ms: Option<i64>,
}

impl HeaderSource for HeaderList<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        let found = self.headers.iter().find(|(key, _)| *key == name.as_bytes());
        found.and_then(|(_, value)| *value)
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp_ms
    }
}

impl<'a> Envelope<'a> {
    /// The edge's side: the headers of this payload's Kafka message, nine always, and
    /// [`header::KEY_ATTRIBUTES`] when the key has attributes.
    #[cfg(feature = "service")]
    pub fn to_headers(&self) -> OwnedHeaders {
        let received = (self.received_at_ns / 1_000_000).to_string();
        let records = self.records.to_string();
        let attributes = (!self.key_attributes.is_empty()).then_some((header::KEY_ATTRIBUTES, self.key_attributes));
        let pairs: [(&str, &str); 9] = [
            (header::TENANT, self.tenant),
            (header::KEY_ID, self.key_id),
            (header::CONTENT_TYPE, self.content_type.mime()),
            (header::CONTENT_ENCODING, self.compression.as_str()),
            (header::RECEIVED_AT_MS, &received),
            (header::REQUEST_ID, self.request_id),
            (header::SIGNAL, self.signal.as_str()),
            (header::TRANSPORT, self.transport),
            (header::RECORDS, &records),
        ];
        pairs.iter().chain(attributes.as_ref()).fold(
            OwnedHeaders::new_with_capacity(pairs.len() + 1),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(*value),
                })
            },
        )
    }

    /// The consumer's side: reads the edge's headers. The receive time falls back to the Kafka
    /// timestamp, which is as stable across replays as the header; the tenant, content type and
    /// encoding must be there. Key attributes that are not UTF-8 are an error, not an absence:
    /// the payload would otherwise lose its attribution without a trace.
    pub fn read(msg: &'a impl HeaderSource) -> Result<Envelope<'a>, EnvelopeError> {
        let tenant = header_str(msg, header::TENANT)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| EnvelopeError(format!("no {} header", header::TENANT)))?;
        let mime = header_str(msg, header::CONTENT_TYPE);
        let content_type = mime.and_then(ContentType::from_mime).ok_or_else(|| {
            EnvelopeError(format!(
                "{} is {mime:?}: expected application/x-protobuf or application/json",
                header::CONTENT_TYPE
            ))
        })?;
        let encoding = header_str(msg, header::CONTENT_ENCODING).unwrap_or("identity");
        let compression = Compression::parse(encoding)
            .ok_or_else(|| EnvelopeError(format!("{} {encoding:?} is not supported", header::CONTENT_ENCODING)))?;
        let received_at_ms = header_str(msg, header::RECEIVED_AT_MS)
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| msg.timestamp_ms())
            .filter(|ms| (1..=MAX_RECEIVED_AT_MS).contains(ms))
            .ok_or_else(|| {
                EnvelopeError(format!(
                    "no usable receive time: {} and the Kafka timestamp are missing or out of range",
                    header::RECEIVED_AT_MS
                ))
            })?;
        let signal = header_str(msg, header::SIGNAL)
            .and_then(Signal::parse)
            .unwrap_or_default();
        let key_attributes = match msg.header(header::KEY_ATTRIBUTES) {
            None => "",
            Some(v) => {
                std::str::from_utf8(v).map_err(|_| EnvelopeError(format!("{} is not UTF-8", header::KEY_ATTRIBUTES)))?
            }
        };
        Ok(Envelope {
            signal,
            tenant,
            key_id: header_str(msg, header::KEY_ID).unwrap_or_default(),
            content_type,
            compression,
            received_at_ns: received_at_ms as u64 * 1_000_000,
            request_id: header_str(msg, header::REQUEST_ID).unwrap_or_default(),
            transport: header_str(msg, header::TRANSPORT).unwrap_or_default(),
            records: header_str(msg, header::RECORDS)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            key_attributes,
        })
    }
}

/// The value of header `name`, as UTF-8.
pub fn header_str<'m>(msg: &'m impl HeaderSource, name: &str) -> Option<&'m str> {
    msg.header(name).and_then(|v| std::str::from_utf8(v).ok())
}

/// The edge's side of [`header::KEY_ATTRIBUTES`]: a key's attributes as compact JSON, sorted by
/// name, "" when there are none (the header is then omitted). Done once per key-file load.
pub fn encode_key_attributes(attributes: &BTreeMap<String, String>) -> String {
    if attributes.is_empty() {
        return String::new();
    }
    serde_json::to_string(attributes).expect("a map of strings serializes")
}

/// The consumer's side of [`header::KEY_ATTRIBUTES`]: the (name, value) pairs, sorted by name.
/// Empty text (the header was absent) has none; anything but a JSON object of strings is an
/// error, which sends the message to the dead-letter topic.
pub fn key_attributes(text: &str) -> Result<Vec<(String, String)>, EnvelopeError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str::<BTreeMap<String, String>>(text)
        .map(|map| map.into_iter().collect())
        .map_err(|e| {
            EnvelopeError(format!(
                "{} is not a JSON object of strings: {e}",
                header::KEY_ATTRIBUTES
            ))
        })
}

/// The dead-letter topic's messages: the payload byte for byte, the edge's headers, and these
/// headers saying why and where from. `redrive` strips them and publishes the rest back.
#[cfg(feature = "service")]
pub mod dead_letter {
    use rdkafka::message::{Header, Message, OwnedHeaders};

    /// Why: a dead-letter class (`bad_headers`, `bad_compression`, `too_large`, `undecodable`,
    /// `clickhouse_rejected`), as the consumer's metrics label them.
    pub const CLASS: &str = "cowork-dlq-class";
    /// The error, as a sentence (at most [`MAX_REASON_CHARS`] characters).
    pub const REASON: &str = "cowork-dlq-reason";
    /// Where the payload was read from.
    pub const TOPIC: &str = "cowork-dlq-topic";
    pub const PARTITION: &str = "cowork-dlq-partition";
    pub const OFFSET: &str = "cowork-dlq-offset";
    /// Unix milliseconds when it was dead-lettered.
    pub const AT_MS: &str = "cowork-dlq-at-ms";
    pub const PREFIX: &str = "cowork-dlq-";

    /// Longest `cowork-dlq-reason`, in characters: a reason can quote a whole server error.
    pub const MAX_REASON_CHARS: usize = 2048;

    /// A message's headers without any `cowork-dlq-*` ones: what the edge wrote.
    pub fn original_headers(msg: &impl Message) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for h in super::readable_headers(msg).filter(|h| !h.key.starts_with(PREFIX)) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
        headers
    }

    /// The headers of `msg` dead-lettered now for `class` and `reason`.
    pub fn headers(msg: &impl Message, class: &str, reason: &str, at_ms: i64) -> OwnedHeaders {
        let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((cut, _)) => &reason[..cut],
            None => reason,
        };
        let (partition, offset, at) = (msg.partition().to_string(), msg.offset().to_string(), at_ms.to_string());
        let pairs = [
            (CLASS, class),
            (REASON, reason),
            (TOPIC, msg.topic()),
            (PARTITION, partition.as_str()),
            (OFFSET, offset.as_str()),
            (AT_MS, at.as_str()),
        ];
        pairs.iter().fold(original_headers(msg), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        })
    }
}

#[cfg(all(test, feature = "service"))]
mod tests {
    use rdkafka::message::{OwnedMessage, Timestamp};

    use super::*;

    fn message(headers: OwnedHeaders) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"{}".to_vec()),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        )
    }

    #[test]
    fn what_the_edge_writes_the_consumer_reads() {
        let attributes = BTreeMap::from([
            ("team".to_string(), "payments".to_string()),
            ("cost_center".to_string(), "CC-1".to_string()),
        ]);
        let text = encode_key_attributes(&attributes);
        let sent = Envelope {
            signal: Signal::Traces,
            tenant: "acme",
            key_id: "k1",
            content_type: ContentType::Json,
            compression: Compression::Zstd,
            received_at_ns: 1_795_100_000_123_000_000,
            request_id: "r-1",
            transport: "grpc",
            records: 7,
            key_attributes: &text,
        };
        let msg = message(sent.to_headers());
        assert_eq!(
            header_str(&msg, header::KEY_ATTRIBUTES),
            Some(r#"{"cost_center":"CC-1","team":"payments"}"#)
        );
        let read = Envelope::read(&msg).unwrap();
        assert_eq!(read, sent);
        assert_eq!(
            key_attributes(read.key_attributes).unwrap(),
            vec![
                ("cost_center".to_string(), "CC-1".to_string()),
                ("team".to_string(), "payments".to_string())
            ]
        );
    }

    #[test]
    fn a_key_without_attributes_sends_no_attributes_header() {
        assert_eq!(encode_key_attributes(&BTreeMap::new()), "");
        let sent = Envelope {
            tenant: "acme",
            content_type: ContentType::Protobuf,
            received_at_ns: 1_795_100_000_000_000_000,
            ..Envelope::default()
        };
        let msg = message(sent.to_headers());
        assert_eq!(msg.headers().unwrap().count(), 9);
        assert_eq!(header_str(&msg, header::KEY_ATTRIBUTES), None);
        let read = Envelope::read(&msg).unwrap();
        assert_eq!(read.key_attributes, "");
        assert_eq!(key_attributes(read.key_attributes).unwrap(), vec![]);
    }

    #[test]
    fn key_attributes_round_trip_any_text() {
        let attributes = BTreeMap::from([
            ("team.name".to_string(), r#"Pay "ments" \ ünïcode, 支付"#.to_string()),
            ("dept".to_string(), "a=b,c=d".to_string()),
        ]);
        let text = encode_key_attributes(&attributes);
        assert_eq!(
            text,
            r#"{"dept":"a=b,c=d","team.name":"Pay \"ments\" \\ ünïcode, 支付"}"#
        );
        assert_eq!(
            key_attributes(&text).unwrap(),
            attributes.into_iter().collect::<Vec<_>>()
        );
        assert_eq!(key_attributes("{}").unwrap(), vec![]);
    }

    #[test]
    fn key_attributes_that_are_not_an_object_of_strings_are_refused() {
        for bad in [
            "nope",
            "null",
            "[]",
            r#"["team"]"#,
            r#"{"team":1}"#,
            r#"{"team":null}"#,
            r#"{"team":{"a":"b"}}"#,
            "{",
        ] {
            let e = key_attributes(bad).unwrap_err();
            assert!(
                e.0.starts_with("cowork-key-attributes is not a JSON object of strings"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn key_attributes_that_are_not_utf8_are_an_error_not_an_absence() {
        let sent = Envelope {
            tenant: "acme",
            content_type: ContentType::Protobuf,
            received_at_ns: 1_795_100_000_000_000_000,
            ..Envelope::default()
        };
        let headers = sent.to_headers().insert(Header {
            key: header::KEY_ATTRIBUTES,
            value: Some(&b"{\"team\":\"\xff\"}"[..]),
        });
        let e = Envelope::read(&message(headers)).unwrap_err();
        assert_eq!(e.0, "cowork-key-attributes is not UTF-8");
    }
}
