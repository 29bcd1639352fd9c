//! Bounded decompression: every byte inflated is charged to a [`Permit`] before it is
//! allocated, and nothing grows past the caller's limit, so a bomb costs its limit and no more.
//! The edge uses it to check a body before publishing; the consumer to decode it.

use std::borrow::Cow;
use std::io::Read;

use super::Compression;
use crate::budget::Permit;

/// Why a body could not be decompressed, grouped by what the caller does next: a corrupt or
/// oversized body is final, an exhausted budget is a reason to try again later.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("request body inflates past {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{encoding} body cannot be decompressed: {detail}")]
    Corrupt { encoding: &'static str, detail: String },
    #[error("the in-flight byte budget is spent")]
    Budget,
}

impl From<crate::budget::Exhausted> for CompressionError {
    fn from(_: crate::budget::Exhausted) -> Self {
        CompressionError::Budget
    }
}

const READ_CHUNK: usize = 64 * 1024;

/// Decompresses `raw` into at most `limit` bytes, charging every byte to `permit`.
pub fn decompress<'a>(
    compression: Compression,
    raw: &'a [u8],
    limit: usize,
    permit: &mut Permit,
) -> Result<Cow<'a, [u8]>, CompressionError> {
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

fn bad(compression: Compression, e: std::io::Error) -> CompressionError {
    let detail = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the stream is truncated".to_string(),
        _ => e.to_string(),
    };
    CompressionError::Corrupt {
        encoding: compression.as_str(),
        detail,
    }
}

fn inflate(
    mut reader: impl Read,
    compression: Compression,
    limit: usize,
    permit: &mut Permit,
) -> Result<Vec<u8>, CompressionError> {
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
            return Err(CompressionError::TooLarge { limit });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::otlp::validate::count_records;
    use crate::otlp::{ContentType, Signal};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{}]}]}]}"#;
        let budget = Budget::new(1 << 20, None);
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
        let budget = Budget::new(1 << 30, None);
        let bomb = gzip(&vec![0u8; 50 << 20]);
        let mut permit = budget.permit();
        let err = decompress(Compression::Gzip, &bomb, 1 << 20, &mut permit).unwrap_err();
        assert!(matches!(err, CompressionError::TooLarge { .. }), "{err:?}");
        assert!(
            permit.bytes() <= (1 << 20) * 2 + READ_CHUNK,
            "held {} bytes",
            permit.bytes()
        );
        let ok = gzip(b"hello world hello world");
        let err = decompress(Compression::Gzip, &ok[..ok.len() - 6], 1000, &mut budget.permit()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
