//! Checking a body before it is published: decompress it within limits, and make sure it is
//! the OTLP export request its route promises. The bytes published are always the original
//! ones; the decompressed copy only exists for this check and is dropped right after.

use std::borrow::Cow;
use std::io::Read;

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| bad(compression, e))?;
            // An 8 MiB window (what zstd -19 uses) caps the decoder's own buffer.
            d.window_log_max(23).map_err(|e| bad(compression, e))?;
            Box::new(d)
        }
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
    Reject::BadCompression {
        encoding: compression.as_str(),
        detail,
    }
    .into()
}

fn inflate(
    mut reader: impl Read,
    compression: Compression,
    limit: usize,
    permit: &mut Permit,
) -> Result<Vec<u8>, Failure> {
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
    // Nothing is copied: the walkers read the payload in place, so what a request costs in
    // memory is its bytes, whatever it holds.
    let (what, counted) = match signal {
        // Logs are the volume signal, validated field by field against the OTLP schema.
        Signal::Logs => ("ExportLogsServiceRequest", crate::wire::check_logs_request(body)),
        // Metrics and traces pass through to their own topics; their structure is checked down
        // to each metric or span.
        Signal::Metrics => (
            "ExportMetricsServiceRequest",
            crate::wire::count_path(body, &[1, 2, 2], "ExportMetricsServiceRequest"),
        ),
        Signal::Traces => (
            "ExportTraceServiceRequest",
            crate::wire::count_path(body, &[1, 2, 2], "ExportTraceServiceRequest"),
        ),
    };
    counted.map_err(|e| Reject::InvalidPayload(format!("body is not a valid protobuf {what}: {e}")))
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

fn count_json(signal: Signal, body: &[u8]) -> Result<u64, Reject> {
    let (what, path) = json_path(signal);
    let mut de = serde_json::Deserializer::from_slice(body);
    let count = CountIn(path)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|_| n))
        .map_err(|e| {
            Reject::InvalidPayload(format!(
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
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
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
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
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
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
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
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(self.0.contains(&key))
    }
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
        assert!(
            matches!(err, Failure::Reject(Reject::DecompressedTooLarge { .. })),
            "{err:?}"
        );
        assert!(
            permit.bytes() <= (1 << 20) * 2 + READ_CHUNK,
            "held {} bytes",
            permit.bytes()
        );
        let ok = gzip(b"hello world hello world");
        let err = decompress(Compression::Gzip, &ok[..ok.len() - 6], 1000, &mut budget.permit()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
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
