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
