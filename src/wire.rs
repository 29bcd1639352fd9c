//! Borrowed reads of the protobuf wire format, built on prost's encoding primitives.
//!
//! [`Reader`] walks a message's fields without allocating: strings and bytes come back as
//! slices of the input. [`check_logs_request`] uses it to validate an
//! `ExportLogsServiceRequest` all the way down (every field's wire type, every string's UTF-8,
//! nesting depth) and count its log records. It accepts and rejects what prost's owned decode
//! does (a test holds the two together) at a fraction of the cost, since nothing is copied.

use prost::encoding::{decode_varint, WireType};

/// Deepest nesting of `AnyValue`s accepted (prost's own recursion limit is 100).
pub const MAX_DEPTH: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("invalid varint in {0}")]
    Varint(&'static str),
    #[error("invalid field key in {0}")]
    Key(&'static str),
    #[error("field {field} of {message} has wire type {found:?}, expected {expected:?}")]
    WireType {
        message: &'static str,
        field: u32,
        found: WireType,
        expected: WireType,
    },
    #[error("field {field} of {message} is not valid UTF-8")]
    Utf8 { message: &'static str, field: u32 },
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// One field's value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A skipped group; only its field number is kept.
    Group,
}

impl Value<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::SixtyFourBit,
            Value::Fixed32(_) => WireType::ThirtyTwoBit,
            Value::Bytes(_) => WireType::LengthDelimited,
            Value::Group => WireType::StartGroup,
        }
    }
}

enum Raw<'a> {
    Value(Value<'a>),
    StartGroup,
    EndGroup,
}

/// Iterates over the fields of one message.
pub struct Reader<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader { buf, message }
    }

    /// The next `(field number, value)`, or `None` at the end of the message. Groups (a
    /// proto2 relic OTLP never uses) are skipped whole and reported as [`Value::Group`].
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        match self.next_raw()? {
            None => Ok(None),
            Some((field, Raw::Value(v))) => Ok(Some((field, v))),
            Some((field, Raw::StartGroup)) => {
                self.skip_group(field, 0)?;
                Ok(Some((field, Value::Group)))
            }
            Some((_, Raw::EndGroup)) => Err(WireError::Key(self.message)),
        }
    }

    fn skip_group(&mut self, field: u32, depth: u32) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        loop {
            match self.next_raw()? {
                None => return Err(WireError::Truncated(self.message)),
                Some((f, Raw::EndGroup)) if f == field => return Ok(()),
                Some((_, Raw::EndGroup)) => return Err(WireError::Key(self.message)),
                Some((f, Raw::StartGroup)) => self.skip_group(f, depth + 1)?,
                Some((_, Raw::Value(_))) => {}
            }
        }
    }

    fn next_raw(&mut self) -> Result<Option<(u32, Raw<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = decode_varint(&mut self.buf).map_err(|_| WireError::Varint(self.message))?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::Key(self.message));
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(WireError::Key(self.message));
        }
        let raw = match key & 7 {
            0 => Raw::Value(Value::Varint(
                decode_varint(&mut self.buf).map_err(|_| WireError::Varint(self.message))?,
            )),
            1 => Raw::Value(Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            ))),
            2 => {
                let len = decode_varint(&mut self.buf).map_err(|_| WireError::Varint(self.message))?;
                let len = usize::try_from(len).map_err(|_| WireError::Truncated(self.message))?;
                Raw::Value(Value::Bytes(self.take(len)?))
            }
            3 => Raw::StartGroup,
            4 => Raw::EndGroup,
            5 => Raw::Value(Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))),
            _ => return Err(WireError::Key(self.message)),
        };
        Ok(Some((field, raw)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(self.message));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
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
            (Kind::Str, Value::Bytes(b)) => {
                std::str::from_utf8(b).map_err(|_| WireError::Utf8 {
                    message: msg.name(),
                    field,
                })?;
            }
            (Kind::Nested(inner), Value::Bytes(b)) => walk(b, inner, depth + 1, records)?,
            _ => {}
        }
    }
    Ok(())
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
}
