//! The fuzz targets (fuzz/fuzz_targets), each run for about a minute: the protobuf and JSON
//! decoders for logs, metrics and traces against the reference decode, bounded decompression,
//! and the Kafka envelope reader.
//!
//! scripts/test builds them first (`cargo +nightly fuzz build`, AddressSanitizer and libFuzzer);
//! this test fails, saying so, when a target's binary is missing. Each run:
//! 1. replays `fuzz/regressions/<target>/`: every input a fuzzer ever found, kept so a fix stays
//!    fixed (`the_decoder_seeds_and_findings_agree` also replays the decoder ones, and every
//!    seed, in process and without nightly);
//! 2. seeds `fuzz/corpus/<target>/` from the captured payloads in tests/fixtures (the same
//!    directory `cargo fuzz run <target>` reads, so a long run starts where this one stopped);
//! 3. fuzzes for `COWORK_FUZZ_SECONDS` (60), with libFuzzer's seed `COWORK_FUZZ_SEED` (1; 0 for
//!    a random one), under libFuzzer's memory limits: at most
//!    [`RSS_LIMIT_MB`] resident and no single allocation over [`MALLOC_LIMIT_MB`], or the run
//!    fails. A finding is written to `fuzz/artifacts/<target>/` and named in the failure.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cowork_ingest::otlp::decode::compare;
use cowork_ingest::otlp::{ContentType, Signal};

/// Peak resident memory a target may reach, AddressSanitizer's shadow memory included.
const RSS_LIMIT_MB: u32 = 1024;
/// Largest single allocation a target may make.
const MALLOC_LIMIT_MB: u32 = 64;
/// Longest a single input may take.
const INPUT_TIMEOUT_S: u32 = 10;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary(target: &str) -> PathBuf {
    let dir = std::env::var_os("COWORK_FUZZ_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("fuzz/target/x86_64-unknown-linux-gnu/release"));
    let bin = dir.join(target);
    assert!(
        bin.is_file(),
        "fuzz target {target} is not built at {}: scripts/test builds the fuzz targets \
         (cargo +nightly fuzz build -O --debug-assertions)",
        bin.display()
    );
    bin
}

fn seconds() -> u64 {
    std::env::var("COWORK_FUZZ_SECONDS")
        .ok()
        .map(|s| s.parse().expect("COWORK_FUZZ_SECONDS is a number of seconds"))
        .unwrap_or(60)
}

/// libFuzzer's random seed: `COWORK_FUZZ_SEED`, 1 unless set, so that a CI run on a fresh clone
/// (seeds only) mutates the same way every time; 0 lets libFuzzer pick one (for discovery).
fn seed() -> u64 {
    std::env::var("COWORK_FUZZ_SEED")
        .ok()
        .map(|s| s.parse().expect("COWORK_FUZZ_SEED is a number"))
        .unwrap_or(1)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| !p.to_string_lossy().ends_with(".headers") && !p.to_string_lossy().ends_with(".md"));
    out.sort();
    out
}

fn inflate(raw: Vec<u8>) -> Vec<u8> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return raw;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The captured payloads of one signal and encoding, inflated.
fn payloads(signal: &str, encoding: &str) -> Vec<Vec<u8>> {
    let fixtures = root().join("tests/fixtures");
    let dirs: Vec<PathBuf> = match (signal, encoding) {
        ("logs", "proto") => vec!["corpus/proto-none", "corpus/proto-gzip", "events/proto"],
        ("logs", "json") => vec!["corpus/json-none", "corpus/json-gzip", "events/json"],
        ("metrics", "proto") => vec!["signals/metrics-proto-delta"],
        ("metrics", "json") => vec!["signals/metrics-json-cumulative"],
        ("traces", "proto") => vec!["signals/traces-proto"],
        ("traces", "json") => vec!["signals/traces-json"],
        other => panic!("no payloads for {other:?}"),
    }
    .into_iter()
    .map(|d| fixtures.join(d))
    .collect();
    let bodies: Vec<Vec<u8>> = dirs
        .iter()
        .flat_map(|d| files(d))
        .map(|p| inflate(std::fs::read(p).unwrap()))
        .collect();
    assert!(
        !bodies.is_empty(),
        "no {signal} {encoding} fixtures under {}",
        fixtures.display()
    );
    bodies
}

/// Seeds for the decompression target: `[encoding, limit in KiB - 1, body...]`.
fn decompress_seeds() -> Vec<Vec<u8>> {
    let mut bodies = payloads("logs", "proto");
    bodies.truncate(4);
    bodies.extend(payloads("logs", "json").into_iter().take(4));
    let mut out = Vec::new();
    for body in bodies {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&body).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&body).unwrap();
        let zstd = zstd::encode_all(&body[..], 3).unwrap();
        for (which, bytes) in [
            (0u8, body.clone()),
            (1, gz.finish().unwrap()),
            (2, zlib.finish().unwrap()),
            (2, raw.finish().unwrap()),
            (3, zstd),
        ] {
            // A limit above the body (255 KiB) and one below it, so both outcomes are seeded.
            for kib in [255u8, 0] {
                let mut seed = vec![which, kib];
                seed.extend_from_slice(&bytes);
                out.push(seed);
            }
        }
    }
    out
}

/// Seeds for the envelope target: the headers the edge writes, and some it never would.
fn envelope_seeds() -> Vec<Vec<u8>> {
    let full = "cowork-tenant: acme\ncowork-key-id: k1\ncowork-content-type: application/x-protobuf\n\
                cowork-content-encoding: gzip\ncowork-received-at-ms: 1795100000123\ncowork-request-id: r-1\n\
                cowork-signal: logs\ncowork-transport: http\ncowork-records: 7\n\
                cowork-key-attributes: {\"cost_center\":\"CC-1\",\"team\":\"payments\"}";
    [
        full.to_string(),
        format!(
            "@ts 1795100000999\n{}",
            full.replace("cowork-received-at-ms: 1795100000123\n", "")
        ),
        "cowork-tenant: t\ncowork-content-type: application/json\ncowork-signal: traces".to_string(),
        "cowork-tenant: t\ncowork-content-type: application/json\ncowork-content-encoding: zstd\n\
         cowork-key-attributes: {\"team\":1}"
            .to_string(),
        "cowork-tenant\ncowork-content-type: text/plain\ncowork-received-at-ms: 99999999999999".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "decompress" => decompress_seeds(),
        "envelope" => envelope_seeds(),
        _ => {
            let (encoding, signal) = target.split_once('_').expect("<encoding>_<signal>");
            payloads(signal, encoding)
        }
    }
}

/// Runs `cmd` to completion or for at most `limit`, returning its exit status and output tail.
fn run(mut cmd: Command, limit: Duration) -> (Option<i32>, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the fuzz target");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = std::fs::read_to_string(log.path()).unwrap_or_default();
    let lines: Vec<&str> = out.lines().collect();
    // The finding's own words (a panic's message), then the end of the run.
    let mut shown: Vec<&str> = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => lines[at..(at + 4).min(lines.len())].to_vec(),
        None => Vec::new(),
    };
    shown.extend(&lines[lines.len().saturating_sub(30)..]);
    (status, shown.join("\n"))
}

fn fuzz(target: &str) {
    let bin = binary(target);
    let limits = [
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"),
        format!("-timeout={INPUT_TIMEOUT_S}"),
    ];

    let regressions = files(&root().join("fuzz/regressions").join(target));
    if !regressions.is_empty() {
        let mut cmd = Command::new(&bin);
        cmd.args(&limits).args(&regressions);
        let (status, tail) = run(cmd, Duration::from_secs(120));
        assert_eq!(
            status,
            Some(0),
            "{target} fails on a kept regression input (fuzz/regressions/{target}):\n{tail}"
        );
    }

    let corpus = root().join("fuzz/corpus").join(target);
    let artifacts = root().join("fuzz/artifacts").join(target);
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::create_dir_all(&artifacts).unwrap();
    let seeds = seeds(target);
    let longest = seeds.iter().map(Vec::len).max().unwrap_or(0);
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{i:03}")), seed).unwrap();
    }

    let secs = seconds();
    let mut cmd = Command::new(&bin);
    cmd.args(&limits)
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-seed={}", seed()))
        // Inputs a little longer than the longest seed, so mutations can grow them.
        .arg(format!("-max_len={}", (longest + longest / 4).max(4096)))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&corpus);
    let (status, tail) = run(cmd, Duration::from_secs(secs + 120));
    match status {
        Some(0) => {
            let runs = tail
                .lines()
                .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
                .map(|n| n.trim().parse::<u64>().unwrap_or(0))
                .unwrap_or(0);
            assert!(runs > 0, "{target} ran no inputs:\n{tail}");
            eprintln!("{target}: {runs} inputs in {secs} s, no finding");
        }
        None => panic!("{target} did not finish within {} s:\n{tail}", secs + 120),
        Some(code) => panic!(
            "{target} found a failing input (exit {code}); it is in fuzz/artifacts/{target}/. Fix it, \
             then keep the input in fuzz/regressions/{target}/ (the_decoder_seeds_and_findings_agree \
             replays it too):\n{tail}"
        ),
    }
}

/// The decoder targets, with the signal and encoding each one decodes.
const DECODERS: [(&str, Signal, ContentType); 6] = [
    ("proto_logs", Signal::Logs, ContentType::Protobuf),
    ("proto_metrics", Signal::Metrics, ContentType::Protobuf),
    ("proto_traces", Signal::Traces, ContentType::Protobuf),
    ("json_logs", Signal::Logs, ContentType::Json),
    ("json_metrics", Signal::Metrics, ContentType::Json),
    ("json_traces", Signal::Traces, ContentType::Json),
];

/// In process, without nightly or a fuzz build: every decoder seed and every kept decoder
/// finding agrees between the fast path and the reference (what the targets check).
#[test]
fn the_decoder_seeds_and_findings_agree() {
    for (target, signal, content) in DECODERS {
        let findings = files(&root().join("fuzz/regressions").join(target));
        let inputs = seeds(target).into_iter().map(|s| ("a seed".to_string(), s)).chain(
            findings
                .iter()
                .map(|p| (p.display().to_string(), std::fs::read(p).unwrap())),
        );
        for (what, input) in inputs {
            compare::check(signal, content, &input).unwrap_or_else(|e| panic!("{target}, {what}: {e}"));
        }
    }
}

#[test]
fn proto_logs() {
    fuzz("proto_logs");
}

#[test]
fn proto_metrics() {
    fuzz("proto_metrics");
}

#[test]
fn proto_traces() {
    fuzz("proto_traces");
}

#[test]
fn json_logs() {
    fuzz("json_logs");
}

#[test]
fn json_metrics() {
    fuzz("json_metrics");
}

#[test]
fn json_traces() {
    fuzz("json_traces");
}

#[test]
fn decompress() {
    fuzz("decompress");
}

#[test]
fn envelope() {
    fuzz("envelope");
}
