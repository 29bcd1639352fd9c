//! The shared corpus (`tests/fixtures/corpus`), for unit tests. Integration tests and benches
//! read it through `tests/common`.

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// The request bodies of one folder (`proto-none`, `json-gzip`, …) as sent, in file order.
pub fn bodies(folder: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.retain(|p| !p.to_string_lossy().ends_with(".headers"));
    paths.sort();
    paths.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// [`bodies`], with the `*-gzip` folders' bodies decompressed.
pub fn inflated(folder: &str) -> Vec<Vec<u8>> {
    let raw = bodies(folder);
    if !folder.ends_with("gzip") {
        return raw;
    }
    raw.iter()
        .map(|b| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut out).unwrap();
            out
        })
        .collect()
}

/// Where captured metrics and traces payloads live (`tests/fixtures/signals/<folder>`).
pub fn signals_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signals")
}

/// The request bodies of one signal fixture folder (`metrics-proto-delta`, `traces-json`, …)
/// with their paths, in file order, gzip bodies inflated; `None` when the folder is missing.
pub fn signal_bodies(folder: &str) -> Option<Vec<(PathBuf, Vec<u8>)>> {
    let mut paths: Vec<_> = std::fs::read_dir(signals_root().join(folder))
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".headers"))
        .collect();
    paths.sort();
    Some(
        paths
            .into_iter()
            .map(|p| {
                let raw = std::fs::read(&p).unwrap();
                let body = if raw.starts_with(&[0x1f, 0x8b]) {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
                    out
                } else {
                    raw
                };
                (p, body)
            })
            .collect(),
    )
}
