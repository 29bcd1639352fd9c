//! The protobuf fast path: `ExportLogsServiceRequest`, `ExportMetricsServiceRequest` and
//! `ExportTraceServiceRequest` read in place.

use prost::encoding::WireType;

use super::{
    Attr, DecodeError, Id, Number, Point, PointKind, Record, Span, Temporality, Value, Visit, VisitPoints, VisitSpans,
};
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

/// A message's bytes, validated as UTF-8 once when they are (a `KeyValue` with a short string
/// value is: its tags and lengths are ASCII), so that its strings are slices of that text
/// instead of being validated one by one. A string whose ends are not character boundaries of
/// the text, or a message that is not UTF-8 as a whole, is validated on its own.
#[derive(Clone, Copy)]
struct Text<'a> {
    text: Option<&'a str>,
    base: usize,
}

impl<'a> Text<'a> {
    fn of(buf: &'a [u8]) -> Text<'a> {
        Text {
            text: std::str::from_utf8(buf).ok(),
            base: buf.as_ptr() as usize,
        }
    }

    fn string(self, v: W<'a>, message: &'static str, field: u32) -> Result<&'a str, WireError> {
        let b = bytes(v, message, field)?;
        if let Some(text) = self.text {
            let start = b.as_ptr() as usize - self.base;
            if let Some(s) = text.get(start..start + b.len()) {
                return Ok(s);
            }
        }
        simdutf8::basic::from_utf8(b).map_err(|_| WireError::Utf8 { message, field })
    }
}

fn any_value<'a>(buf: &'a [u8], depth: u32, text: Text<'a>) -> Result<Value<'a>, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    let mut out = Value::Empty;
    let mut r = Reader::new(buf, "AnyValue");
    while let Some((field, v)) = r.next_field()? {
        out = match (field, v) {
            (1, v) => Value::Str(text.string(v, "AnyValue", 1)?),
            (2, W::Varint(b)) => Value::Bool(b != 0),
            (3, W::Varint(i)) => Value::Int(i as i64),
            (4, W::Fixed64(d)) => Value::Double(f64::from_bits(d)),
            (5, v) => {
                let mut items = Vec::new();
                let mut a = Reader::new(bytes(v, "AnyValue", 5)?, "ArrayValue");
                while let Some((f, item)) = a.next_field()? {
                    if f == 1 {
                        items.push(any_value(bytes(item, "ArrayValue", 1)?, depth + 1, text)?);
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
    let text = Text::of(buf);
    let mut r = Reader::new(buf, "KeyValue");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => attr.key = text.string(v, "KeyValue", 1)?,
            2 => attr.value = any_value(bytes(v, "KeyValue", 2)?, depth + 1, text)?,
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
    record.trace_id = Id::Empty;
    record.span_id = Id::Empty;
    let mut r = Reader::new(buf, "LogRecord");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => record.time_unix_nano = fixed64(v, "LogRecord", 1)?,
            11 => record.observed_time_unix_nano = fixed64(v, "LogRecord", 11)?,
            5 => {
                let body = bytes(v, "LogRecord", 5)?;
                record.body = Some(any_value(body, 1, Text::of(body))?);
            }
            6 => record.attributes.push(key_value(bytes(v, "LogRecord", 6)?, 1)?),
            12 => record.event_name = string(v, "LogRecord", 12)?,
            9 => record.trace_id = id(v, "LogRecord", 9)?,
            10 => record.span_id = id(v, "LogRecord", 10)?,
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
        // The resource may follow its scopes on the wire: read it first.
        resource_attributes(rl, "ResourceLogs", &mut resource)?;
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

fn varint(v: W<'_>, message: &'static str, field: u32) -> Result<u64, WireError> {
    match v {
        W::Varint(x) => Ok(x),
        other => Err(mismatch(other, message, field, WireType::Varint)),
    }
}

fn double(v: W<'_>, message: &'static str, field: u32) -> Result<f64, WireError> {
    fixed64(v, message, field).map(f64::from_bits)
}

/// A repeated 64-bit field, packed (one length-delimited run) or not (one value per field).
fn repeated_fixed64(v: W<'_>, message: &'static str, field: u32, mut push: impl FnMut(u64)) -> Result<(), WireError> {
    match v {
        W::Fixed64(x) => push(x),
        W::Bytes(b) => {
            if b.len() % 8 != 0 {
                return Err(WireError::Truncated(message));
            }
            for chunk in b.chunks_exact(8) {
                push(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
        }
        other => return Err(mismatch(other, message, field, WireType::LengthDelimited)),
    }
    Ok(())
}

/// An id: raw bytes, `Empty` when none were sent.
fn id<'a>(v: W<'a>, message: &'static str, field: u32) -> Result<Id<'a>, WireError> {
    let b = bytes(v, message, field)?;
    Ok(if b.is_empty() { Id::Empty } else { Id::Raw(b) })
}

/// Calls `f` with each length-delimited field `field` of `buf`.
fn each<'a>(
    buf: &'a [u8],
    message: &'static str,
    field: u32,
    mut f: impl FnMut(&'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(buf, message);
    while let Some((n, v)) = r.next_field()? {
        if n == field {
            f(bytes(v, message, field)?)?;
        }
    }
    Ok(())
}

/// The attributes of the resource (field 1) of a `ResourceLogs`/`ResourceMetrics`/
/// `ResourceSpans`, into `out`. The resource may follow its scopes on the wire, so callers read
/// it before the scopes; repeated resources merge, as prost merges them.
fn resource_attributes<'a>(buf: &'a [u8], message: &'static str, out: &mut Vec<Attr<'a>>) -> Result<(), WireError> {
    out.clear();
    each(buf, message, 1, |res| {
        each(res, "Resource", 1, |kv| {
            out.push(key_value(kv, 1)?);
            Ok(())
        })
    })
}

/// The name of the scope (field 1) of a `ScopeMetrics`/`ScopeSpans`, wherever it lies.
fn scope_name<'a>(buf: &'a [u8], message: &'static str) -> Result<&'a str, WireError> {
    let mut name = "";
    each(buf, message, 1, |scope| {
        let mut r = Reader::new(scope, "InstrumentationScope");
        while let Some((f, v)) = r.next_field()? {
            if f == 1 {
                name = string(v, "InstrumentationScope", 1)?;
            }
        }
        Ok(())
    })?;
    Ok(name)
}

/// Clears a point's per-point fields (the metric's fields are set by [`metric`]).
fn reset_point(p: &mut Point<'_>) {
    p.start_time_unix_nano = 0;
    p.time_unix_nano = 0;
    p.number = Number::None;
    p.count = 0;
    p.sum = None;
    p.min = None;
    p.max = None;
    p.bucket_counts.clear();
    p.explicit_bounds.clear();
    p.flags = 0;
    p.attributes.clear();
}

fn number_point<'a>(buf: &'a [u8], p: &mut Point<'a>) -> Result<(), WireError> {
    const M: &str = "NumberDataPoint";
    let mut r = Reader::new(buf, M);
    while let Some((field, v)) = r.next_field()? {
        match field {
            2 => p.start_time_unix_nano = fixed64(v, M, 2)?,
            3 => p.time_unix_nano = fixed64(v, M, 3)?,
            4 => p.number = Number::Double(double(v, M, 4)?),
            6 => p.number = Number::Int(fixed64(v, M, 6)? as i64),
            7 => p.attributes.push(key_value(bytes(v, M, 7)?, 1)?),
            8 => p.flags = varint(v, M, 8)? as u32,
            _ => {}
        }
    }
    Ok(())
}

fn histogram_point<'a>(buf: &'a [u8], p: &mut Point<'a>) -> Result<(), WireError> {
    const M: &str = "HistogramDataPoint";
    let mut r = Reader::new(buf, M);
    while let Some((field, v)) = r.next_field()? {
        match field {
            2 => p.start_time_unix_nano = fixed64(v, M, 2)?,
            3 => p.time_unix_nano = fixed64(v, M, 3)?,
            4 => p.count = fixed64(v, M, 4)?,
            5 => p.sum = Some(double(v, M, 5)?),
            6 => repeated_fixed64(v, M, 6, |c| p.bucket_counts.push(c))?,
            7 => repeated_fixed64(v, M, 7, |b| p.explicit_bounds.push(f64::from_bits(b)))?,
            9 => p.attributes.push(key_value(bytes(v, M, 9)?, 1)?),
            10 => p.flags = varint(v, M, 10)? as u32,
            11 => p.min = Some(double(v, M, 11)?),
            12 => p.max = Some(double(v, M, 12)?),
            _ => {}
        }
    }
    Ok(())
}

/// An exponential histogram point: its count, sum, min and max (not its buckets).
fn exponential_point<'a>(buf: &'a [u8], p: &mut Point<'a>) -> Result<(), WireError> {
    const M: &str = "ExponentialHistogramDataPoint";
    let mut r = Reader::new(buf, M);
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => p.attributes.push(key_value(bytes(v, M, 1)?, 1)?),
            2 => p.start_time_unix_nano = fixed64(v, M, 2)?,
            3 => p.time_unix_nano = fixed64(v, M, 3)?,
            4 => p.count = fixed64(v, M, 4)?,
            5 => p.sum = Some(double(v, M, 5)?),
            10 => p.flags = varint(v, M, 10)? as u32,
            12 => p.min = Some(double(v, M, 12)?),
            13 => p.max = Some(double(v, M, 13)?),
            _ => {}
        }
    }
    Ok(())
}

/// A summary point: its count and sum (not its quantiles). `sum` is not optional in OTLP.
fn summary_point<'a>(buf: &'a [u8], p: &mut Point<'a>) -> Result<(), WireError> {
    const M: &str = "SummaryDataPoint";
    p.sum = Some(0.0);
    let mut r = Reader::new(buf, M);
    while let Some((field, v)) = r.next_field()? {
        match field {
            2 => p.start_time_unix_nano = fixed64(v, M, 2)?,
            3 => p.time_unix_nano = fixed64(v, M, 3)?,
            4 => p.count = fixed64(v, M, 4)?,
            5 => p.sum = Some(double(v, M, 5)?),
            7 => p.attributes.push(key_value(bytes(v, M, 7)?, 1)?),
            8 => p.flags = varint(v, M, 8)? as u32,
            _ => {}
        }
    }
    Ok(())
}

/// Visits the data points of one `Metric`; returns how many.
///
/// A metric's fields may come in any order, so its name and unit are read first, then the
/// temporality of its data, then the points. Its data is a oneof: as prost does, the last
/// variant sent wins, merged with the earlier occurrences of that variant since the last
/// different one.
fn metric<'a>(
    buf: &'a [u8],
    resource: &[Attr<'a>],
    p: &mut Point<'a>,
    visit: &mut impl VisitPoints<'a>,
) -> Result<u64, WireError> {
    p.metric = "";
    p.unit = "";
    let mut data: Option<u32> = None;
    let mut first = 0usize;
    let mut r = Reader::new(buf, "Metric");
    let mut i = 0usize;
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => p.metric = string(v, "Metric", 1)?,
            3 => p.unit = string(v, "Metric", 3)?,
            5 | 7 | 9 | 10 | 11 => {
                bytes(v, "Metric", field)?;
                if data != Some(field) {
                    data = Some(field);
                    first = i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let Some(data) = data else {
        return Ok(0);
    };
    let (kind, message) = match data {
        5 => (PointKind::Gauge, "Gauge"),
        7 => (PointKind::Sum, "Sum"),
        9 => (PointKind::Histogram, "Histogram"),
        10 => (PointKind::ExponentialHistogram, "ExponentialHistogram"),
        _ => (PointKind::Summary, "Summary"),
    };
    // The occurrences of the data field prost keeps.
    let each_data = |f: &mut dyn FnMut(&'a [u8]) -> Result<(), WireError>| -> Result<(), WireError> {
        let mut r = Reader::new(buf, "Metric");
        let mut i = 0usize;
        while let Some((field, v)) = r.next_field()? {
            if field == data && i >= first {
                f(bytes(v, "Metric", field)?)?;
            }
            i += 1;
        }
        Ok(())
    };
    let mut temporality = 0i32;
    let mut monotonic = false;
    if matches!(
        kind,
        PointKind::Sum | PointKind::Histogram | PointKind::ExponentialHistogram
    ) {
        each_data(&mut |d| {
            let mut r = Reader::new(d, message);
            while let Some((f, v)) = r.next_field()? {
                match f {
                    2 => temporality = varint(v, message, 2)? as i32,
                    3 if kind == PointKind::Sum => monotonic = varint(v, message, 3)? != 0,
                    _ => {}
                }
            }
            Ok(())
        })?;
    }
    p.kind = kind;
    p.temporality = Temporality::from_i32(i64::from(temporality));
    p.monotonic = monotonic;
    let mut count = 0;
    each_data(&mut |d| {
        each(d, message, 1, |dp| {
            reset_point(p);
            match kind {
                PointKind::Gauge | PointKind::Sum => number_point(dp, p)?,
                PointKind::Histogram => histogram_point(dp, p)?,
                PointKind::ExponentialHistogram => exponential_point(dp, p)?,
                PointKind::Summary => summary_point(dp, p)?,
            }
            visit.point(resource, p);
            count += 1;
            Ok(())
        })
    })?;
    Ok(count)
}

/// Decodes an `ExportMetricsServiceRequest` in one pass, calling `visit` for each data point;
/// returns the number of points. Validated as [`decode`] validates logs.
pub fn decode_metrics<'a>(buf: &'a [u8], visit: &mut impl VisitPoints<'a>) -> Result<u64, DecodeError> {
    let mut count = 0;
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut point = Point::default();
    each(buf, "ExportMetricsServiceRequest", 1, |rm| {
        resource_attributes(rm, "ResourceMetrics", &mut resource)?;
        each(rm, "ResourceMetrics", 2, |sm| {
            point.scope_name = scope_name(sm, "ScopeMetrics")?;
            each(sm, "ScopeMetrics", 2, |m| {
                count += metric(m, &resource, &mut point, visit)?;
                Ok(())
            })
        })
    })?;
    Ok(count)
}

fn span<'a>(buf: &'a [u8], s: &mut Span<'a>) -> Result<(), WireError> {
    const M: &str = "Span";
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
    let mut r = Reader::new(buf, M);
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => s.trace_id = id(v, M, 1)?,
            2 => s.span_id = id(v, M, 2)?,
            4 => s.parent_span_id = id(v, M, 4)?,
            5 => s.name = string(v, M, 5)?,
            6 => s.kind = varint(v, M, 6)? as i32,
            7 => s.start_time_unix_nano = fixed64(v, M, 7)?,
            8 => s.end_time_unix_nano = fixed64(v, M, 8)?,
            9 => s.attributes.push(key_value(bytes(v, M, 9)?, 1)?),
            11 => {
                bytes(v, M, 11)?;
                s.events = s.events.saturating_add(1);
            }
            13 => {
                bytes(v, M, 13)?;
                s.links = s.links.saturating_add(1);
            }
            15 => {
                let mut st = Reader::new(bytes(v, M, 15)?, "Status");
                while let Some((f, v)) = st.next_field()? {
                    match f {
                        2 => s.status_message = string(v, "Status", 2)?,
                        3 => s.status_code = varint(v, "Status", 3)? as i32,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes an `ExportTraceServiceRequest` in one pass, calling `visit` for each span; returns
/// the number of spans. Validated as [`decode`] validates logs.
pub fn decode_traces<'a>(buf: &'a [u8], visit: &mut impl VisitSpans<'a>) -> Result<u64, DecodeError> {
    let mut count = 0;
    let mut resource: Vec<Attr<'a>> = Vec::new();
    let mut s = Span::default();
    each(buf, "ExportTraceServiceRequest", 1, |rs| {
        resource_attributes(rs, "ResourceSpans", &mut resource)?;
        each(rs, "ResourceSpans", 2, |ss| {
            s.scope_name = scope_name(ss, "ScopeSpans")?;
            each(ss, "ScopeSpans", 2, |sp| {
                span(sp, &mut s)?;
                visit.span(&resource, &s);
                count += 1;
                Ok(())
            })
        })
    })?;
    Ok(count)
}
