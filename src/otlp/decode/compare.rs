//! Differential decoding: a fast path against the [`reference`], on the same bytes. The fuzz
//! targets (`fuzz/`) put every input through [`check`]; `tests/fuzz.rs` also runs it in process
//! on every seed and every kept finding (`fuzz/regressions/`), without nightly.
//!
//! Whenever the reference accepts a payload, the fast path must accept it too, count the same
//! records and present the same views in the same order. When the reference rejects it, the
//! fast path may accept or reject it (it skips fields it does not use unread), but must not
//! panic. The views are compared in a canonical text form that irons out the two differences
//! the paths are allowed: ids (the JSON fast path keeps the hex text, the reference decodes it)
//! and `bytesValue` (the JSON fast path keeps the base64 text). Two kinds of payload the
//! reference accepts are not compared, because its yes is wrong there: JSON that is not UTF-8
//! throughout, JSON with an array where a message belongs (serde reads a struct from a
//! sequence), and metrics JSON where serde dropped a flattened oneof it could not read. And the
//! reference reads JSON fields by their JSON names only, so it is given the payload with every
//! proto name respelled (see [`json_names`]). A protobuf logs payload also goes through the
//! edge's own check ([`validate`]), which must give the reference's verdict and count.

use std::fmt::Write as _;

use base64::Engine as _;

use super::{json, proto, reference, Attr, Id, Point, Record, Span, Value};
use crate::otlp::validate;
use crate::otlp::wire::WireError;
use crate::otlp::{ContentType, Signal};

/// How the fast path and the reference disagreed on one payload, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// Decodes `payload` both ways; an error says how the fast path strayed from the reference.
pub fn check(signal: Signal, content: ContentType, payload: &[u8]) -> Result<(), Mismatch> {
    let mut copy = payload.to_vec();
    // What the reference reads of a JSON payload (protobuf goes to it as it is).
    let respelled = match content {
        ContentType::Json => json_names(payload),
        ContentType::Protobuf => std::borrow::Cow::Borrowed(payload),
    };
    let json = &respelled[..];
    let (fast, slow) = match (signal, content) {
        (Signal::Logs, ContentType::Protobuf) => (
            lines(|out| proto::decode(payload, &mut |r: &[Attr<'_>], x: &Record<'_>| out.push(record(r, x)))),
            reference::decode_protobuf(payload).map(|req| {
                lines_of(|out| reference::visit(&req, &mut |r: &[Attr<'_>], x: &Record<'_>| out.push(record(r, x))))
            }),
        ),
        (Signal::Logs, ContentType::Json) => (
            lines(|out| json::decode(&mut copy, &mut |r: &[Attr<'_>], x: &Record<'_>| out.push(record(r, x)))),
            reference::decode_json(json).map(|req| {
                lines_of(|out| reference::visit(&req, &mut |r: &[Attr<'_>], x: &Record<'_>| out.push(record(r, x))))
            }),
        ),
        (Signal::Metrics, ContentType::Protobuf) => (
            lines(|out| proto::decode_metrics(payload, &mut |r: &[Attr<'_>], x: &Point<'_>| out.push(point(r, x)))),
            reference::decode_metrics_protobuf(payload).map(|req| {
                lines_of(|out| {
                    reference::visit_metrics(&req, &mut |r: &[Attr<'_>], x: &Point<'_>| out.push(point(r, x)))
                })
            }),
        ),
        (Signal::Metrics, ContentType::Json) => (
            lines(|out| json::decode_metrics(&mut copy, &mut |r: &[Attr<'_>], x: &Point<'_>| out.push(point(r, x)))),
            reference::decode_metrics_json(json)
                .and_then(strict_metrics)
                .map(|req| {
                    lines_of(|out| {
                        reference::visit_metrics(&req, &mut |r: &[Attr<'_>], x: &Point<'_>| out.push(point(r, x)))
                    })
                }),
        ),
        (Signal::Traces, ContentType::Protobuf) => (
            lines(|out| proto::decode_traces(payload, &mut |r: &[Attr<'_>], x: &Span<'_>| out.push(span(r, x)))),
            reference::decode_traces_protobuf(payload).map(|req| {
                lines_of(|out| reference::visit_traces(&req, &mut |r: &[Attr<'_>], x: &Span<'_>| out.push(span(r, x))))
            }),
        ),
        (Signal::Traces, ContentType::Json) => (
            lines(|out| json::decode_traces(&mut copy, &mut |r: &[Attr<'_>], x: &Span<'_>| out.push(span(r, x)))),
            reference::decode_traces_json(json).map(|req| {
                lines_of(|out| reference::visit_traces(&req, &mut |r: &[Attr<'_>], x: &Span<'_>| out.push(span(r, x))))
            }),
        ),
    };
    if (signal, content) == (Signal::Logs, ContentType::Protobuf) {
        edge_agrees(payload, slow.as_ref().ok().map(|(count, _)| *count))?;
    }
    let Ok((slow_count, slow)) = slow else {
        return Ok(());
    };
    // serde_json skips the strings of fields it does not read without checking their UTF-8;
    // the fast path (simd-json) refuses a document that is not UTF-8 anywhere, as RFC 8259
    // requires. The reference's yes is no verdict on such a payload.
    if content == ContentType::Json && simdutf8::basic::from_utf8(payload).is_err() {
        return Ok(());
    }
    // serde's derived messages also read a JSON array, field by field in declaration order
    // (`[]` is an empty request to it); proto3's JSON mapping has a message be an object, and the
    // fast path refuses anything else.
    if content == ContentType::Json && array_for_a_message(json) {
        return Ok(());
    }
    let (fast_count, fast) =
        fast.map_err(|e| Mismatch(format!("the reference accepts it, the fast path says: {e}")))?;
    if let Some(i) = (0..fast.len().max(slow.len())).find(|&i| fast.get(i) != slow.get(i)) {
        return Err(Mismatch(format!(
            "view {i} differs:\n  fast:      {:?}\n  reference: {:?}",
            fast.get(i),
            slow.get(i)
        )));
    }
    if fast_count != slow_count {
        return Err(Mismatch(format!(
            "the fast path counts {fast_count}, the reference {slow_count}"
        )));
    }
    Ok(())
}

/// The edge's check of a protobuf logs request ([`validate`]) against the reference's verdict
/// (`Some(records)` when it accepts the payload): the same yes or no, and the same count. The
/// one difference allowed is depth: the edge refuses nesting beyond
/// [`MAX_DEPTH`](crate::otlp::MAX_DEPTH), prost only beyond its own recursion limit (100).
fn edge_agrees(payload: &[u8], reference: Option<u64>) -> Result<(), Mismatch> {
    match (validate::check_logs_request(payload), reference) {
        (Ok(edge), Some(slow)) if edge == slow => Ok(()),
        (Ok(edge), Some(slow)) => Err(Mismatch(format!(
            "the edge's check counts {edge}, the reference {slow}"
        ))),
        (Ok(_), None) => Err(Mismatch("the edge's check accepts it, the reference refuses it".into())),
        (Err(WireError::TooDeep), Some(_)) | (Err(_), None) => Ok(()),
        (Err(e), Some(_)) => Err(Mismatch(format!(
            "the reference accepts it, the edge's check says: {e}"
        ))),
    }
}

/// The reference's metrics JSON decode, when it can be trusted: a metric's data and a number
/// point's value are flattened oneofs, and serde turns an error inside them into `None`, so a
/// metric without data, or a number point without a value, may be broken input the reference
/// let through (the fast path refuses it, naming the field). Such payloads are not compared.
fn strict_metrics(
    req: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
) -> Result<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest, super::DecodeError> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let metrics = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    let lax = metrics.clone().any(|m| m.data.is_none())
        || metrics
            .filter_map(|m| match &m.data {
                Some(Data::Gauge(g)) => Some(&g.data_points),
                Some(Data::Sum(s)) => Some(&s.data_points),
                _ => None,
            })
            .flatten()
            .any(|p| p.value.is_none());
    if lax {
        return Err(super::DecodeError::Json(
            "the reference dropped a oneof it could not read".into(),
        ));
    }
    Ok(req)
}

/// Proto3's JSON mapping has parsers read a field by its proto name (`time_unix_nano`) as well as
/// its JSON name (`timeUnixNano`). The fast path does; the reference (serde, camelCase only)
/// skips a proto name as an unknown field. So before the reference reads a JSON payload, every
/// object key that is a proto name (lowercase words joined by `_`, escapes decoded) is respelled
/// as its JSON name; everything else is left byte for byte. Not JSON is left as it is.
fn json_names(payload: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied) = (0, 0);
    while i < payload.len() {
        if payload[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < payload.len() && payload[i] != b'"' {
            i += if payload[i] == b'\\' { 2 } else { 1 };
        }
        if i >= payload.len() {
            break;
        }
        let end = i + 1;
        i = end;
        let after = payload[end..]
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if after != Some(&b':') {
            continue;
        }
        let Ok(name) = serde_json::from_slice::<String>(&payload[start..end]) else {
            continue;
        };
        let Some(camel) = json_name(&name) else { continue };
        let out = out.get_or_insert_with(|| Vec::with_capacity(payload.len()));
        out.extend_from_slice(&payload[copied..start]);
        out.push(b'"');
        out.extend_from_slice(camel.as_bytes());
        out.push(b'"');
        copied = end;
    }
    match out {
        None => std::borrow::Cow::Borrowed(payload),
        Some(mut out) => {
            out.extend_from_slice(&payload[copied..]);
            std::borrow::Cow::Owned(out)
        }
    }
}

/// Whether an array stands where OTLP JSON has a message: the request itself, an element of an
/// array (no OTLP array holds arrays), or the value of a field whose type is a message.
fn array_for_a_message(json: &[u8]) -> bool {
    use serde_json::Value as J;
    const MESSAGE_FIELDS: &[&str] = &[
        "resource",
        "scope",
        "body",
        "value",
        "arrayValue",
        "kvlistValue",
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
        "status",
        "positive",
        "negative",
    ];
    fn walk(v: &J) -> bool {
        match v {
            J::Array(items) => items.iter().any(|i| i.is_array() || walk(i)),
            J::Object(fields) => fields
                .iter()
                .any(|(k, v)| (v.is_array() && MESSAGE_FIELDS.contains(&k.as_str())) || walk(v)),
            _ => false,
        }
    }
    match serde_json::from_slice::<J>(json) {
        Ok(v) => v.is_array() || walk(&v),
        Err(_) => false,
    }
}

/// `time_unix_nano` → `timeUnixNano`; None for anything that is not lowercase words and `_`.
fn json_name(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split('_').collect();
    if words.len() < 2
        || words
            .iter()
            .any(|w| w.is_empty() || !w.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return None;
    }
    let mut camel = words[0].to_string();
    for w in &words[1..] {
        camel.push(w.as_bytes()[0].to_ascii_uppercase() as char);
        camel.push_str(&w[1..]);
    }
    Some(camel)
}

fn lines<E>(decode: impl FnOnce(&mut Vec<String>) -> Result<u64, E>) -> Result<(u64, Vec<String>), E> {
    let mut out = Vec::new();
    decode(&mut out).map(|count| (count, out))
}

fn lines_of(visit: impl FnOnce(&mut Vec<String>) -> u64) -> (u64, Vec<String>) {
    let mut out = Vec::new();
    let count = visit(&mut out);
    (count, out)
}

fn record(resource: &[Attr<'_>], r: &Record<'_>) -> String {
    let mut out = String::new();
    attrs(resource, &mut out);
    let _ = write!(
        out,
        " | {} {} {:?} trace {} span {} body ",
        r.time_unix_nano,
        r.observed_time_unix_nano,
        r.event_name,
        id(r.trace_id),
        id(r.span_id)
    );
    match &r.body {
        None => out.push_str("none"),
        Some(v) => value(v, &mut out),
    }
    out.push(' ');
    attrs(&r.attributes, &mut out);
    out
}

fn point(resource: &[Attr<'_>], p: &Point<'_>) -> String {
    let mut out = String::new();
    attrs(resource, &mut out);
    let _ = write!(
        out,
        " | {:?} {:?} {:?} {:?} {:?} {} {} {} {:?} {} {:?} {:?} {:?} {:?} {:?} {} ",
        p.scope_name,
        p.metric,
        p.unit,
        p.kind,
        p.temporality,
        p.monotonic,
        p.start_time_unix_nano,
        p.time_unix_nano,
        p.number,
        p.count,
        p.sum,
        p.min,
        p.max,
        p.bucket_counts,
        p.explicit_bounds,
        p.flags
    );
    attrs(&p.attributes, &mut out);
    out
}

fn span(resource: &[Attr<'_>], s: &Span<'_>) -> String {
    let mut out = String::new();
    attrs(resource, &mut out);
    let _ = write!(
        out,
        " | {:?} trace {} span {} parent {} {:?} {} {} {} status {} {:?} events {} links {} ",
        s.scope_name,
        id(s.trace_id),
        id(s.span_id),
        id(s.parent_span_id),
        s.name,
        s.kind,
        s.start_time_unix_nano,
        s.end_time_unix_nano,
        s.status_code,
        s.status_message,
        s.events,
        s.links
    );
    attrs(&s.attributes, &mut out);
    out
}

fn id(id: Id<'_>) -> String {
    id.to_hex()
}

fn attrs(attrs: &[Attr<'_>], out: &mut String) {
    out.push('{');
    for a in attrs {
        let _ = write!(out, "{:?}=", a.key);
        value(&a.value, out);
        out.push(',');
    }
    out.push('}');
}

fn value(v: &Value<'_>, out: &mut String) {
    let _ = match v {
        Value::Empty => write!(out, "empty"),
        // The JSON fast path keeps `bytesValue` as its base64 text: compare bytes as that text.
        Value::Str(s) => write!(out, "{s:?}"),
        Value::Bytes(b) => write!(out, "{:?}", base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Int(i) => write!(out, "int {i}"),
        Value::Double(d) => write!(out, "double {d:?}"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Array(items) => {
            out.push('[');
            for item in items {
                value(item, out);
                out.push(',');
            }
            write!(out, "]")
        }
        Value::KvList(kvs) => {
            attrs(kvs, out);
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proto names are respelled as keys only, escapes and all, and nothing else changes.
    #[test]
    fn proto_names_become_json_names_for_the_reference() {
        let input = br#"{"resource_logs":[{"log_records" :[{"body":{"string_value":"a_b"},"x\u005fy":1,"a_B":2}]}],"s":"\"k_v\":"}"#;
        let want =
            br#"{"resourceLogs":[{"logRecords" :[{"body":{"stringValue":"a_b"},"xY":1,"a_B":2}]}],"s":"\"k_v\":"}"#;
        assert_eq!(
            String::from_utf8_lossy(&json_names(input)),
            String::from_utf8_lossy(want)
        );
        let plain = br#"{"resourceLogs":[]}"#;
        assert!(matches!(json_names(plain), std::borrow::Cow::Borrowed(_)));
    }
}
