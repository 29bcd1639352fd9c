//! The OTLP/JSON fast path: simd-json's tape, walked in place.
//!
//! OTLP/JSON quirks handled here: camelCase keys (the proto names are accepted too), int64 as a
//! JSON string or a bare number (Claude Code's JS exporter writes bare numbers), doubles as
//! numbers or strings, unknown keys ignored.

use simd_json::prelude::*;
use simd_json::tape::{Array, Value as J};

use super::{
    Attr, DecodeError, Id, Number, Point, PointKind, Record, Span, Temporality, Value, Visit, VisitPoints, VisitSpans,
};
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
                    .cast_f64()
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

/// The `attributes` of an object (a log record, a resource), into `out`.
fn attributes<'i>(obj: J<'_, 'i>, out: &mut Vec<Attr<'i>>) -> Result<(), DecodeError> {
    match field(obj, "attributes", "attributes") {
        Some(attrs) => attributes_of(attrs, out),
        None => Ok(()),
    }
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
                record.trace_id = match field(lr, "traceId", "trace_id") {
                    None => Id::Empty,
                    Some(v) => id_of(v, "traceId")?,
                };
                record.span_id = match field(lr, "spanId", "span_id") {
                    None => Id::Empty,
                    Some(v) => id_of(v, "spanId")?,
                };
                attributes(lr, &mut record.attributes)?;
                visit.record(&resource, &record);
                count += 1;
            }
        }
    }
    Ok(count)
}

fn object<'t, 'i>(v: J<'t, 'i>, what: &str) -> Result<J<'t, 'i>, DecodeError> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(err(format!("{what} is not an object")))
    }
}

/// The entries of an object, null values skipped (OTLP/JSON treats them as absent).
fn entries<'t, 'i>(v: J<'t, 'i>, what: &str) -> Result<impl Iterator<Item = (&'i str, J<'t, 'i>)>, DecodeError> {
    let obj = v.as_object().ok_or_else(|| err(format!("{what} is not an object")))?;
    Ok(obj.iter().filter(|(_, v)| !v.is_null()))
}

fn items<'t, 'i>(v: J<'t, 'i>, what: &str) -> Result<Array<'t, 'i>, DecodeError> {
    v.as_array().ok_or_else(|| err(format!("{what} is not an array")))
}

fn text<'i>(v: J<'_, 'i>, what: &str) -> Result<&'i str, DecodeError> {
    v.into_string().ok_or_else(|| err(format!("{what} is not a string")))
}

/// A string field of an object, `""` when absent.
fn text_field<'i>(obj: J<'_, 'i>, camel: &str, snake: &str) -> Result<&'i str, DecodeError> {
    field(obj, camel, snake).map_or(Ok(""), |v| text(v, camel))
}

/// A signed 64-bit integer: a JSON number or a string holding one.
fn i64_of(v: J<'_, '_>, what: &str) -> Result<i64, DecodeError> {
    v.as_i64()
        .or_else(|| v.into_string().and_then(|s| s.parse().ok()))
        .ok_or_else(|| err(format!("{what} is not an integer")))
}

fn u32_of(v: J<'_, '_>, what: &str) -> Result<u32, DecodeError> {
    u32::try_from(uint(Some(v), what)?).map_err(|_| err(format!("{what} is out of range")))
}

/// An enum: OTLP/JSON sends enums as integers (the reference refuses their names too).
fn enum_of(v: J<'_, '_>, what: &str) -> Result<i32, DecodeError> {
    v.as_i64()
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| err(format!("{what} is not an enum number")))
}

/// A double: a JSON number (integers included) or a string holding one ("NaN", "Infinity" and
/// "-Infinity" included).
fn f64_of(v: J<'_, '_>, what: &str) -> Result<f64, DecodeError> {
    v.cast_f64()
        .or_else(|| v.into_string().and_then(|s| s.parse().ok()))
        .ok_or_else(|| err(format!("{what} is not a number")))
}

fn bool_of(v: J<'_, '_>, what: &str) -> Result<bool, DecodeError> {
    v.as_bool().ok_or_else(|| err(format!("{what} is not a boolean")))
}

/// A trace or span id: hex text (OTLP/JSON does not use base64 for ids). A `0x` prefix is
/// dropped, as the reference's hex decoder drops it.
fn id_of<'i>(v: J<'_, 'i>, what: &str) -> Result<Id<'i>, DecodeError> {
    let s = text(v, what)?;
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!("{what} is not hex")));
    }
    Ok(if s.is_empty() { Id::Empty } else { Id::Hex(s) })
}

fn attributes_of<'i>(v: J<'_, 'i>, out: &mut Vec<Attr<'i>>) -> Result<(), DecodeError> {
    for kv in items(v, "attributes")?.iter() {
        out.push(key_value(kv, 1)?);
    }
    Ok(())
}

/// The attributes of a resource entry's `resource`, into `out`.
fn resource_of<'i>(entry: J<'_, 'i>, out: &mut Vec<Attr<'i>>) -> Result<(), DecodeError> {
    out.clear();
    if let Some(res) = field(entry, "resource", "resource") {
        attributes(object(res, "resource")?, out)?;
    }
    Ok(())
}

/// The name of a scope entry's `scope`.
fn scope_name_of<'i>(entry: J<'_, 'i>) -> Result<&'i str, DecodeError> {
    match field(entry, "scope", "scope") {
        None => Ok(""),
        Some(scope) => text_field(object(scope, "scope")?, "name", "name"),
    }
}

/// The root's array `camel`, checked to be an object first.
fn root_array<'t, 'i>(
    tape: &'t simd_json::tape::Tape<'i>,
    camel: &str,
    snake: &str,
) -> Result<Option<Array<'t, 'i>>, DecodeError> {
    let root = tape.as_value();
    if !root.is_object() {
        return Err(err("the payload is not a JSON object"));
    }
    array(root, camel, snake)
}

/// One data point's fields into `p` (reset first), as its metric's kind has them.
fn data_point<'i>(dp: J<'_, 'i>, kind: PointKind, p: &mut Point<'i>) -> Result<(), DecodeError> {
    p.start_time_unix_nano = 0;
    p.time_unix_nano = 0;
    p.number = Number::None;
    p.count = 0;
    p.sum = if kind == PointKind::Summary { Some(0.0) } else { None };
    p.min = None;
    p.max = None;
    p.bucket_counts.clear();
    p.explicit_bounds.clear();
    p.flags = 0;
    p.attributes.clear();
    let number = matches!(kind, PointKind::Gauge | PointKind::Sum);
    let histogram = kind == PointKind::Histogram;
    let distribution = !number;
    let has_extremes = matches!(kind, PointKind::Histogram | PointKind::ExponentialHistogram);
    for (key, v) in entries(dp, "a data point")? {
        match key {
            "attributes" => attributes_of(v, &mut p.attributes)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                p.start_time_unix_nano = uint(Some(v), "startTimeUnixNano")?
            }
            "timeUnixNano" | "time_unix_nano" => p.time_unix_nano = uint(Some(v), "timeUnixNano")?,
            "flags" => p.flags = u32_of(v, "flags")?,
            // A oneof: the first value sent wins, as with the reference.
            "asDouble" | "as_double" if number && p.number == Number::None => {
                p.number = Number::Double(f64_of(v, "asDouble")?)
            }
            "asInt" | "as_int" if number && p.number == Number::None => p.number = Number::Int(i64_of(v, "asInt")?),
            "count" if distribution => p.count = uint(Some(v), "count")?,
            "sum" if distribution => p.sum = Some(f64_of(v, "sum")?),
            "min" if has_extremes => p.min = Some(f64_of(v, "min")?),
            "max" if has_extremes => p.max = Some(f64_of(v, "max")?),
            "bucketCounts" | "bucket_counts" if histogram => {
                for c in items(v, "bucketCounts")?.iter() {
                    p.bucket_counts.push(uint(Some(c), "bucketCounts")?);
                }
            }
            "explicitBounds" | "explicit_bounds" if histogram => {
                for b in items(v, "explicitBounds")?.iter() {
                    p.explicit_bounds.push(f64_of(b, "explicitBounds")?);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes an `ExportMetricsServiceRequest` (which simd-json rewrites in place), calling
/// `visit` for each data point; returns the number of points.
pub fn decode_metrics<'a>(buf: &'a mut [u8], visit: &mut impl VisitPoints<'a>) -> Result<u64, DecodeError> {
    let tape = simd_json::to_tape(buf).map_err(|e| err(e.to_string()))?;
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut p = Point::default();
    let mut count = 0;
    let Some(resource_metrics) = root_array(&tape, "resourceMetrics", "resource_metrics")? else {
        return Ok(0);
    };
    for rm in resource_metrics.iter() {
        object(rm, "a resourceMetrics entry")?;
        resource_of(rm, &mut resource)?;
        let Some(scopes) = array(rm, "scopeMetrics", "scope_metrics")? else {
            continue;
        };
        for sm in scopes.iter() {
            object(sm, "a scopeMetrics entry")?;
            p.scope_name = scope_name_of(sm)?;
            let Some(metrics) = array(sm, "metrics", "metrics")? else {
                continue;
            };
            for m in metrics.iter() {
                p.metric = "";
                p.unit = "";
                // The data is a oneof: the first kind sent wins, as with the reference.
                let mut data = None;
                for (key, v) in entries(m, "a metric")? {
                    match key {
                        "name" => p.metric = text(v, "name")?,
                        "unit" => p.unit = text(v, "unit")?,
                        _ if data.is_some() => {}
                        "gauge" => data = Some((PointKind::Gauge, v)),
                        "sum" => data = Some((PointKind::Sum, v)),
                        "histogram" => data = Some((PointKind::Histogram, v)),
                        "exponentialHistogram" | "exponential_histogram" => {
                            data = Some((PointKind::ExponentialHistogram, v))
                        }
                        "summary" => data = Some((PointKind::Summary, v)),
                        _ => {}
                    }
                }
                let Some((kind, data)) = data else {
                    continue;
                };
                let data = object(data, kind.as_str())?;
                p.kind = kind;
                p.temporality = Temporality::Unspecified;
                p.monotonic = false;
                if !matches!(kind, PointKind::Gauge | PointKind::Summary) {
                    if let Some(t) = field(data, "aggregationTemporality", "aggregation_temporality") {
                        p.temporality = Temporality::from_i32(i64::from(enum_of(t, "aggregationTemporality")?));
                    }
                }
                if kind == PointKind::Sum {
                    if let Some(m) = field(data, "isMonotonic", "is_monotonic") {
                        p.monotonic = bool_of(m, "isMonotonic")?;
                    }
                }
                let Some(points) = array(data, "dataPoints", "data_points")? else {
                    continue;
                };
                for dp in points.iter() {
                    data_point(dp, kind, &mut p)?;
                    visit.point(&resource, &p);
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}

fn span<'i>(v: J<'_, 'i>, s: &mut Span<'i>) -> Result<(), DecodeError> {
    s.trace_id = Id::Empty;
    s.span_id = Id::Empty;
    s.parent_span_id = Id::Empty;
    s.name = "";
    s.kind = 0;
    s.start_time_unix_nano = 0;
    s.end_time_unix_nano = 0;
    s.attributes.clear();
    s.status_code = 0;
    s.status_message = "";
    s.events = 0;
    s.links = 0;
    for (key, v) in entries(v, "a span")? {
        match key {
            "traceId" | "trace_id" => s.trace_id = id_of(v, "traceId")?,
            "spanId" | "span_id" => s.span_id = id_of(v, "spanId")?,
            "parentSpanId" | "parent_span_id" => s.parent_span_id = id_of(v, "parentSpanId")?,
            "name" => s.name = text(v, "name")?,
            "kind" => s.kind = enum_of(v, "kind")?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                s.start_time_unix_nano = uint(Some(v), "startTimeUnixNano")?
            }
            "endTimeUnixNano" | "end_time_unix_nano" => s.end_time_unix_nano = uint(Some(v), "endTimeUnixNano")?,
            "attributes" => attributes_of(v, &mut s.attributes)?,
            "events" => {
                for e in items(v, "events")?.iter() {
                    object(e, "an event")?;
                    s.events = s.events.saturating_add(1);
                }
            }
            "links" => {
                for l in items(v, "links")?.iter() {
                    object(l, "a link")?;
                    s.links = s.links.saturating_add(1);
                }
            }
            "status" => {
                for (key, v) in entries(v, "status")? {
                    match key {
                        "message" => s.status_message = text(v, "status.message")?,
                        "code" => s.status_code = enum_of(v, "status.code")?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes an `ExportTraceServiceRequest` (which simd-json rewrites in place), calling `visit`
/// for each span; returns the number of spans.
pub fn decode_traces<'a>(buf: &'a mut [u8], visit: &mut impl VisitSpans<'a>) -> Result<u64, DecodeError> {
    let tape = simd_json::to_tape(buf).map_err(|e| err(e.to_string()))?;
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut s = Span::default();
    let mut count = 0;
    let Some(resource_spans) = root_array(&tape, "resourceSpans", "resource_spans")? else {
        return Ok(0);
    };
    for rs in resource_spans.iter() {
        object(rs, "a resourceSpans entry")?;
        resource_of(rs, &mut resource)?;
        let Some(scopes) = array(rs, "scopeSpans", "scope_spans")? else {
            continue;
        };
        for ss in scopes.iter() {
            object(ss, "a scopeSpans entry")?;
            s.scope_name = scope_name_of(ss)?;
            let Some(spans) = array(ss, "spans", "spans")? else {
                continue;
            };
            for sp in spans.iter() {
                span(sp, &mut s)?;
                visit.span(&resource, &s);
                count += 1;
            }
        }
    }
    Ok(count)
}
