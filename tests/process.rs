//! The `cowork-ingest` binary as a separate process: the CLI, startup checks, and the edge's
//! peak memory under concurrent decompression bombs while Kafka is down.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
}

/// Peak resident set size of a process, from /proc (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    common::status_bytes(pid, "VmHWM")
}

#[test]
fn keys_commands_create_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let set = format!("edge.keys_path={}", keys.display());
    let out = bin()
        .args([
            "--set",
            &set,
            "keys",
            "create",
            "--tenant",
            "acme",
            "--role",
            "ingest",
            "--expires",
            "2099-01-01",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().to_string();
    assert!(token.starts_with("cwi_") && token.len() == 4 + 16 + 1 + 64, "{token}");
    let id = &token[4..20];

    let list = bin().args(["--set", &set, "keys", "list"]).output().unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains(id) && text.contains("acme") && text.contains("active") && text.contains("2099-01-01"),
        "{text}"
    );
    assert!(!text.contains(&token[21..]), "list never shows a secret");
    assert!(
        !std::fs::read_to_string(&keys).unwrap().contains(&token[21..]),
        "the key file never holds a secret"
    );

    assert!(bin()
        .args(["--set", &set, "keys", "revoke", id])
        .status()
        .unwrap()
        .success());
    let text = String::from_utf8(bin().args(["--set", &set, "keys", "list"]).output().unwrap().stdout).unwrap();
    assert!(text.contains("revoked"), "{text}");
    let missing = bin()
        .args(["--set", &set, "keys", "revoke", "0000000000000000"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no key with id"));

    let bad = bin()
        .args(["--set", &set, "keys", "create", "--tenant", "acme", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown role is refused");
}

#[test]
fn keys_create_attr_round_trips_through_keys_list_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let set = format!("edge.keys_path={}", keys.display());
    let create = |args: &[&str]| {
        bin()
            .args(["--set", &set, "keys", "create", "--role", "ingest"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = create(&[
        "--tenant",
        "acme",
        "--attr",
        "team=payments",
        "--attr",
        "cost_center=CC-1",
        "--attr",
        "q=a=b",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("attributes cost_center=CC-1,q=a=b,team=payments"),
        "{stderr}"
    );
    let attributed = String::from_utf8(out.stdout).unwrap().lines().last().unwrap()[4..20].to_string();
    let out = create(&["--tenant", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plain = String::from_utf8(out.stdout).unwrap().lines().last().unwrap()[4..20].to_string();

    let list = bin().args(["--set", &set, "keys", "list"]).output().unwrap();
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.lines().next().unwrap().ends_with("attributes"), "{text}");
    let line = |id: &str| text.lines().find(|l| l.starts_with(id)).unwrap().to_string();
    assert!(
        line(&attributed).ends_with("active   cost_center=CC-1,q=a=b,team=payments"),
        "{text}"
    );
    assert!(line(&plain).ends_with("active   -"), "{text}");
    assert!(std::fs::read_to_string(&keys).unwrap().contains("team = \"payments\""));

    // Each refusal names the argument and the rule, exits non-zero, and creates no key.
    let long = format!("team={}", "v".repeat(257));
    for (args, expected) in [
        (
            vec!["--tenant", "acme", "--attr", "team"],
            "invalid value 'team' for '--attr <NAME=VALUE>': expected NAME=VALUE, got \"team\"",
        ),
        (
            vec!["--tenant", "acme", "--attr", "te am=x"],
            "invalid value 'te am=x' for '--attr <NAME=VALUE>': the name must be 1-64 characters of [A-Za-z0-9._-], got \"te am\"",
        ),
        (
            vec!["--tenant", "acme", "--attr", &long],
            "for '--attr <NAME=VALUE>': the value must be at most 256 characters, got 257",
        ),
        (
            vec!["--tenant", "acme", "--attr", "team=a", "--attr", "team=b"],
            "attribute \"team=b\": team is given more than once",
        ),
        (
            vec!["--tenant", "ac me"],
            "tenant must be 1-64 characters of [A-Za-z0-9._-], got \"ac me\"",
        ),
        (
            vec!["--tenant", "acme'; DROP"],
            "tenant must be 1-64 characters of [A-Za-z0-9._-], got \"acme'; DROP\"",
        ),
    ] {
        let out = create(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} is refused");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: no key is printed");
    }
    let text = String::from_utf8(bin().args(["--set", &set, "keys", "list"]).output().unwrap().stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "only the two good keys exist: {text}");
}

#[test]
fn startup_fails_with_a_sentence_that_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    // Starts the edge with `config` and returns what it said on the way out.
    let refused = |config: &str| {
        std::fs::write(&file, config).unwrap();
        let out = bin()
            .args(["--config", file.to_str().unwrap(), "edge"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "the edge started with {config}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("[edge]\nmax_body_bytez = 10\n");
    assert!(err.contains("max_body_bytez"), "the unknown key is named: {err}");
    let err = refused("[edge]\nmax_body_bytes = 8388608\n[kafka.producer]\n\"message.max.bytes\" = \"1000000\"\n");
    assert!(
        err.contains("message.max.bytes") && err.contains("max_body_bytes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_concurrent_bombs_while_the_broker_is_down() {
    const MIB: u64 = 1 << 20;
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(&dir.path().join("keys.toml"));
    let (http, grpc, admin) = (common::free_port(), common::free_port(), common::free_port());
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "[edge]\nhttp_listen = \"127.0.0.1:{http}\"\ngrpc_listen = \"127.0.0.1:{grpc}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
             keys_path = \"{}\"\nmax_body_bytes = {}\nmax_decompressed_bytes = {}\nmax_inflight_bytes = {}\nkafka_probe_ms = 200\n\
             [kafka]\nbrokers = \"{brokers}\"\n",
            dir.path().join("keys.toml").display(),
            4 * MIB,
            16 * MIB,
            64 * MIB
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["--config", config.to_str().unwrap(), "edge"])
        .env("RUST_LOG", "error")
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_ready(format!("127.0.0.1:{admin}").parse().unwrap(), Duration::from_secs(30)).await;
    let baseline = peak_rss(pid);
    cluster.broker_down(1).unwrap();

    // 24 concurrent bombs of 256 MiB each (about 250 KiB compressed), three rounds. Unbounded,
    // each would hold 16 MiB before hitting the limit: 384 MiB at once.
    let bomb = bytes::Bytes::from(gzip(&vec![0u8; 256 << 20]));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let auth = format!("Bearer {}", keys.ingest);
    let started = Instant::now();
    let mut statuses = std::collections::HashMap::<u16, usize>::new();
    for _round in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..24 {
            let (client, auth, bomb) = (client.clone(), auth.clone(), bomb.clone());
            let url = format!("http://127.0.0.1:{http}/v1/logs");
            tasks.push(tokio::spawn(async move {
                let (ct, body) = if i % 6 == 5 {
                    (
                        "application/json",
                        bytes::Bytes::from(gzip(&json_logs("while-down", 10))),
                    )
                } else {
                    ("application/x-protobuf", bomb)
                };
                let r = client
                    .post(url)
                    .header("authorization", auth)
                    .header("content-type", ct)
                    .header("content-encoding", "gzip")
                    .body(body)
                    .send()
                    .await;
                r.map(|r| r.status().as_u16()).unwrap_or(0)
            }));
        }
        for t in tasks {
            *statuses.entry(t.await.unwrap()).or_default() += 1;
        }
    }
    let peak = peak_rss(pid);
    child.kill().unwrap();
    let _ = child.wait();
    eprintln!(
        "statuses {statuses:?}; baseline {} MiB, peak {} MiB, {:?}",
        baseline / MIB,
        peak / MIB,
        started.elapsed()
    );
    assert_eq!(statuses.get(&200), None, "nothing is acknowledged while Kafka is down");
    assert!(statuses.get(&413).copied().unwrap_or(0) > 0, "bombs get 413");
    assert!(
        statuses.keys().all(|s| *s == 413 || *s == 503),
        "only 413 and 503: {statuses:?}"
    );
    assert!(
        peak < baseline + 64 * MIB + 32 * MIB,
        "peak RSS {} MiB is not bounded by the 64 MiB in-flight budget (baseline {} MiB)",
        peak / MIB,
        baseline / MIB
    );
}

/// `topics check` reads the real broker's metadata: the dev cluster's topics exist (with the
/// warnings a single broker earns), and a topic the configuration names but Kafka lacks fails.
#[test]
fn topics_check_names_missing_topics_and_thin_replication() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let run = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["--set", &format!("kafka.brokers={brokers}")]);
        for e in extra {
            cmd.args(["--set", e]);
        }
        cmd.args(["topics", "check"])
            .env_remove("KAFKA_BROKERS")
            .output()
            .unwrap()
    };
    let ok = run(&[]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("cowork-otlp-logs (raw logs): 3 partition(s), replication 1"),
        "{text}"
    );
    assert!(text.contains("replication factor 1"), "{text}");
    let bad = run(&["kafka.traces_topic=no-such-topic"]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{text}");
    assert!(
        text.contains("PROBLEM  no-such-topic (raw traces)") && text.contains("does not exist"),
        "{text}"
    );
}
