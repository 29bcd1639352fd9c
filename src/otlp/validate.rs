//! Is this the OTLP export request its route promises? Logs are walked field by field against
//! the OTLP schema (every field's wire type, every string's UTF-8, nesting depth), metrics and
//! traces down to each metric or span, JSON down to each record object. Each check counts the
//! records as it goes, reads the payload in place and copies nothing. The protobuf walk accepts
//! and rejects what prost's owned decode does (a test holds the two together).

use std::fmt;

use prost::encoding::WireType;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::wire::{Reader, Value, WireError};
use super::{ContentType, Signal, MAX_DEPTH};

/// A body that is not the export request it claims to be; the message says what is wrong and
/// never quotes the payload's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Checks that `body` is a valid export request for `signal` and counts its log records
/// (metrics, spans). A count of 0 means there is nothing to publish.
pub fn count_records(signal: Signal, content_type: ContentType, body: &[u8]) -> Result<u64, Invalid> {
    match content_type {
        ContentType::Protobuf => count_protobuf(signal, body),
        ContentType::Json => count_json(signal, body),
    }
}

fn count_protobuf(signal: Signal, body: &[u8]) -> Result<u64, Invalid> {
    // Nothing is copied: the walkers read the payload in place, so what a request costs in
    // memory is its bytes, whatever it holds.
    let (what, counted) = match signal {
        // Logs are the volume signal, validated field by field against the OTLP schema.
        Signal::Logs => ("ExportLogsServiceRequest", check_logs_request(body)),
        // Metrics and traces pass through to their own topics; their structure is checked down
        // to each metric or span.
        Signal::Metrics => (
            "ExportMetricsServiceRequest",
            count_path(body, &[1, 2, 2], "ExportMetricsServiceRequest"),
        ),
        Signal::Traces => (
            "ExportTraceServiceRequest",
            count_path(body, &[1, 2, 2], "ExportTraceServiceRequest"),
        ),
    };
    counted.map_err(|e| Invalid(format!("body is not a valid protobuf {what}: {e}")))
}

/// The path from an OTLP/JSON export request down to its records, one level per step, each
/// with its camelCase name and the proto field name that protobuf's JSON mapping also allows.
fn json_path(signal: Signal) -> (&'static str, &'static [[&'static str; 2]; 3]) {
    match signal {
        Signal::Logs => (
            "ExportLogsServiceRequest",
            &[
                ["resourceLogs", "resource_logs"],
                ["scopeLogs", "scope_logs"],
                ["logRecords", "log_records"],
            ],
        ),
        Signal::Metrics => (
            "ExportMetricsServiceRequest",
            &[
                ["resourceMetrics", "resource_metrics"],
                ["scopeMetrics", "scope_metrics"],
                ["metrics", "metrics"],
            ],
        ),
        Signal::Traces => (
            "ExportTraceServiceRequest",
            &[
                ["resourceSpans", "resource_spans"],
                ["scopeSpans", "scope_spans"],
                ["spans", "spans"],
            ],
        ),
    }
}

fn count_json(signal: Signal, body: &[u8]) -> Result<u64, Invalid> {
    let (what, path) = json_path(signal);
    let mut de = serde_json::Deserializer::from_slice(body);
    let count = CountIn(path)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|_| n))
        .map_err(|e| {
            Invalid(format!(
                "body is not a valid OTLP/JSON {what}: {}",
                redact(&e.to_string())
            ))
        })?;
    Ok(count)
}

/// serde_json quotes the offending value (`invalid type: string "…"`), which may be prompt
/// text: error messages reach logs and clients, so the quoted value is cut out.
fn redact(message: &str) -> String {
    match message.find("string \"") {
        None => message.to_string(),
        Some(start) => {
            let open = start + "string \"".len();
            let end = message[open..]
                .find("\", expected")
                .map_or(message.len(), |i| open + i + 1);
            format!("{}string{}", &message[..start], &message[end..])
        }
    }
}

/// Counts the records below an object by following `path` through its arrays. Everything off
/// the path, and the records themselves, is skipped without allocating (`IgnoredAny`): the
/// consumer decodes records and dead-letters what it cannot.
#[derive(Clone, Copy)]
struct CountIn<'p>(&'p [[&'p str; 2]]);

/// An array of objects, each counted with [`CountIn`]; at the end of the path, its length.
#[derive(Clone, Copy)]
struct CountArray<'p>(&'p [[&'p str; 2]], &'p str);

/// Whether a key is the next step of the path.
struct KeyIs<'p>(&'p [&'p str; 2]);

impl<'de> DeserializeSeed<'de> for CountIn<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CountIn<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with {}", self.0[0][0])
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut total = 0;
        while let Some(on_path) = map.next_key_seed(KeyIs(&self.0[0]))? {
            if on_path {
                total += map.next_value_seed(CountArray(&self.0[1..], self.0[0][0]))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(total)
    }
}

impl<'de> DeserializeSeed<'de> for CountArray<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CountArray<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array for {}", self.1)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut total = 0;
        if self.0.is_empty() {
            while seq.next_element_seed(AnObject(self.1))?.is_some() {
                total += 1;
            }
        } else {
            while let Some(n) = seq.next_element_seed(CountIn(self.0))? {
                total += n;
            }
        }
        Ok(total)
    }
}

/// A record: any JSON object, its contents skipped.
struct AnObject<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for AnObject<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnObject<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "objects in {}", self.0)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(self.0.contains(&key))
    }
}

/// What a known field holds.
#[derive(Clone, Copy)]
enum Kind {
    Varint,
    Fixed64,
    Fixed32,
    Str,
    Bytes,
    Nested(Msg),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Msg {
    Request,
    ResourceLogs,
    Resource,
    ScopeLogs,
    Scope,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    EntityRef,
}

impl Msg {
    fn name(self) -> &'static str {
        match self {
            Msg::Request => "ExportLogsServiceRequest",
            Msg::ResourceLogs => "ResourceLogs",
            Msg::Resource => "Resource",
            Msg::ScopeLogs => "ScopeLogs",
            Msg::Scope => "InstrumentationScope",
            Msg::LogRecord => "LogRecord",
            Msg::KeyValue => "KeyValue",
            Msg::AnyValue => "AnyValue",
            Msg::ArrayValue => "ArrayValue",
            Msg::KeyValueList => "KeyValueList",
            Msg::EntityRef => "EntityRef",
        }
    }

    /// The OTLP schema (opentelemetry-proto v1), field by field. Unknown fields are skipped.
    fn field(self, n: u32) -> Option<Kind> {
        use Kind::*;
        Some(match (self, n) {
            (Msg::Request, 1) => Nested(Msg::ResourceLogs),
            (Msg::ResourceLogs, 1) => Nested(Msg::Resource),
            (Msg::ResourceLogs, 2) => Nested(Msg::ScopeLogs),
            (Msg::ResourceLogs, 3) => Str,
            (Msg::Resource, 1) => Nested(Msg::KeyValue),
            (Msg::Resource, 2) => Varint,
            (Msg::Resource, 3) => Nested(Msg::EntityRef),
            (Msg::EntityRef, 1) => Str,
            (Msg::EntityRef, 2) => Str,
            (Msg::EntityRef, 3 | 4) => Str,
            (Msg::ScopeLogs, 1) => Nested(Msg::Scope),
            (Msg::ScopeLogs, 2) => Nested(Msg::LogRecord),
            (Msg::ScopeLogs, 3) => Str,
            (Msg::Scope, 1 | 2) => Str,
            (Msg::Scope, 3) => Nested(Msg::KeyValue),
            (Msg::Scope, 4) => Varint,
            (Msg::LogRecord, 1 | 11) => Fixed64,
            (Msg::LogRecord, 2 | 7) => Varint,
            (Msg::LogRecord, 3 | 12) => Str,
            (Msg::LogRecord, 5) => Nested(Msg::AnyValue),
            (Msg::LogRecord, 6) => Nested(Msg::KeyValue),
            (Msg::LogRecord, 8) => Fixed32,
            (Msg::LogRecord, 9 | 10) => Bytes,
            (Msg::KeyValue, 1) => Str,
            (Msg::KeyValue, 2) => Nested(Msg::AnyValue),
            (Msg::KeyValue, 3) => Varint, // key_strindex (profiles)
            (Msg::AnyValue, 1) => Str,
            (Msg::AnyValue, 2 | 3) => Varint,
            (Msg::AnyValue, 4) => Fixed64,
            (Msg::AnyValue, 5) => Nested(Msg::ArrayValue),
            (Msg::AnyValue, 6) => Nested(Msg::KeyValueList),
            (Msg::AnyValue, 7) => Bytes,
            (Msg::AnyValue, 8) => Varint, // string_value_strindex (profiles)
            (Msg::ArrayValue, 1) => Nested(Msg::AnyValue),
            (Msg::KeyValueList, 1) => Nested(Msg::KeyValue),
            _ => return None,
        })
    }
}

fn walk(buf: &[u8], msg: Msg, depth: u32, records: &mut u64) -> Result<(), WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    if msg == Msg::LogRecord {
        *records += 1;
    }
    let mut reader = Reader::new(buf, msg.name());
    while let Some((field, value)) = reader.next_field()? {
        let Some(kind) = msg.field(field) else { continue };
        let expected = match kind {
            Kind::Varint => WireType::Varint,
            Kind::Fixed64 => WireType::SixtyFourBit,
            Kind::Fixed32 => WireType::ThirtyTwoBit,
            Kind::Str | Kind::Bytes | Kind::Nested(_) => WireType::LengthDelimited,
        };
        let found = value.wire_type();
        if found != expected {
            return Err(WireError::WireType {
                message: msg.name(),
                field,
                found,
                expected,
            });
        }
        match (kind, value) {
            (Kind::Str, Value::Bytes(b)) => utf8(b, msg, field)?,
            // Most attribute values are one short string: `{1: "..."}`, two bytes of key and
            // length, then the text. The walk would check exactly that; it takes no descent.
            (Kind::Nested(Msg::AnyValue), Value::Bytes(&[0x0a, len, ref text @ ..]))
                if usize::from(len) == text.len() && len < 0x80 =>
            {
                utf8(text, Msg::AnyValue, 1)?
            }
            (Kind::Nested(inner), Value::Bytes(b)) => walk(b, inner, depth + 1, records)?,
            _ => {}
        }
    }
    Ok(())
}

/// A string field's UTF-8 check. Nearly every OTLP string is ASCII, which a word-at-a-time scan
/// confirms for a fraction of a full validation.
#[inline(always)]
fn utf8(b: &[u8], msg: Msg, field: u32) -> Result<(), WireError> {
    if b.is_ascii() || simdutf8::basic::from_utf8(b).is_ok() {
        return Ok(());
    }
    Err(WireError::Utf8 {
        message: msg.name(),
        field,
    })
}

/// Counts the messages at the end of a path of repeated message fields, checking that each
/// level and each counted message is well-formed wire data. For the signals the edge passes
/// through without a full schema (metrics: `[1, 2, 2]` = resource_metrics, scope_metrics,
/// metrics; traces: `[1, 2, 2]` = resource_spans, scope_spans, spans). Allocates nothing.
pub fn count_path(buf: &[u8], path: &[u32], message: &'static str) -> Result<u64, WireError> {
    let mut reader = Reader::new(buf, message);
    let Some((&step, rest)) = path.split_first() else {
        // A counted message: its fields must parse.
        while reader.next_field()?.is_some() {}
        return Ok(1);
    };
    let mut count = 0;
    while let Some((field, value)) = reader.next_field()? {
        if field != step {
            continue;
        }
        match value {
            Value::Bytes(b) => count += count_path(b, rest, message)?,
            other => {
                return Err(WireError::WireType {
                    message,
                    field,
                    found: other.wire_type(),
                    expected: WireType::LengthDelimited,
                })
            }
        }
    }
    Ok(count)
}

/// Validates an `ExportLogsServiceRequest` and returns how many log records it holds.
pub fn check_logs_request(buf: &[u8]) -> Result<u64, WireError> {
    let mut records = 0;
    walk(buf, Msg::Request, 0, &mut records)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;
    use rand::{Rng, SeedableRng};

    fn corpus() -> Vec<Vec<u8>> {
        crate::fixtures::bodies("proto-none")
    }

    fn prost_count(buf: &[u8]) -> Result<u64, prost::DecodeError> {
        let req = ExportLogsServiceRequest::decode(buf)?;
        Ok(req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum())
    }

    #[test]
    fn agrees_with_prost_on_the_corpus() {
        for body in corpus() {
            assert_eq!(check_logs_request(&body).unwrap(), prost_count(&body).unwrap());
        }
    }

    #[test]
    fn agrees_with_prost_on_mutated_and_truncated_bodies() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let bodies = corpus();
        let mut rejected = 0;
        for i in 0..4000 {
            let mut body = bodies[i % bodies.len()].clone();
            match i % 3 {
                0 => body.truncate(rng.random_range(0..body.len())),
                1 => {
                    for _ in 0..rng.random_range(1..4) {
                        let at = rng.random_range(0..body.len());
                        body[at] = rng.random();
                    }
                }
                _ => {
                    let at = rng.random_range(0..body.len());
                    body[at] ^= 1 << rng.random_range(0..8);
                }
            }
            let ours = check_logs_request(&body);
            let theirs = prost_count(&body);
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "case {i}: ours {ours:?}, prost {theirs:?}"
            );
            if let (Ok(a), Ok(b)) = (&ours, &theirs) {
                assert_eq!(a, b, "case {i}");
            }
            rejected += ours.is_err() as u32;
        }
        assert!(rejected > 1000, "the mutations exercise the error paths ({rejected})");
    }

    #[test]
    fn errors_name_the_problem() {
        // Field 1 of the request (ResourceLogs) sent as a varint.
        assert_eq!(
            check_logs_request(&[0x08, 0x01]).unwrap_err().to_string(),
            "field 1 of ExportLogsServiceRequest has wire type Varint, expected LengthDelimited"
        );
        assert_eq!(
            check_logs_request(&[0x0a, 0x05, 0x00]).unwrap_err().to_string(),
            "truncated ExportLogsServiceRequest"
        );
        assert_eq!(check_logs_request(&[]).unwrap(), 0);
        // A deeply nested AnyValue array is refused, not a stack overflow.
        let wrap = |tag: u8, inner: &[u8]| {
            let mut out = vec![tag];
            prost::encoding::encode_varint(inner.len() as u64, &mut out);
            out.extend_from_slice(inner);
            out
        };
        let mut any = vec![];
        for _ in 0..200 {
            any = wrap(0x2a, &wrap(0x0a, &any)); // AnyValue.array_value(ArrayValue.values(...))
        }
        // Request.resource_logs(ResourceLogs.scope_logs(ScopeLogs.log_records(LogRecord.body(any))))
        let req = wrap(0x0a, &wrap(0x12, &wrap(0x12, &wrap(0x2a, &any))));
        assert_eq!(check_logs_request(&req).unwrap_err(), WireError::TooDeep);
    }

    /// One log record whose only attribute is `key` = an AnyValue of the bytes `any`.
    fn one_attribute(any: &[u8]) -> Vec<u8> {
        let nest = |field: u8, inner: &[u8]| {
            let mut v = vec![(field << 3) | 2];
            prost::encoding::encode_varint(inner.len() as u64, &mut v);
            v.extend_from_slice(inner);
            v
        };
        let kv = [nest(1, b"key"), nest(2, any)].concat();
        nest(1, &nest(2, &nest(2, &nest(6, &kv))))
    }

    #[test]
    fn short_string_values_are_checked_as_the_full_walk_checks_them() {
        let cases: [(&[u8], bool); 8] = [
            (b"\x0a\x03abc", true),
            (b"\x0a\x00", true),
            ("\x0a\x04caf\u{e9}".as_bytes(), false), // the length counts bytes: é is two
            ("\x0a\x05caf\u{e9}".as_bytes(), true),
            (b"\x0a\x03a\xffc", false),   // not UTF-8
            (b"\x0a\x03ab", false),       // truncated
            (b"\x0a\x01a\x18\x01", true), // a string, then an int: the full walk
            (b"\x0a\x01\xc3\x18\x01", false),
        ];
        for (any, ok) in cases {
            let body = one_attribute(any);
            let ours = check_logs_request(&body);
            assert_eq!(ours.is_ok(), ok, "{any:?}: {ours:?}");
            assert_eq!(prost_count(&body).is_ok(), ok, "prost on {any:?}");
            if let Err(e) = ours {
                let want = ["AnyValue", "not valid UTF-8", "truncated"];
                assert!(want.iter().any(|w| e.to_string().contains(w)), "{e}");
            }
        }
        let err = check_logs_request(&one_attribute(b"\x0a\x03a\xffc")).unwrap_err();
        assert_eq!(err.to_string(), "field 1 of AnyValue is not valid UTF-8");
    }

    #[test]
    fn invalid_payloads_say_what_is_wrong() {
        let err = count_records(Signal::Logs, ContentType::Json, b"{\"resourceLogs\": 5}").unwrap_err();
        assert!(err.to_string().contains("expected an array for resourceLogs"), "{err}");
        let err = count_records(Signal::Logs, ContentType::Protobuf, b"\xff\xff\xff").unwrap_err();
        assert!(err.to_string().contains("ExportLogsServiceRequest"), "{err}");
        assert_eq!(count_records(Signal::Logs, ContentType::Protobuf, b"").unwrap(), 0);
        assert_eq!(count_records(Signal::Traces, ContentType::Json, b"{}").unwrap(), 0);
        let both = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{},{}]}]},{"scope_spans":[{"spans":[{"name":"x"}]}]}],"x":[1]}"#;
        assert_eq!(count_records(Signal::Traces, ContentType::Json, both).unwrap(), 3);
        let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{}}]}]}]}"#;
        assert_eq!(count_records(Signal::Metrics, ContentType::Json, metrics).unwrap(), 1);
        // Logs sent to the traces route hold no spans; trailing garbage is refused.
        assert_eq!(
            count_records(Signal::Traces, ContentType::Json, br#"{"resourceLogs":[{}]}"#).unwrap(),
            0
        );
        assert!(count_records(Signal::Logs, ContentType::Json, b"{} x").is_err());
        // Records must be objects, and a quoted value never comes back in the error.
        let err = count_records(
            Signal::Logs,
            ContentType::Json,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":["my secret prompt"]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("expected objects in logRecords") && !err.contains("secret"),
            "{err}"
        );
        // Metrics and traces protobuf are checked down to each metric or span.
        assert_eq!(
            count_records(
                Signal::Traces,
                ContentType::Protobuf,
                &[0x0a, 0x04, 0x12, 0x02, 0x12, 0x00]
            )
            .unwrap(),
            1
        );
        assert!(count_records(
            Signal::Traces,
            ContentType::Protobuf,
            &[0x0a, 0x04, 0x12, 0x02, 0x12, 0x05]
        )
        .is_err());
    }
}
