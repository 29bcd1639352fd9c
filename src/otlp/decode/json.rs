//! The OTLP/JSON fast path: simd-json's tape, walked in place.
//!
//! OTLP/JSON quirks handled here: camelCase keys (the proto names are accepted too), int64 as a
//! JSON string or a bare number (Claude Code's JS exporter writes bare numbers), doubles as
//! numbers or strings, unknown keys ignored.

use simd_json::prelude::*;
use simd_json::tape::{Array, Value as J};

use super::{Attr, DecodeError, Record, Value, Visit};
use crate::otlp::MAX_DEPTH;

fn err(what: impl Into<String>) -> DecodeError {
    DecodeError::Json(what.into())
}

/// The field `camel` (or its proto name `snake`) of an object.
fn field<'t, 'i>(obj: J<'t, 'i>, camel: &str, snake: &str) -> Option<J<'t, 'i>> {
    obj.get(camel).or_else(|| obj.get(snake)).filter(|v| !v.is_null())
}

fn array<'t, 'i>(obj: J<'t, 'i>, camel: &str, snake: &str) -> Result<Option<Array<'t, 'i>>, DecodeError> {
    match field(obj, camel, snake) {
        None => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| err(format!("{camel} is not an array"))),
    }
}

fn int(v: J<'_, '_>, what: &str) -> Result<i64, DecodeError> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| u as i64))
        .or_else(|| v.into_string().and_then(|s| s.parse().ok()))
        .ok_or_else(|| err(format!("{what} is not an integer")))
}

fn uint(v: Option<J<'_, '_>>, what: &str) -> Result<u64, DecodeError> {
    match v {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .or_else(|| v.into_string().and_then(|s| s.parse().ok()))
            .ok_or_else(|| err(format!("{what} is not an unsigned integer"))),
    }
}

fn any_value<'i>(v: J<'_, 'i>, depth: u32) -> Result<Value<'i>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(err("values nested too deeply"));
    }
    let Some(obj) = v.as_object() else {
        return Err(err("an AnyValue is not an object"));
    };
    for (key, inner) in obj.iter() {
        if inner.is_null() {
            continue;
        }
        return Ok(match key {
            "stringValue" | "string_value" => {
                Value::Str(inner.into_string().ok_or_else(|| err("stringValue is not a string"))?)
            }
            "intValue" | "int_value" => Value::Int(int(inner, "intValue")?),
            "doubleValue" | "double_value" => Value::Double(
                inner
                    .as_f64()
                    .or_else(|| inner.into_string().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| err("doubleValue is not a number"))?,
            ),
            "boolValue" | "bool_value" => {
                Value::Bool(inner.as_bool().ok_or_else(|| err("boolValue is not a boolean"))?)
            }
            "arrayValue" | "array_value" => {
                let mut items = Vec::new();
                if let Some(values) = array(inner, "values", "values")? {
                    for item in values.iter() {
                        items.push(any_value(item, depth + 1)?);
                    }
                }
                Value::Array(items)
            }
            "kvlistValue" | "kvlist_value" => {
                let mut kvs = Vec::new();
                if let Some(values) = array(inner, "values", "values")? {
                    for kv in values.iter() {
                        kvs.push(key_value(kv, depth + 1)?);
                    }
                }
                Value::KvList(kvs)
            }
            // Bytes are base64 in OTLP/JSON; kept as their text.
            "bytesValue" | "bytes_value" => {
                Value::Str(inner.into_string().ok_or_else(|| err("bytesValue is not a string"))?)
            }
            _ => continue,
        });
    }
    Ok(Value::Empty)
}

fn key_value<'i>(v: J<'_, 'i>, depth: u32) -> Result<Attr<'i>, DecodeError> {
    if !v.is_object() {
        return Err(err("an attribute is not an object"));
    }
    let key = match field(v, "key", "key") {
        None => "",
        Some(k) => k.into_string().ok_or_else(|| err("an attribute key is not a string"))?,
    };
    let value = match field(v, "value", "value") {
        None => Value::Empty,
        Some(x) => any_value(x, depth + 1)?,
    };
    Ok(Attr { key, value })
}

fn attributes<'i>(obj: J<'_, 'i>, out: &mut Vec<Attr<'i>>) -> Result<(), DecodeError> {
    if let Some(attrs) = array(obj, "attributes", "attributes")? {
        for kv in attrs.iter() {
            out.push(key_value(kv, 1)?);
        }
    }
    Ok(())
}

/// Decodes `buf` (which simd-json rewrites in place), calling `visit` for each record;
/// returns the number of records.
pub fn decode<'a>(buf: &'a mut [u8], visit: &mut impl Visit<'a>) -> Result<u64, DecodeError> {
    let tape = simd_json::to_tape(buf).map_err(|e| err(e.to_string()))?;
    let root = tape.as_value();
    if !root.is_object() {
        return Err(err("the payload is not a JSON object"));
    }
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut record = Record::default();
    let mut count = 0;
    let Some(resource_logs) = array(root, "resourceLogs", "resource_logs")? else {
        return Ok(0);
    };
    for rl in resource_logs.iter() {
        resource.clear();
        if let Some(res) = field(rl, "resource", "resource") {
            attributes(res, &mut resource)?;
        }
        let Some(scopes) = array(rl, "scopeLogs", "scope_logs")? else {
            continue;
        };
        for sl in scopes.iter() {
            let Some(records) = array(sl, "logRecords", "log_records")? else {
                continue;
            };
            for lr in records.iter() {
                if !lr.is_object() {
                    return Err(err("a log record is not an object"));
                }
                record.attributes.clear();
                record.time_unix_nano = uint(field(lr, "timeUnixNano", "time_unix_nano"), "timeUnixNano")?;
                record.observed_time_unix_nano = uint(
                    field(lr, "observedTimeUnixNano", "observed_time_unix_nano"),
                    "observedTimeUnixNano",
                )?;
                record.body = field(lr, "body", "body").map(|b| any_value(b, 1)).transpose()?;
                record.event_name = match field(lr, "eventName", "event_name") {
                    None => "",
                    Some(v) => v.into_string().ok_or_else(|| err("eventName is not a string"))?,
                };
                attributes(lr, &mut record.attributes)?;
                visit.record(&resource, &record);
                count += 1;
            }
        }
    }
    Ok(count)
}
