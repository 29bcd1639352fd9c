//! Decoding OTLP logs payloads into borrowed views, on a fast path and a reference path.
//!
//! - [`proto::decode`] reads the protobuf wire format in place ([`crate::wire::Reader`]):
//!   strings are slices of the payload.
//! - [`json::decode`] parses OTLP/JSON with simd-json's tape, which unescapes strings in place:
//!   strings are slices of the (mutable) payload.
//! - [`reference`] decodes into prost's owned `opentelemetry-proto` structs (serde_json for
//!   JSON) and presents them through the same views. Tests hold the fast paths to it, event by
//!   event; it is never used in production.
//!
//! The views are handed to a callback one record at a time, and the attribute buffers are reused
//! from record to record, so decoding allocates per payload, not per attribute. (Array and
//! key-value-list values, such as `workspace.host_paths`, allocate a small vector.)

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
}

/// Why a payload could not be decoded: it goes to the dead-letter topic with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("protobuf: {0}")]
    Protobuf(#[from] crate::wire::WireError),
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

impl<'a> Value<'a> {
    /// The value as text for the attribute arrays: strings as sent, numbers and booleans in
    /// their usual form, arrays and lists as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::Empty => String::new(),
            Value::Str(s) => (*s).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => d.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Bytes(b) => hex::encode(b),
            Value::Array(_) | Value::KvList(_) => self.to_json().to_string(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Empty => serde_json::Value::Null,
            Value::Str(s) => (*s).into(),
            Value::Int(i) => (*i).into(),
            Value::Double(d) => (*d).into(),
            Value::Bool(b) => (*b).into(),
            Value::Bytes(b) => hex::encode(b).into(),
            Value::Array(items) => items.iter().map(Value::to_json).collect(),
            Value::KvList(kvs) => kvs.iter().map(|a| (a.key.to_string(), a.value.to_json())).collect(),
        }
    }
}
