//! Bounded decompression: never a panic, never more than the limit, never more of the budget
//! than the limit and one read chunk, and whatever it inflates is what an unbounded decoder
//! inflates. The first byte picks the encoding, the second the limit (in KiB); the rest is
//! the body.
#![no_main]

use std::io::Read;

use cowork_ingest::budget::Budget;
use cowork_ingest::otlp::compression::{decompress, CompressionError};
use cowork_ingest::otlp::Compression;
use libfuzzer_sys::fuzz_target;

/// One read chunk, which the decoder takes from the budget before it inflates anything.
const CHUNK: usize = 64 * 1024;

fuzz_target!(|input: &[u8]| {
    let [which, kib, body @ ..] = input else {
        return;
    };
    let compression = match which % 4 {
        0 => Compression::Identity,
        1 => Compression::Gzip,
        2 => Compression::Deflate,
        _ => Compression::Zstd,
    };
    let limit = (usize::from(*kib) + 1) * 1024;
    let budget = Budget::new(limit + 2 * CHUNK, None);
    let mut permit = budget.permit();
    match decompress(compression, body, limit, &mut permit) {
        Ok(out) => {
            assert!(
                out.len() <= limit || compression == Compression::Identity,
                "{} bytes past a limit of {limit}",
                out.len()
            );
            assert!(budget.in_use() <= limit + 2 * CHUNK);
            if let Some(expected) = unbounded(compression, body, &out) {
                assert!(
                    out[..] == expected[..],
                    "{compression:?}: {} bytes inflated, an unbounded decoder gives {}",
                    out.len(),
                    expected.len()
                );
            }
        }
        Err(CompressionError::TooLarge { limit: l }) => assert_eq!(l, limit),
        Err(CompressionError::Corrupt { .. }) => {}
        Err(CompressionError::Budget) => panic!("the budget covers the limit, yet it was spent"),
    }
    drop(permit);
    assert_eq!(budget.in_use(), 0, "a dropped permit gives its bytes back");
});

/// What a plain decoder inflates from `body` (at most 1 MiB past what ours gave), when it can.
fn unbounded(compression: Compression, body: &[u8], ours: &[u8]) -> Option<Vec<u8>> {
    let cap = ours.len() as u64 + (1 << 20);
    let mut out = Vec::new();
    let done = match compression {
        Compression::Identity => return Some(body.to_vec()),
        Compression::Gzip => flate2::read::MultiGzDecoder::new(body).take(cap).read_to_end(&mut out),
        Compression::Zstd => zstd::stream::read::Decoder::new(body)
            .ok()?
            .take(cap)
            .read_to_end(&mut out),
        Compression::Deflate => {
            // zlib-wrapped or raw: whichever gives what ours gave.
            let mut zlib = Vec::new();
            if flate2::read::ZlibDecoder::new(body)
                .take(cap)
                .read_to_end(&mut zlib)
                .is_ok()
                && zlib == ours
            {
                return Some(zlib);
            }
            flate2::read::DeflateDecoder::new(body).take(cap).read_to_end(&mut out)
        }
    };
    done.ok().map(|_| out)
}
