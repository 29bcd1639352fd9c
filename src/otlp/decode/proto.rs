//! The protobuf fast path: `ExportLogsServiceRequest` read in place.

use prost::encoding::WireType;

use super::{Attr, DecodeError, Record, Value, Visit};
use crate::otlp::wire::{Reader, Value as W, WireError};
use crate::otlp::MAX_DEPTH;

/// The error for field `field` of `message` arriving with the wrong wire type.
fn mismatch(v: W<'_>, message: &'static str, field: u32, expected: WireType) -> WireError {
    WireError::WireType {
        message,
        field,
        found: v.wire_type(),
        expected,
    }
}

fn bytes<'a>(v: W<'a>, message: &'static str, field: u32) -> Result<&'a [u8], WireError> {
    match v {
        W::Bytes(b) => Ok(b),
        other => Err(mismatch(other, message, field, WireType::LengthDelimited)),
    }
}

fn string<'a>(v: W<'a>, message: &'static str, field: u32) -> Result<&'a str, WireError> {
    simdutf8::basic::from_utf8(bytes(v, message, field)?).map_err(|_| WireError::Utf8 { message, field })
}

fn any_value(buf: &[u8], depth: u32) -> Result<Value<'_>, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    let mut out = Value::Empty;
    let mut r = Reader::new(buf, "AnyValue");
    while let Some((field, v)) = r.next_field()? {
        out = match (field, v) {
            (1, v) => Value::Str(string(v, "AnyValue", 1)?),
            (2, W::Varint(b)) => Value::Bool(b != 0),
            (3, W::Varint(i)) => Value::Int(i as i64),
            (4, W::Fixed64(d)) => Value::Double(f64::from_bits(d)),
            (5, v) => {
                let mut items = Vec::new();
                let mut a = Reader::new(bytes(v, "AnyValue", 5)?, "ArrayValue");
                while let Some((f, item)) = a.next_field()? {
                    if f == 1 {
                        items.push(any_value(bytes(item, "ArrayValue", 1)?, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            (6, v) => {
                let mut kvs = Vec::new();
                let mut l = Reader::new(bytes(v, "AnyValue", 6)?, "KeyValueList");
                while let Some((f, kv)) = l.next_field()? {
                    if f == 1 {
                        kvs.push(key_value(bytes(kv, "KeyValueList", 1)?, depth + 1)?);
                    }
                }
                Value::KvList(kvs)
            }
            (7, v) => Value::Bytes(bytes(v, "AnyValue", 7)?),
            (4, v) => return Err(mismatch(v, "AnyValue", 4, WireType::SixtyFourBit)),
            (2 | 3, v) => return Err(mismatch(v, "AnyValue", field, WireType::Varint)),
            _ => continue,
        };
    }
    Ok(out)
}

fn key_value(buf: &[u8], depth: u32) -> Result<Attr<'_>, WireError> {
    let mut attr = Attr {
        key: "",
        value: Value::Empty,
    };
    let mut r = Reader::new(buf, "KeyValue");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => attr.key = string(v, "KeyValue", 1)?,
            2 => attr.value = any_value(bytes(v, "KeyValue", 2)?, depth + 1)?,
            _ => {}
        }
    }
    Ok(attr)
}

fn fixed64(v: W<'_>, message: &'static str, field: u32) -> Result<u64, WireError> {
    match v {
        W::Fixed64(x) => Ok(x),
        other => Err(mismatch(other, message, field, WireType::SixtyFourBit)),
    }
}

fn log_record<'a>(buf: &'a [u8], record: &mut Record<'a>) -> Result<(), WireError> {
    record.time_unix_nano = 0;
    record.observed_time_unix_nano = 0;
    record.body = None;
    record.event_name = "";
    record.attributes.clear();
    let mut r = Reader::new(buf, "LogRecord");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => record.time_unix_nano = fixed64(v, "LogRecord", 1)?,
            11 => record.observed_time_unix_nano = fixed64(v, "LogRecord", 11)?,
            5 => record.body = Some(any_value(bytes(v, "LogRecord", 5)?, 1)?),
            6 => record.attributes.push(key_value(bytes(v, "LogRecord", 6)?, 1)?),
            12 => record.event_name = string(v, "LogRecord", 12)?,
            _ => {}
        }
    }
    Ok(())
}

/// Decodes `buf` in one pass, calling `visit` for each record; returns the number of records.
///
/// Everything it reads is validated as it goes (wire structure, wire types, UTF-8); fields it
/// does not use are skipped unread. A payload that fails part-way may have visited records
/// already: callers stage a payload's rows and keep them only on success.
pub fn decode<'a>(buf: &'a [u8], visit: &mut impl Visit<'a>) -> Result<u64, DecodeError> {
    let mut count = 0;
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut record = Record::default();
    let mut req = Reader::new(buf, "ExportLogsServiceRequest");
    while let Some((field, rl)) = req.next_field()? {
        if field != 1 {
            continue;
        }
        let rl = bytes(rl, "ExportLogsServiceRequest", 1)?;
        resource.clear();
        // The resource may follow its scopes on the wire: read it first.
        let mut r = Reader::new(rl, "ResourceLogs");
        while let Some((field, v)) = r.next_field()? {
            if field == 1 {
                let mut res = Reader::new(bytes(v, "ResourceLogs", 1)?, "Resource");
                while let Some((f, kv)) = res.next_field()? {
                    if f == 1 {
                        resource.push(key_value(bytes(kv, "Resource", 1)?, 1)?);
                    }
                }
            }
        }
        let mut r = Reader::new(rl, "ResourceLogs");
        while let Some((field, v)) = r.next_field()? {
            if field != 2 {
                continue;
            }
            let mut s = Reader::new(bytes(v, "ResourceLogs", 2)?, "ScopeLogs");
            while let Some((f, lr)) = s.next_field()? {
                if f == 2 {
                    log_record(bytes(lr, "ScopeLogs", 2)?, &mut record)?;
                    visit.record(&resource, &record);
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}
