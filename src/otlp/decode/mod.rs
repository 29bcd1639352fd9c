//! Decoding OTLP payloads (logs, metrics, traces) into borrowed views ([`Record`], [`Point`],
//! [`Span`]), on a fast path and a reference path.
//!
//! - [`proto::decode`] reads the protobuf wire format in place ([`crate::wire::Reader`]):
//!   strings are slices of the payload.
//! - [`json::decode`] parses OTLP/JSON with simd-json's tape, which unescapes strings in place:
//!   strings are slices of the (mutable) payload.
//! - [`reference`] decodes into prost's owned `opentelemetry-proto` structs (serde_json for
//!   JSON) and presents them through the same views. Tests hold the fast paths to it, event by
//!   event; it is never used in production.
//!
//! Both fast paths decode in one pass and can fail after some records were visited: callers
//! stage a payload's rows and keep them only when its decode succeeded.
//!
//! The views are handed to a callback one record at a time, and the attribute buffers are reused
//! from record to record, so decoding allocates per payload, not per attribute. (Array and
//! key-value-list values, such as `workspace.host_paths`, allocate a small vector.)

pub mod compare;
pub mod json;
pub mod proto;
pub mod reference;

/// An attribute value as sent. Every shape is kept: normalization coerces.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Empty,
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    Bytes(&'a [u8]),
    Array(Vec<Value<'a>>),
    KvList(Vec<Attr<'a>>),
}

/// One key/value attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
}

/// One log record and the resource it came under.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Record<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub body: Option<Value<'a>>,
    /// The OTLP `eventName` field (OTLP 1.5+); empty when absent.
    pub event_name: &'a str,
    pub attributes: Vec<Attr<'a>>,
    /// The trace context the record was emitted in (OTLP `traceId`/`spanId`); empty when none.
    pub trace_id: Id<'a>,
    pub span_id: Id<'a>,
}

/// A trace or span id as sent: raw bytes (protobuf) or hex text (OTLP/JSON). Two ids are equal
/// when they name the same id, however each was sent.
#[derive(Debug, Clone, Copy, Eq, Default)]
pub enum Id<'a> {
    #[default]
    Empty,
    Raw(&'a [u8]),
    Hex(&'a str),
}

impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Id::Raw(a), Id::Raw(b)) => a == b,
            _ => self.to_hex() == other.to_hex(),
        }
    }
}

impl Id<'_> {
    /// Lowercase hex into `out` (empty for an empty id; hex text is lowercased as it is copied).
    pub fn write_hex(&self, out: &mut String) {
        match self {
            Id::Empty => {}
            Id::Raw(b) => push_hex(out, b),
            Id::Hex(s) => out.extend(s.chars().map(|c| c.to_ascii_lowercase())),
        }
    }

    pub fn to_hex(&self) -> String {
        let mut out = String::new();
        self.write_hex(&mut out);
        out
    }
}

/// What kind of metric a data point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PointKind {
    #[default]
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

impl PointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::Gauge => "gauge",
            PointKind::Sum => "sum",
            PointKind::Histogram => "histogram",
            PointKind::ExponentialHistogram => "exponential_histogram",
            PointKind::Summary => "summary",
        }
    }
}

/// OTLP's `AggregationTemporality`, as sent (`Unspecified` for gauges and summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    #[default]
    Unspecified,
    Delta,
    Cumulative,
}

impl Temporality {
    /// From the wire's enum number; unknown numbers are `Unspecified`.
    pub fn from_i32(n: i64) -> Temporality {
        match n {
            1 => Temporality::Delta,
            2 => Temporality::Cumulative,
            _ => Temporality::Unspecified,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Unspecified => "unspecified",
            Temporality::Delta => "delta",
            Temporality::Cumulative => "cumulative",
        }
    }
}

/// A number data point's value: `asDouble` or `asInt`, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Number {
    #[default]
    None,
    Double(f64),
    Int(i64),
}

/// One metric data point, with its metric's fields. Histograms and summaries carry their
/// count and sum (and a histogram its buckets); number points carry `number`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Point<'a> {
    pub scope_name: &'a str,
    pub metric: &'a str,
    pub unit: &'a str,
    pub kind: PointKind,
    pub temporality: Temporality,
    pub monotonic: bool,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub number: Number,
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub flags: u32,
    pub attributes: Vec<Attr<'a>>,
}

/// One span.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Span<'a> {
    pub scope_name: &'a str,
    pub trace_id: Id<'a>,
    pub span_id: Id<'a>,
    pub parent_span_id: Id<'a>,
    pub name: &'a str,
    /// OTLP `SpanKind` as sent (1 = internal).
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<Attr<'a>>,
    /// OTLP `Status.code` as sent: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: &'a str,
    /// How many span events and links it carried (their contents are not kept).
    pub events: u32,
    pub links: u32,
}

/// Why a payload could not be decoded: it goes to the dead-letter topic with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("protobuf: {0}")]
    Protobuf(#[from] crate::otlp::wire::WireError),
    #[error("json: {0}")]
    Json(String),
}

/// Receives each record with its resource's attributes.
pub trait Visit<'a> {
    fn record(&mut self, resource: &[Attr<'a>], record: &Record<'a>);
}

impl<'a, F: FnMut(&[Attr<'a>], &Record<'a>)> Visit<'a> for F {
    fn record(&mut self, resource: &[Attr<'a>], record: &Record<'a>) {
        self(resource, record)
    }
}

/// Receives each metric data point with its resource's attributes.
pub trait VisitPoints<'a> {
    fn point(&mut self, resource: &[Attr<'a>], point: &Point<'a>);
}

impl<'a, F: FnMut(&[Attr<'a>], &Point<'a>)> VisitPoints<'a> for F {
    fn point(&mut self, resource: &[Attr<'a>], point: &Point<'a>) {
        self(resource, point)
    }
}

/// Receives each span with its resource's attributes.
pub trait VisitSpans<'a> {
    fn span(&mut self, resource: &[Attr<'a>], span: &Span<'a>);
}

impl<'a, F: FnMut(&[Attr<'a>], &Span<'a>)> VisitSpans<'a> for F {
    fn span(&mut self, resource: &[Attr<'a>], span: &Span<'a>) {
        self(resource, span)
    }
}

impl<'a> Value<'a> {
    /// The value as text for the attribute arrays: strings as sent, numbers and booleans in
    /// their usual form, bytes as hex, arrays and lists as JSON.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    /// [`Value::to_text`] into `out`, without allocating beyond `out`'s growth.
    pub fn write_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Value::Empty => {}
            Value::Str(s) => out.push_str(s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Double(d) => {
                let _ = write!(out, "{d}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Bytes(b) => push_hex(out, b),
            Value::Array(_) | Value::KvList(_) => self.write_json(out),
        }
    }

    /// JSON as serde_json writes it (keys of a list in the order sent).
    fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Value::Empty => out.push_str("null"),
            Value::Str(s) => push_json_string(out, s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Double(d) => match serde_json::Number::from_f64(*d) {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push_str("null"),
            },
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Bytes(b) => {
                out.push('"');
                push_hex(out, b);
                out.push('"');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::KvList(kvs) => {
                out.push('{');
                for (i, a) in kvs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(out, a.key);
                    out.push(':');
                    a.value.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn push_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metrics and traces (`include!`d: a `#[path]` inside this inline module would resolve
    /// under a `tests/` folder).
    mod signals {
        include!("tests_signals.rs");
    }

    #[test]
    fn arrays_and_lists_render_as_serde_json_does() {
        let paths = ["/Users/ana/repo", "C:\\work \"x\"", "tab\there", "\u{1}"];
        let v = Value::Array(paths.iter().map(|p| Value::Str(p)).collect());
        assert_eq!(v.to_text(), serde_json::to_string(&paths).unwrap());
        let v = Value::Array(vec![
            Value::Double(1.0),
            Value::Double(0.25),
            Value::Int(-3),
            Value::Bool(false),
            Value::Empty,
        ]);
        assert_eq!(v.to_text(), serde_json::json!([1.0, 0.25, -3, false, null]).to_string());
        let v = Value::KvList(vec![Attr {
            key: "k",
            value: Value::Str("v"),
        }]);
        assert_eq!(v.to_text(), r#"{"k":"v"}"#);
    }

    type Owned = Vec<(Vec<Attr<'static>>, Record<'static>)>;

    /// Collects records with their strings leaked, so that views from different decoders can
    /// be compared after their buffers are gone.
    fn collect<'a>(out: &mut Owned) -> impl FnMut(&[Attr<'a>], &Record<'a>) + '_ {
        fn leak(v: &Value<'_>) -> Value<'static> {
            match v {
                Value::Empty => Value::Empty,
                Value::Str(s) => Value::Str(Box::leak(s.to_string().into_boxed_str())),
                Value::Int(i) => Value::Int(*i),
                Value::Double(d) => Value::Double(*d),
                Value::Bool(b) => Value::Bool(*b),
                Value::Bytes(b) => Value::Bytes(Box::leak(b.to_vec().into_boxed_slice())),
                Value::Array(items) => Value::Array(items.iter().map(leak).collect()),
                Value::KvList(kvs) => Value::KvList(kvs.iter().map(leak_attr).collect()),
            }
        }
        fn leak_attr(a: &Attr<'_>) -> Attr<'static> {
            Attr {
                key: Box::leak(a.key.to_string().into_boxed_str()),
                value: leak(&a.value),
            }
        }
        fn leak_id(id: Id<'_>) -> Id<'static> {
            match id {
                Id::Empty => Id::Empty,
                Id::Raw(b) => Id::Raw(Box::leak(b.to_vec().into_boxed_slice())),
                Id::Hex(h) => Id::Hex(Box::leak(h.to_string().into_boxed_str())),
            }
        }
        move |resource: &[Attr<'a>], r: &Record<'a>| {
            out.push((
                resource.iter().map(leak_attr).collect(),
                Record {
                    time_unix_nano: r.time_unix_nano,
                    observed_time_unix_nano: r.observed_time_unix_nano,
                    body: r.body.as_ref().map(leak),
                    event_name: Box::leak(r.event_name.to_string().into_boxed_str()),
                    attributes: r.attributes.iter().map(leak_attr).collect(),
                    trace_id: leak_id(r.trace_id),
                    span_id: leak_id(r.span_id),
                },
            ))
        }
    }

    use crate::fixtures::bodies as corpus;

    #[test]
    fn fast_paths_agree_with_the_reference_decode_on_every_corpus_event() {
        let mut total = 0;
        for body in corpus("proto-none") {
            let (mut fast, mut slow) = (Owned::new(), Owned::new());
            let n = proto::decode(&body, &mut collect(&mut fast)).unwrap();
            let req = reference::decode_protobuf(&body).unwrap();
            reference::visit(&req, &mut collect(&mut slow));
            assert_eq!(n as usize, fast.len());
            assert_eq!(fast, slow);
            total += n;
        }
        for body in corpus("json-none") {
            let (mut fast, mut slow) = (Owned::new(), Owned::new());
            let mut buf = body.clone();
            let n = json::decode(&mut buf, &mut collect(&mut fast)).unwrap();
            let req = reference::decode_json(&body).unwrap();
            reference::visit(&req, &mut collect(&mut slow));
            assert_eq!(fast, slow);
            total += n;
        }
        assert_eq!(total, 2 * 1232, "every corpus event, in both encodings");
    }

    #[test]
    fn json_accepts_int64_as_string_or_number_integral_doubles_and_escaped_strings() {
        let mut body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cowork"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":1795000002103000000,"observedTimeUnixNano":"1795000002103000000",
            "body":{"stringValue":"claude_code.api_request"},"attributes":[
              {"key":"a","value":{"intValue":"42"}},{"key":"b","value":{"intValue":42}},
              {"key":"c","value":{"doubleValue":0.5}},{"key":"d","value":{"boolValue":true}},
              {"key":"c2","value":{"doubleValue":5}},
              {"key":"e","value":{"stringValue":"caf\u00e9 \"q\""}},
              {"key":"f","value":{"arrayValue":{"values":[{"stringValue":"/a"},{"stringValue":"/b"}]}}}]}]}]}]}"#
            .to_vec();
        let mut got = Owned::new();
        assert_eq!(json::decode(&mut body, &mut collect(&mut got)).unwrap(), 1);
        let (resource, r) = &got[0];
        assert_eq!(resource[0].value, Value::Str("cowork"));
        assert_eq!(r.time_unix_nano, 1_795_000_002_103_000_000);
        assert_eq!(r.observed_time_unix_nano, r.time_unix_nano);
        let values: Vec<_> = r.attributes.iter().map(|a| a.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                Value::Int(42),
                Value::Int(42),
                Value::Double(0.5),
                Value::Bool(true),
                Value::Double(5.0),
                Value::Str("café \"q\""),
                Value::Array(vec![Value::Str("/a"), Value::Str("/b")]),
            ]
        );
    }

    #[test]
    fn broken_payloads_are_refused() {
        let mut seen = 0;
        let mut count = |_: &[Attr<'_>], _: &Record<'_>| seen += 1;
        assert!(proto::decode(b"\x0a\x05\x12", &mut count).is_err());
        for bad in [
            &b"[]"[..],
            b"{\"resourceLogs\": 3}",
            b"{\"resourceLogs\": [{\"scopeLogs\": [{\"logRecords\": [1]}]}]}",
            b"{",
        ] {
            assert!(
                json::decode(&mut bad.to_vec(), &mut count).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(seen, 0);
    }
}
