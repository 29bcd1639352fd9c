//! Checking a body before it is published: decompress it within limits, and make sure it is
//! the OTLP export request its route promises. The bytes published are always the original
//! ones; the decompressed copy only exists for this check and is dropped right after.

use std::borrow::Cow;
use std::io::Read;

use prost::Message;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::failure::{Failure, Reject};
use super::limits::Permit;
use crate::envelope::{Compression, ContentType, Signal};

const READ_CHUNK: usize = 64 * 1024;

/// Decompresses `raw` into at most `limit` bytes, charging every byte to `permit`.
pub fn decompress<'a>(
    compression: Compression,
    raw: &'a [u8],
    limit: usize,
    permit: &mut Permit,
) -> Result<Cow<'a, [u8]>, Failure> {
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::Identity => return Ok(Cow::Borrowed(raw)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        // RFC 9110 `deflate` is zlib-wrapped, but some clients send raw deflate: look at the header.
        Compression::Deflate if looks_like_zlib(raw) => Box::new(flate2::read::ZlibDecoder::new(raw)),
        Compression::Deflate => Box::new(flate2::read::DeflateDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| bad(compression, e))?),
    };
    inflate(reader, compression, limit, permit).map(Cow::Owned)
}

fn looks_like_zlib(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] & 0x0f == 8 && (u16::from(raw[0]) << 8 | u16::from(raw[1])) % 31 == 0
}

fn bad(compression: Compression, e: std::io::Error) -> Failure {
    let detail = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the stream is truncated".to_string(),
        _ => e.to_string(),
    };
    Reject::BadCompression { encoding: compression.as_str(), detail }.into()
}

fn inflate(mut reader: impl Read, compression: Compression, limit: usize, permit: &mut Permit) -> Result<Vec<u8>, Failure> {
    let mut chunk = vec![0u8; READ_CHUNK];
    permit.grow(READ_CHUNK)?;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(compression, e)),
        };
        if out.len() + n > limit {
            return Err(Reject::DecompressedTooLarge { limit }.into());
        }
        if out.len() + n > out.capacity() {
            // Grow geometrically, never past the limit, and charge the budget before allocating.
            let cap = (out.capacity() * 2).max(out.len() + n).max(READ_CHUNK).min(limit);
            permit.grow(cap - out.capacity())?;
            out.reserve_exact(cap - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Checks that `body` is a valid export request for `signal` and counts its log records
/// (metrics, spans). A count of 0 means there is nothing to publish.
pub fn count_records(signal: Signal, content_type: ContentType, body: &[u8]) -> Result<u64, Reject> {
    match content_type {
        ContentType::Protobuf => count_protobuf(signal, body),
        ContentType::Json => count_json(signal, body),
    }
}

fn count_protobuf(signal: Signal, body: &[u8]) -> Result<u64, Reject> {
    use opentelemetry_proto::tonic::collector::{metrics, trace};
    let invalid = |what: &str, e: prost::DecodeError| Reject::InvalidPayload(format!("body is not a valid protobuf {what}: {e}"));
    Ok(match signal {
        // Logs are the volume signal: validated by the borrowed wire walker, no copies.
        Signal::Logs => crate::wire::check_logs_request(body)
            .map_err(|e| Reject::InvalidPayload(format!("body is not a valid protobuf ExportLogsServiceRequest: {e}")))?,
        Signal::Metrics => metrics::v1::ExportMetricsServiceRequest::decode(body)
            .map_err(|e| invalid("ExportMetricsServiceRequest", e))?
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .map(|s| s.metrics.len() as u64)
            .sum(),
        Signal::Traces => trace::v1::ExportTraceServiceRequest::decode(body)
            .map_err(|e| invalid("ExportTraceServiceRequest", e))?
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum(),
    })
}

// OTLP/JSON shapes, down to the level of records. Records themselves are skipped without
// allocating (`IgnoredAny`): the consumer decodes them, and dead-letters what it cannot.
// The proto field names are accepted too, as protobuf's JSON mapping requires.
#[derive(Deserialize)]
struct JsonLogs {
    #[serde(default, rename = "resourceLogs", alias = "resource_logs")]
    resources: Vec<JsonResourceLogs>,
}
#[derive(Deserialize)]
struct JsonResourceLogs {
    #[serde(default, rename = "scopeLogs", alias = "scope_logs")]
    scopes: Vec<JsonScopeLogs>,
}
#[derive(Deserialize)]
struct JsonScopeLogs {
    #[serde(default, rename = "logRecords", alias = "log_records")]
    records: Vec<IgnoredAny>,
}
#[derive(Deserialize)]
struct JsonMetrics {
    #[serde(default, rename = "resourceMetrics", alias = "resource_metrics")]
    resources: Vec<JsonResourceMetrics>,
}
#[derive(Deserialize)]
struct JsonResourceMetrics {
    #[serde(default, rename = "scopeMetrics", alias = "scope_metrics")]
    scopes: Vec<JsonScopeMetrics>,
}
#[derive(Deserialize)]
struct JsonScopeMetrics {
    #[serde(default)]
    metrics: Vec<IgnoredAny>,
}
#[derive(Deserialize)]
struct JsonTraces {
    #[serde(default, rename = "resourceSpans", alias = "resource_spans")]
    resources: Vec<JsonResourceSpans>,
}
#[derive(Deserialize)]
struct JsonResourceSpans {
    #[serde(default, rename = "scopeSpans", alias = "scope_spans")]
    scopes: Vec<JsonScopeSpans>,
}
#[derive(Deserialize)]
struct JsonScopeSpans {
    #[serde(default)]
    spans: Vec<IgnoredAny>,
}

fn count_json(signal: Signal, body: &[u8]) -> Result<u64, Reject> {
    let invalid = |what: &str, e: serde_json::Error| Reject::InvalidPayload(format!("body is not a valid OTLP/JSON {what}: {e}"));
    Ok(match signal {
        Signal::Logs => serde_json::from_slice::<JsonLogs>(body)
            .map_err(|e| invalid("ExportLogsServiceRequest", e))?
            .resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.records.len() as u64)
            .sum(),
        Signal::Metrics => serde_json::from_slice::<JsonMetrics>(body)
            .map_err(|e| invalid("ExportMetricsServiceRequest", e))?
            .resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.metrics.len() as u64)
            .sum(),
        Signal::Traces => serde_json::from_slice::<JsonTraces>(body)
            .map_err(|e| invalid("ExportTraceServiceRequest", e))?
            .resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.spans.len() as u64)
            .sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::limits::Budget;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{}]}]}]}"#;
        let budget = Budget::new(1 << 20, 1);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(data).unwrap();
        let cases = [
            (Compression::Gzip, gzip(data)),
            (Compression::Deflate, z.finish().unwrap()),
            (Compression::Deflate, d.finish().unwrap()),
            (Compression::Zstd, zstd::encode_all(&data[..], 3).unwrap()),
            (Compression::Identity, data.to_vec()),
        ];
        for (c, raw) in cases {
            let out = decompress(c, &raw, 1000, &mut budget.permit()).unwrap();
            assert_eq!(&*out, data, "{c:?}");
            assert_eq!(count_records(Signal::Logs, ContentType::Json, &out).unwrap(), 2);
        }
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn bombs_stop_at_the_limit_and_truncation_is_named() {
        let budget = Budget::new(1 << 30, 1);
        let bomb = gzip(&vec![0u8; 50 << 20]);
        let mut permit = budget.permit();
        let err = decompress(Compression::Gzip, &bomb, 1 << 20, &mut permit).unwrap_err();
        assert!(matches!(err, Failure::Reject(Reject::DecompressedTooLarge { .. })), "{err:?}");
        assert!(permit.bytes() <= (1 << 20) * 2 + READ_CHUNK, "held {} bytes", permit.bytes());
        let ok = gzip(b"hello world hello world");
        let err = decompress(Compression::Gzip, &ok[..ok.len() - 6], 1000, &mut budget.permit()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn invalid_payloads_say_what_is_wrong() {
        let err = count_records(Signal::Logs, ContentType::Json, b"{\"resourceLogs\": 5}").unwrap_err();
        assert!(err.to_string().contains("expected a sequence"), "{err}");
        let err = count_records(Signal::Logs, ContentType::Protobuf, b"\xff\xff\xff").unwrap_err();
        assert!(err.to_string().contains("ExportLogsServiceRequest"), "{err}");
        assert_eq!(count_records(Signal::Logs, ContentType::Protobuf, b"").unwrap(), 0);
        assert_eq!(count_records(Signal::Traces, ContentType::Json, b"{}").unwrap(), 0);
    }
}
