//! Operations files: the Prometheus config and alert rules (checked and unit-tested with
//! `promtool`), the docker-compose stack (validated with `docker-compose config`) and the
//! Dockerfile. Needs `promtool` (Debian package `prometheus`) and `docker-compose` (Debian package
//! `docker-compose`) in PATH; `scripts/test` installs both. No Docker engine is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs `program args` in the repository root. A missing program fails the test with a message
/// that says how to get it.
fn run(program: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).current_dir(root()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not in PATH: install the Debian package `{package}` \
             (scripts/test installs it: apt-get install -y {package})"
        ),
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// Runs the command and asserts it succeeded, showing everything it printed when it did not.
fn run_ok(program: &str, package: &str, args: &[&str]) -> String {
    let out = run(program, package, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

fn promtool(args: &[&str]) -> String {
    run_ok("promtool", "prometheus", args)
}

fn compose(args: &[&str]) -> String {
    let mut all = vec!["-f", "docker-compose.yml"];
    all.extend_from_slice(args);
    run_ok("docker-compose", "docker-compose", &all)
}

#[test]
fn prometheus_config_is_valid() {
    let out = promtool(&["check", "config", "prometheus/prometheus.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let config = read("prometheus/prometheus.yml");
    for needle in [
        "job_name: cowork-edge",
        "job_name: cowork-consumer",
        "\"edge:9464\"",
        "\"consumer:9465\"",
        "scrape_interval: 15s",
        "- alerts.yml",
    ] {
        assert!(config.contains(needle), "prometheus.yml lacks `{needle}`");
    }
}

#[test]
fn alert_rules_are_valid() {
    let out = promtool(&["check", "rules", "prometheus/alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let out = promtool(&["test", "rules", "prometheus/alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// `- alert: Name` lines of a rules file, in order.
fn alert_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn every_alert_has_for_severity_and_annotations_and_a_unit_test() {
    let rules = read("prometheus/alerts.yml");
    let names = alert_names(&rules);
    assert!(names.len() >= 11, "expected at least 11 alerts, found {names:?}");
    // Each rule's block: from its `- alert:` line to the next one.
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    for (name, block) in names.iter().zip(&blocks) {
        for key in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(block.contains(key), "alert {name} has no `{key}`");
        }
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .map(str::trim)
            .unwrap_or_default();
        assert!(
            severity == "critical" || severity == "warning",
            "alert {name}: severity `{severity}`"
        );
    }
    // Every alert is tested at least once firing and once silent.
    let tests = read("prometheus/alerts_test.yml");
    let mut firing: BTreeSet<&str> = BTreeSet::new();
    let mut silent: BTreeSet<&str> = BTreeSet::new();
    for case in tests.split("- eval_time:").skip(1) {
        let Some(name) = case.lines().find_map(|l| l.trim().strip_prefix("alertname:")) else {
            continue;
        };
        let name = names.iter().find(|n| n.as_str() == name.trim());
        let Some(name) = name else { continue };
        if case.contains("exp_alerts: []") {
            silent.insert(name);
        } else {
            firing.insert(name);
        }
    }
    for name in &names {
        assert!(firing.contains(name.as_str()), "no unit test makes {name} fire");
        assert!(silent.contains(name.as_str()), "no unit test keeps {name} silent");
    }
}

/// Names the rules refer to (`cowork_edge_*`, `cowork_consumer_*`, `cowork_budget_*`) must be
/// metrics the code emits.
#[test]
fn alerts_only_use_metrics_the_code_defines() {
    let metrics = read("src/telemetry/mod.rs");
    let defined: BTreeSet<String> = metrics
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": &str ="))
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect();
    assert!(defined.contains("cowork_edge_requests_total"), "{defined:?}");
    assert!(defined.contains("cowork_budget_spend_ratio"), "{defined:?}");
    for file in ["prometheus/alerts.yml", "prometheus/alerts_test.yml"] {
        let text = read(file);
        let used: BTreeSet<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| {
                ["cowork_edge_", "cowork_consumer_", "cowork_budget_"]
                    .iter()
                    .any(|p| w.starts_with(p))
            })
            .collect();
        assert!(!used.is_empty());
        for name in used {
            assert!(
                defined.contains(name),
                "{file} uses `{name}`, which src/telemetry/mod.rs does not define"
            );
        }
    }
}

/// A YAML mapping's layout as `docker-compose config` prints it (two-space indentation): for each
/// key under `section:`, the keys directly below it.
fn children(yaml: &str, section: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut inside = false;
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        // Blank lines, comments and list items (`- x`, at their key's indentation) hold no keys.
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            inside = line.trim_end() == format!("{section}:");
            current = None;
            continue;
        }
        if !inside {
            continue;
        }
        let key = line.trim().split(':').next().unwrap_or_default().to_string();
        if indent == 2 {
            out.entry(key.clone()).or_default();
            current = Some(key);
        } else if indent == 4 {
            if let Some(c) = &current {
                out.get_mut(c).expect("entry exists").insert(key);
            }
        }
    }
    out
}

/// One service's block of `docker-compose config` output: its header line and every line below
/// it indented deeper.
fn service_block(config: &str, service: &str) -> String {
    let header = format!("  {service}:");
    let mut lines = config.lines().skip_while(|l| *l != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no service {service} in:\n{config}"));
    let mut block = format!("{first}\n");
    for l in lines.take_while(|l| l.is_empty() || l.starts_with("    ")) {
        block.push_str(l);
        block.push('\n');
    }
    block
}

const LONG_RUNNING: &[&str] = &["kafka", "clickhouse", "prometheus", "grafana", "edge", "consumer"];

#[test]
fn compose_stack_is_valid_and_complete() {
    let config = compose(&["config"]);
    let services: BTreeSet<String> = compose(&["config", "--services"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    for s in LONG_RUNNING.iter().chain(&["migrate", "kafka-init"]) {
        assert!(services.contains(*s), "service {s} missing from {services:?}");
    }
    let volumes: BTreeSet<String> = compose(&["config", "--volumes"])
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    for v in [
        "kafka-data",
        "clickhouse-data",
        "prometheus-data",
        "grafana-data",
        "keys",
    ] {
        assert!(volumes.contains(v), "named volume {v} missing from {volumes:?}");
    }

    let layout = children(&config, "services");
    for s in LONG_RUNNING {
        let keys = &layout[*s];
        assert!(
            keys.contains("healthcheck"),
            "long-running service {s} has no healthcheck: {keys:?}"
        );
        assert!(
            keys.contains("restart"),
            "long-running service {s} has no restart policy"
        );
    }
    // The same check on the file as written, in case `config` ever drops a key.
    let raw = children(&read("docker-compose.yml"), "services");
    for s in LONG_RUNNING {
        assert!(
            raw[*s].contains("healthcheck"),
            "docker-compose.yml: {s} has no healthcheck"
        );
    }

    // Start order: topics before the edge and the consumer, migrations before the consumer.
    let edge = &service_block(&config, "edge");
    let consumer = &service_block(&config, "consumer");
    let migrate = &service_block(&config, "migrate");
    let init = &service_block(&config, "kafka-init");
    assert!(
        edge.contains("kafka-init:\n        condition: service_completed_successfully"),
        "{edge}"
    );
    assert!(
        consumer.contains("migrate:\n        condition: service_completed_successfully"),
        "{consumer}"
    );
    assert!(
        consumer.contains("kafka-init:\n        condition: service_completed_successfully"),
        "{consumer}"
    );
    assert!(
        migrate.contains("clickhouse:\n        condition: service_healthy"),
        "{migrate}"
    );
    assert!(init.contains("kafka:\n        condition: service_healthy"), "{init}");

    // The pipeline's own services run the image's subcommands with the settings the config
    // loader reads.
    for (block, subcommand) in [(edge, "edge"), (consumer, "consume"), (migrate, "migrate")] {
        assert!(block.contains(&format!("command:\n    - {subcommand}\n")), "{block}");
        for env in [
            "KAFKA_BROKERS: kafka:9092",
            "COWORK__CLICKHOUSE__URL: http://clickhouse:8123",
            "COWORK__EDGE__KEYS_PATH: /etc/cowork/keys.toml",
        ] {
            assert!(block.contains(env), "{subcommand}: no `{env}` in\n{block}");
        }
    }
    assert!(edge.contains("/readyz") && consumer.contains("/readyz"));
    assert!(
        edge.contains("target: /etc/cowork") || edge.contains(":/etc/cowork"),
        "{edge}"
    );
    for port in ["4318", "4317", "9464"] {
        assert!(edge.contains(port), "edge does not publish {port}:\n{edge}");
    }
    assert!(consumer.contains("9465"), "{consumer}");

    // Topics: the ones the configuration defaults to, logs with 12 partitions.
    for topic in [
        "cowork-otlp-logs:12",
        "cowork-otlp-logs-dlq",
        "cowork-otlp-metrics",
        "cowork-otlp-traces",
    ] {
        assert!(init.contains(topic), "kafka-init does not create {topic}:\n{init}");
    }

    // Prometheus scrapes the services by the names the stack gives them.
    let prometheus = &service_block(&config, "prometheus");
    assert!(prometheus.contains("/etc/prometheus"), "{prometheus}");
    let grafana = &service_block(&config, "grafana");
    for mount in [
        "/etc/grafana/provisioning",
        "/var/lib/grafana/dashboards",
        "grafana-clickhouse-datasource",
    ] {
        assert!(grafana.contains(mount), "grafana lacks {mount}:\n{grafana}");
    }
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_unprivileged() {
    let dockerfile = read("Dockerfile");
    for needle in [
        "FROM rust:1-bookworm AS builder",
        "cargo build --release --locked --bin cowork-ingest",
        "FROM debian:bookworm-slim",
        "libssl3",
        "ca-certificates",
        "curl",
        "USER cowork",
        "ENTRYPOINT [\"cowork-ingest\"]",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks `{needle}`");
    }
    // Everything the build copies from the context exists (sources: every word but the last).
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &words[..words.len() - 1] {
            assert!(
                root().join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
        }
    }
    let ignore = read(".dockerignore");
    for entry in ["target", ".dev", "node_modules", ".git"] {
        assert!(ignore.lines().any(|l| l.trim() == entry), ".dockerignore lacks {entry}");
    }
}
