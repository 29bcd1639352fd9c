//! A synthetic month for 1,000 developers in ClickHouse 18.16: the load through the project's own
//! row encoding, `rollups rebuild`, and every dashboard panel as Grafana sends it for 30 days,
//! each against the v1 form of the same panel on plain MergeTree copies of the same rows (no
//! deduplication: the engine's own limit for that aggregate), measured in the same run.
//!
//! ```text
//! cargo bench --bench month                              # 30 M events, private 18.16 server
//! cargo bench --bench month -- --events 300000           # a quick run
//! cargo bench --bench month -- --keep                    # keep target/bench-month/ch
//! cargo bench --bench month -- --skip-load               # re-time the kept data (after --keep)
//! cargo bench --bench month -- --url http://127.0.0.1:8123 [--db cowork]
//! ```
//!
//! Other options: `--days 30 --users 1000 --batch 300000 --runs 5 --settle 60 --sample 3000000
//! --no-chdb`. Results go to stdout (Markdown) and `target/bench-month/results.json`.
//!
//! The data: one tenant `acme`, users `dev0001@acme.example`..., November 2026 from day 1,
//! weekdays about seven times as busy as weekend days. Each session is Claude Code (70%) or Cowork
//! (30%, with workspace host paths); each prompt has a few model rounds (`api_request`), tools
//! between rounds (`tool_decision`, and `tool_result` unless rejected; ~5% rejects, ~3% failures),
//! background Haiku calls, and retried errors (`api_error`, ~1.5%). Every event is an OTLP
//! `Record` with the attributes Claude Code sends (as in the corpus), normalized and encoded by
//! `normalize` and `Rows::push`. About 1% of events are sent again in a later batch, as a client
//! resend would, so that the ReplacingMergeTree tables hold duplicates until they merge.

#[path = "../tests/common/grafana.rs"]
mod grafana;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cowork_ingest::clickhouse::rows::{Origin, Rows};
use cowork_ingest::clickhouse::schema::{self, Features, Target};
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::clickhouse::{ClickHouseConfig, Table};
use cowork_ingest::config::ContentPolicy;
use cowork_ingest::otlp::decode::{Attr, Record, Value};
use cowork_ingest::transform::attribution::Scope;
use cowork_ingest::transform::normalize::normalize;
use grafana::{Range, VarValue, Vars};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};

const TENANT: &str = "acme";
/// 2026-11-01T00:00:00Z.
const MONTH_START_S: i64 = 1_793_491_200;
const DAY_S: i64 = 86_400;
/// The baseline: the dashboards and rollup views as they were before schema v2.
const V1_COMMIT: &str = "1af70e9";

struct Args {
    url: Option<String>,
    db: String,
    events: u64,
    days: u32,
    users: u32,
    batch: usize,
    runs: usize,
    settle_s: u64,
    sample: u64,
    keep: bool,
    skip_load: bool,
    chdb: bool,
}

fn args() -> Args {
    let mut a = Args {
        url: None,
        db: "cowork".into(),
        events: 30_000_000,
        days: 30,
        users: 1000,
        batch: 300_000,
        runs: 5,
        settle_s: 60,
        sample: 3_000_000,
        keep: false,
        skip_load: false,
        chdb: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} takes a value"));
        match arg.as_str() {
            "--url" => a.url = Some(value("--url")),
            "--db" => a.db = value("--db"),
            "--events" => a.events = value("--events").replace('_', "").parse().expect("--events N"),
            "--days" => a.days = value("--days").parse().expect("--days N"),
            "--users" => a.users = value("--users").parse().expect("--users N"),
            "--batch" => a.batch = value("--batch").replace('_', "").parse().expect("--batch N"),
            "--runs" => a.runs = value("--runs").parse().expect("--runs N"),
            "--settle" => a.settle_s = value("--settle").parse().expect("--settle SECONDS"),
            "--sample" => a.sample = value("--sample").replace('_', "").parse().expect("--sample N"),
            "--keep" => a.keep = true,
            "--skip-load" => a.skip_load = true,
            "--no-chdb" => a.chdb = false,
            // cargo bench passes --bench to harness-less benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.days >= 1 && a.days <= 30, "--days is 1..=30 (November)");
    a
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn work_dir() -> PathBuf {
    root().join("target/bench-month")
}

// ------------------------------------------------------------------------------------------------
// A private ClickHouse server (as tests/common/clickhouse.rs starts one), on a data directory
// that --keep keeps.
// ------------------------------------------------------------------------------------------------

struct Server {
    url: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    fn start(dir: &Path) -> Server {
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (http, tcp) = (free_port(), free_port());
        let d = dir.display();
        std::fs::write(
            dir.join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>1073741824</mark_cache_size>
</yandex>
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>10000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#,
        )
        .unwrap();
        let mut cmd = Command::new("clickhouse-server");
        cmd.arg(format!("--config-file={}", dir.join("config.xml").display()))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the server dies with this process's main thread.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("clickhouse-server starts (scripts/test installs it)");
        let url = format!("http://127.0.0.1:{http}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = Command::new("curl")
                .args(["-fsS", "--max-time", "2", &format!("{url}/ping")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ClickHouse did not start: see {d}/log/error.log"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Server {
            url,
            child: Some(child),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill takes a pid and a signal number.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP queries.
// ------------------------------------------------------------------------------------------------

struct Http {
    client: reqwest::Client,
    url: String,
}

impl Http {
    async fn try_query(&self, sql: &str) -> Result<String, String> {
        let resp = self
            .client
            .post(&self.url)
            .body(sql.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    async fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .await
            .unwrap_or_else(|e| panic!("ClickHouse refused:\n{sql}\n{e}"))
    }

    async fn scalar(&self, sql: &str) -> String {
        self.query(sql).await.trim().to_string()
    }

    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.query(&format!("{sql} FORMAT TabSeparated"))
            .await
            .lines()
            .map(|l| l.split('\t').map(String::from).collect())
            .collect()
    }
}

// ------------------------------------------------------------------------------------------------
// Generation.
// ------------------------------------------------------------------------------------------------

/// An attribute value, owned (the records borrow from it).
#[derive(Clone)]
enum V {
    S(String),
    I(i64),
    D(f64),
    A(Vec<String>),
}

fn value(v: &V) -> Value<'_> {
    match v {
        V::S(s) => Value::Str(s),
        V::I(i) => Value::Int(*i),
        V::D(d) => Value::Double(*d),
        V::A(items) => Value::Array(items.iter().map(|s| Value::Str(s)).collect()),
    }
}

type Attrs = Vec<(&'static str, V)>;

/// One event as a client sends it, and the resource it came under.
#[derive(Clone)]
struct Ev {
    resource: Arc<Attrs>,
    time_ns: u64,
    body: &'static str,
    attrs: Attrs,
    /// Kafka coordinates of its first copy.
    partition: i32,
}

struct User {
    email: String,
    id: String,
    account_uuid: String,
    /// Hours east of UTC.
    tz: i64,
    /// Relative activity, mean about 1.
    activity: f64,
    /// The model of the user's main rounds, by habit.
    main: [f64; 3],
    os: (&'static str, &'static str),
    terminal: &'static str,
    version: &'static str,
    paths: Vec<String>,
}

const ORG: &str = "8899d818-977d-46aa-a246-692996dcc594";
const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
];
/// USD per million tokens: input, output, cache read, cache write.
const PRICES: [[f64; 4]; 3] = [
    [3.0, 15.0, 0.30, 3.75],
    [15.0, 75.0, 1.50, 18.75],
    [1.0, 5.0, 0.10, 1.25],
];
const TOOLS: [(&str, f64); 13] = [
    ("Read", 28.0),
    ("Bash", 22.0),
    ("Edit", 18.0),
    ("Grep", 10.0),
    ("Write", 6.0),
    ("Glob", 6.0),
    ("TodoWrite", 4.0),
    ("WebFetch", 2.0),
    ("Task", 1.0),
    ("mcp__github__create_pull_request", 1.0),
    ("mcp__github__get_issue", 1.0),
    ("mcp__linear__list_issues", 0.6),
    ("mcp__slack__post_message", 0.4),
];
const TERMINALS: [&str; 7] = [
    "vscode",
    "cursor",
    "iTerm.app",
    "tmux",
    "ghostty",
    "Apple_Terminal",
    "WarpTerminal",
];
const VERSIONS: [&str; 4] = ["2.1.240", "2.1.238", "2.1.231", "2.1.214"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn normal(rng: &mut StdRng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Log-normal with the given median and spread (sigma of the log).
fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// Poisson by inversion (small means).
fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    let l = (-mean).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `YYYY-MM-DD` of day `day` of the month (0 = 2026-11-01).
fn day_text(day: u32) -> String {
    cowork_ingest::clickhouse::rollups::day_text((MONTH_START_S / DAY_S) as u16 + day as u16)
}

fn rfc3339(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn users(n: u32, rng: &mut StdRng) -> Vec<User> {
    (1..=n)
        .map(|i| {
            let name = format!("dev{i:04}");
            let habit = rng.random::<f64>();
            let main = if habit < 0.6 {
                [0.85, 0.10, 0.05]
            } else if habit < 0.85 {
                [0.45, 0.50, 0.05]
            } else {
                [0.55, 0.05, 0.40]
            };
            let os = *pick(
                rng,
                &[
                    (("darwin", "25.1.0"), 62.0),
                    (("linux", "6.8.0"), 28.0),
                    (("windows", "10.0.26100"), 10.0),
                ],
            );
            let paths = vec![
                format!("/Users/{name}/Documents"),
                format!(
                    "/Users/{name}/code/{}",
                    pick(rng, &[("api", 3.0), ("web", 3.0), ("infra", 1.0), ("mobile", 1.0)])
                ),
                "/Volumes/Shared/Q4 Planning".to_string(),
            ];
            User {
                email: format!("{name}@acme.example"),
                id: hex::encode(rng.random::<[u8; 32]>()),
                account_uuid: uuid(rng),
                tz: *pick(rng, &[(-8, 35.0), (-5, 35.0), (1, 20.0), (5, 5.0), (9, 5.0)]),
                activity: lognormal(rng, 1.0, 0.6) / (0.18f64).exp(),
                main,
                os,
                terminal: TERMINALS[rng.random_range(0..TERMINALS.len())],
                version: VERSIONS[rng.random_range(0..VERSIONS.len())],
                paths,
            }
        })
        .collect()
}

/// Expected events per prompt of the shapes below (measured: it sizes the month to --events).
const EVENTS_PER_PROMPT: f64 = 10.6;

fn day_weight(day: u32) -> f64 {
    // 2026-11-01 is a Sunday.
    match day % 7 {
        0 | 6 => 0.15,
        _ => 1.0,
    }
}

/// One session's events, in order.
struct SessionGen<'u> {
    user: &'u User,
    resource: Arc<Attrs>,
    session_id: String,
    terminal: &'static str,
    cowork: bool,
    seq: i64,
    t_ns: u64,
    partition: i32,
}

impl SessionGen<'_> {
    fn common(&mut self, name: &'static str, prompt_id: &str) -> Attrs {
        let mut a: Attrs = vec![
            ("event.name", V::S(name.to_string())),
            ("event.timestamp", V::S(rfc3339(self.t_ns))),
            ("event.sequence", V::I(self.seq)),
            ("session.id", V::S(self.session_id.clone())),
            ("organization.id", V::S(ORG.to_string())),
            ("user.account_uuid", V::S(self.user.account_uuid.clone())),
            ("user.id", V::S(self.user.id.clone())),
            ("user.email", V::S(self.user.email.clone())),
            ("terminal.type", V::S(self.terminal.to_string())),
            ("app.version", V::S(self.user.version.to_string())),
            ("prompt.id", V::S(prompt_id.to_string())),
        ];
        if self.cowork {
            a.push(("workspace.host_paths", V::A(self.user.paths[..2].to_vec())));
        }
        self.seq += 1;
        a
    }

    fn emit(&mut self, out: &mut Vec<Ev>, body: &'static str, attrs: Attrs) {
        out.push(Ev {
            resource: self.resource.clone(),
            time_ns: self.t_ns,
            body,
            attrs,
            partition: self.partition,
        });
    }

    fn advance_ms(&mut self, ms: f64) {
        self.t_ns += (ms.max(1.0) * 1e6) as u64;
    }

    fn api_request(&mut self, rng: &mut StdRng, out: &mut Vec<Ev>, prompt_id: &str, model: usize, source: &str) {
        // Retried errors first: each failed attempt is an api_error.
        if rng.random::<f64>() < 0.022 {
            let attempts = 1 + poisson(rng, 0.5).min(4);
            let (status, error) = *pick(
                rng,
                &[
                    (("429", "Request failed with status 429"), 50.0),
                    (("529", "Overloaded"), 25.0),
                    (("500", "Internal server error"), 15.0),
                    (("undefined", "Connection error."), 10.0),
                ],
            );
            for attempt in 1..=attempts {
                let duration = lognormal(rng, 1500.0, 0.8);
                self.advance_ms(duration);
                let mut a = self.common("api_error", prompt_id);
                a.extend([
                    ("model", V::S(MODELS[model].to_string())),
                    ("error", V::S(error.to_string())),
                    ("status_code", V::S(status.to_string())),
                    ("attempt", V::S(attempt.to_string())),
                    ("duration_ms", V::S((duration as u64).to_string())),
                ]);
                self.emit(out, "claude_code.api_error", a);
                self.advance_ms(500.0 * f64::from(1 << attempt));
            }
        }
        let background = source != "repl_main_thread";
        let (input, output, cache_read, cache_creation) = if background {
            (
                lognormal(rng, 400.0, 0.8) as u64,
                lognormal(rng, 60.0, 0.7) as u64,
                0,
                0,
            )
        } else {
            (
                lognormal(rng, 8.0, 1.5) as u64,
                lognormal(rng, 350.0, 1.0) as u64,
                lognormal(rng, 45_000.0, 0.7) as u64,
                if rng.random::<f64>() < 0.4 {
                    lognormal(rng, 3_000.0, 1.2) as u64
                } else {
                    0
                },
            )
        };
        let p = PRICES[model];
        let cost =
            (input as f64 * p[0] + output as f64 * p[1] + cache_read as f64 * p[2] + cache_creation as f64 * p[3])
                / 1e6;
        // The JS client rounds nothing; the shortest text of the double is what it sends.
        let cost = (cost * 1e9).round() / 1e9;
        let duration = if background {
            lognormal(rng, 900.0, 0.5)
        } else {
            800.0 + output as f64 * 12.0 * lognormal(rng, 1.0, 0.3)
        };
        self.advance_ms(duration);
        let mut a = self.common("api_request", prompt_id);
        a.extend([
            ("model", V::S(MODELS[model].to_string())),
            ("cost_usd", V::D(cost)),
            ("input_tokens", V::I(input as i64)),
            ("output_tokens", V::I(output as i64)),
            ("cache_read_tokens", V::I(cache_read as i64)),
            ("cache_creation_tokens", V::I(cache_creation as i64)),
            ("duration_ms", V::I(duration as i64)),
            (
                "request_id",
                V::S(format!("req_011C{}", &hex::encode(rng.random::<[u8; 10]>()))),
            ),
            ("speed", V::S("normal".into())),
            ("query_source", V::S(source.to_string())),
        ]);
        self.emit(out, "claude_code.api_request", a);
    }

    fn tool(&mut self, rng: &mut StdRng, out: &mut Vec<Ev>, prompt_id: &str) {
        let tool = *pick(rng, &TOOLS);
        let mcp = tool.starts_with("mcp__");
        let tool_use_id = format!("toolu_{}", hex::encode(rng.random::<[u8; 12]>()));
        let reject = rng.random::<f64>() < 0.05;
        let (decision, source) = if reject {
            (
                "reject",
                *pick(rng, &[("user_reject", 80.0), ("config", 15.0), ("hook", 5.0)]),
            )
        } else {
            (
                "accept",
                *pick(
                    rng,
                    &[
                        ("config", 55.0),
                        ("user_temporary", 25.0),
                        ("user_permanent", 17.0),
                        ("hook", 3.0),
                    ],
                ),
            )
        };
        self.advance_ms(lognormal(rng, 150.0, 0.8));
        let mut a = self.common("tool_decision", prompt_id);
        a.extend([
            ("tool_name", V::S(tool.to_string())),
            ("tool_use_id", V::S(tool_use_id.clone())),
            ("decision", V::S(decision.to_string())),
            ("source", V::S(source.to_string())),
            ("tool_source", V::S(if mcp { "mcp" } else { "builtin" }.to_string())),
        ]);
        self.emit(out, "claude_code.tool_decision", a);
        if reject {
            return;
        }
        let duration = match tool {
            "Bash" => lognormal(rng, 2500.0, 1.3),
            "Task" => lognormal(rng, 60_000.0, 0.8),
            "WebFetch" => lognormal(rng, 3000.0, 0.7),
            t if t.starts_with("mcp__") => lognormal(rng, 1200.0, 0.8),
            _ => lognormal(rng, 40.0, 1.0),
        };
        self.advance_ms(duration);
        let success = rng.random::<f64>() >= 0.03;
        let mut a = self.common("tool_result", prompt_id);
        a.extend([
            ("tool_name", V::S(tool.to_string())),
            ("tool_use_id", V::S(tool_use_id)),
            ("success", V::S(success.to_string())),
            ("duration_ms", V::S((duration as u64).to_string())),
            ("decision_type", V::S(decision.to_string())),
            ("decision_source", V::S(source.to_string())),
            (
                "tool_input_size_bytes",
                V::S((lognormal(rng, 180.0, 1.0) as u64).to_string()),
            ),
            (
                "tool_result_size_bytes",
                V::S((lognormal(rng, 2500.0, 1.4) as u64).to_string()),
            ),
        ]);
        if !success {
            let (error_type, error) = *pick(
                rng,
                &[
                    (("ShellError", "Command failed with exit code 1"), 50.0),
                    (("Error:ENOENT", "File does not exist."), 25.0),
                    (("Error", "String to replace not found in file."), 20.0),
                    (("McpError", "MCP server returned an error"), 5.0),
                ],
            );
            a.push(("error_type", V::S(error_type.to_string())));
            a.push(("error", V::S(error.to_string())));
        }
        self.emit(out, "claude_code.tool_result", a);
    }

    fn prompt(&mut self, rng: &mut StdRng, out: &mut Vec<Ev>) {
        let prompt_id = uuid(rng);
        let mut a = self.common("user_prompt", &prompt_id);
        a.push((
            "prompt_length",
            V::S((lognormal(rng, 120.0, 1.0) as u64 + 1).to_string()),
        ));
        a.push(("prompt", V::S("<REDACTED>".into())));
        if rng.random::<f64>() < 0.04 {
            a.push((
                "command_name",
                V::S(pick(rng, &[("/compact", 2.0), ("/review", 1.0), ("custom", 1.0)]).to_string()),
            ));
        }
        self.emit(out, "claude_code.user_prompt", a);
        let u = self.user;
        let main = *pick(rng, &[(0usize, u.main[0]), (1, u.main[1]), (2, u.main[2])]);
        let rounds = 1 + poisson(rng, 3.0);
        for r in 0..rounds {
            if r == 0 && rng.random::<f64>() < 0.3 {
                self.api_request(rng, out, &prompt_id, 2, "generate_session_title");
            }
            self.api_request(rng, out, &prompt_id, main, "repl_main_thread");
            if r + 1 < rounds {
                for _ in 0..poisson(rng, 0.9) {
                    self.tool(rng, out, &prompt_id);
                }
            }
        }
    }
}

/// Every session of one user on one day, as events in time order.
fn user_day(rng: &mut StdRng, user: &User, day: u32, prompts_mean: f64, end_ns: u64, out: &mut Vec<Ev>) {
    let prompts = poisson_large(rng, prompts_mean * user.activity * day_weight(day));
    if prompts == 0 {
        return;
    }
    let sessions = (1 + poisson(rng, 1.2)).min(prompts);
    let day_start_s = MONTH_START_S + i64::from(day) * DAY_S;
    for s in 0..sessions {
        let share = prompts / sessions + u32::from(s < prompts % sessions);
        let cowork = rng.random::<f64>() < 0.3;
        let service = if cowork { "cowork" } else { "claude-code" };
        let resource: Attrs = vec![
            ("service.name", V::S(service.into())),
            (
                "service.version",
                V::S(if cowork {
                    "1.17420.0".into()
                } else {
                    user.version.to_string()
                }),
            ),
            ("os.type", V::S(user.os.0.into())),
            ("os.version", V::S(user.os.1.into())),
            (
                "host.arch",
                V::S(if rng.random::<f64>() < 0.7 { "arm64" } else { "amd64" }.into()),
            ),
        ];
        // Local working hours, 08:30-18:30, in UTC; kept inside the day so the month is exact.
        let local_start = 8.5 * 3600.0 + rng.random::<f64>() * 10.0 * 3600.0;
        let start_s = (local_start as i64 - user.tz * 3600).clamp(60, DAY_S - 6 * 3600);
        let session_id = uuid(rng);
        let mut g = SessionGen {
            user,
            resource: Arc::new(resource),
            partition: (xxhash_rust::xxh3::xxh3_64(session_id.as_bytes()) % 12) as i32,
            session_id,
            terminal: if cowork { "non-interactive" } else { user.terminal },
            cowork,
            seq: 0,
            t_ns: ((day_start_s + start_s) as u64) * 1_000_000_000 + rng.random_range(0..1_000_000_000),
        };
        for _ in 0..share {
            // Nothing past the month's last day.
            if g.t_ns >= end_ns {
                break;
            }
            g.prompt(rng, out);
            // Think time before the next prompt.
            g.advance_ms(lognormal(rng, 90_000.0, 0.9));
        }
    }
}

fn poisson_large(rng: &mut StdRng, mean: f64) -> u32 {
    if mean < 30.0 {
        poisson(rng, mean)
    } else {
        (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u32
    }
}

/// Batches of encoded rows, made on their own thread.
struct Batch {
    rows: Rows,
    duplicates: usize,
}

fn generate(args: &Args, tx: std::sync::mpsc::SyncSender<Batch>) {
    let mut rng = StdRng::seed_from_u64(20261101);
    let users = users(args.users, &mut rng);
    let weights: f64 = (0..args.days).map(day_weight).sum();
    let activity: f64 = users.iter().map(|u| u.activity).sum::<f64>() / users.len() as f64;
    // Sized so that the month holds about --events distinct events (1% over, so at least).
    let prompts_mean = args.events as f64 * 1.01 / EVENTS_PER_PROMPT / weights / users.len() as f64 / activity;
    let policy = ContentPolicy::default();
    let end_ns = ((MONTH_START_S + i64::from(args.days) * DAY_S) as u64 - 3_600) * 1_000_000_000;
    let mut rows = Rows::default();
    let mut offset = 0i64;
    let mut resend: Vec<Ev> = Vec::new();
    let mut resend_next: Vec<Ev> = Vec::new();
    let mut duplicates = 0;
    let mut events = Vec::new();
    let mut push = |rows: &mut Rows, ev: &Ev, received_ns: u64| {
        let resource: Vec<Attr<'_>> = ev
            .resource
            .iter()
            .map(|(k, v)| Attr {
                key: k,
                value: value(v),
            })
            .collect();
        let record = Record {
            time_unix_nano: ev.time_ns,
            observed_time_unix_nano: ev.time_ns,
            body: Some(Value::Str(ev.body)),
            event_name: "",
            attributes: ev
                .attrs
                .iter()
                .map(|(k, v)| Attr {
                    key: k,
                    value: value(v),
                })
                .collect(),
            ..Record::default()
        };
        let normalized = normalize(&Scope::new(TENANT), &resource, &record, received_ns);
        let origin = Origin {
            tenant: TENANT,
            received_at_ns: received_ns,
            partition: ev.partition,
            offset,
            policy: &policy,
        };
        offset += 1;
        rows.push(&origin, &resource, &record, &normalized);
    };
    for day in 0..args.days {
        for user in &users {
            events.clear();
            user_day(&mut rng, user, day, prompts_mean, end_ns, &mut events);
            for ev in &events {
                push(&mut rows, ev, ev.time_ns + 1_500_000_000);
                if rng.random::<f64>() < 0.01 {
                    resend_next.push(ev.clone());
                }
                if rows.records() >= args.batch {
                    // Last batch's resends go into this one: a client retrying a request whose
                    // answer it lost, a few seconds to minutes later.
                    for ev in resend.drain(..) {
                        push(&mut rows, &ev, ev.time_ns + 600_000_000_000);
                        duplicates += 1;
                    }
                    std::mem::swap(&mut resend, &mut resend_next);
                    let full = std::mem::take(&mut rows);
                    if tx
                        .send(Batch {
                            rows: full,
                            duplicates: std::mem::take(&mut duplicates),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
    for ev in resend.drain(..).chain(resend_next.drain(..)) {
        push(&mut rows, &ev, ev.time_ns + 600_000_000_000);
        duplicates += 1;
    }
    let _ = tx.send(Batch { rows, duplicates });
}

// ------------------------------------------------------------------------------------------------
// Load.
// ------------------------------------------------------------------------------------------------

struct LoadReport {
    rows_sent: u64,
    duplicates_sent: u64,
    seconds: f64,
    sample_events: u64,
}

async fn load(args: &Args, store: &Store) -> LoadReport {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
    let gen_args = Args {
        url: None,
        db: String::new(),
        ..*args
    };
    let generator = std::thread::spawn(move || generate(&gen_args, tx));
    let sample_dir = work_dir().join("sample");
    let _ = std::fs::remove_dir_all(&sample_dir);
    std::fs::create_dir_all(&sample_dir).unwrap();
    let mut files: Vec<std::fs::File> = Table::ALL
        .iter()
        .map(|t| std::fs::File::create(sample_dir.join(format!("{}.rowbinary", t.name()))).unwrap())
        .collect();
    let started = Instant::now();
    let (mut sent, mut dups, mut sample_events, mut batches) = (0u64, 0u64, 0u64, 0u64);
    let (mut gen_wait, mut insert_time) = (Duration::ZERO, Duration::ZERO);
    loop {
        let waited = Instant::now();
        let rx_batch = tokio::task::block_in_place(|| rx.recv());
        gen_wait += waited.elapsed();
        let Ok(batch) = rx_batch else { break };
        let rows = batch.rows;
        if args.chdb && sample_events < args.sample {
            for t in Table::ALL {
                files[t.index()].write_all(rows.buf(t)).unwrap();
            }
            sample_events += rows.records() as u64;
        }
        let inserting = Instant::now();
        let inserts = Table::ALL.iter().map(|t| {
            let data = bytes::Bytes::copy_from_slice(rows.buf(*t));
            let store = store.clone();
            async move {
                if !data.is_empty() {
                    store
                        .insert(t.name(), t.columns(), data)
                        .await
                        .unwrap_or_else(|e| panic!("insert into {}: {e}", t.name()));
                }
            }
        });
        futures::future::join_all(inserts).await;
        insert_time += inserting.elapsed();
        sent += rows.records() as u64;
        dups += batch.duplicates as u64;
        batches += 1;
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "load: batch {batches}: {sent} events ({dups} resent) in {s:.0} s, {:.0} events/s; {:.1} MB this batch; waited {:.0} s for the generator, {:.0} s in inserts",
            sent as f64 / s,
            rows.bytes() as f64 / 1e6,
            gen_wait.as_secs_f64(),
            insert_time.as_secs_f64()
        );
    }
    generator.join().unwrap();
    LoadReport {
        rows_sent: sent,
        duplicates_sent: dups,
        seconds: started.elapsed().as_secs_f64(),
        sample_events,
    }
}

// ------------------------------------------------------------------------------------------------
// The baseline: plain MergeTree copies and the v1 views.
// ------------------------------------------------------------------------------------------------

async fn build_plain(http: &Http, db: &str, plain: &str) -> f64 {
    let started = Instant::now();
    http.query(&format!("DROP DATABASE IF EXISTS {plain}")).await;
    http.query(&format!("CREATE DATABASE {plain}")).await;
    let target = Target {
        features: Features::for_version((18, 16)),
        cluster: None,
    };
    let v2 = schema::MIGRATIONS.last().unwrap();
    let statements = v2.statements(plain, &target);
    for t in Table::ALL {
        let head = format!("CREATE TABLE IF NOT EXISTS {plain}.{}\n", t.name());
        let ddl = statements
            .iter()
            .find(|s| s.starts_with(&head))
            .unwrap_or_else(|| panic!("no DDL for {}", t.name()));
        let ddl = ddl.replace("ReplacingMergeTree(normalizer_version)", "MergeTree");
        assert!(ddl.contains("ENGINE = MergeTree\n"), "{ddl}");
        http.query(&ddl).await;
    }
    // The same rows, each event once (a deduplicated copy: the plain tables answer what the
    // deduplicated ones answer, without the work of deduplicating).
    let days = http
        .rows(&format!(
            "SELECT DISTINCT toString(event_day) FROM {db}.events ORDER BY 1"
        ))
        .await;
    for t in Table::ALL {
        for d in &days {
            http.query(&format!(
                "INSERT INTO {plain}.{name} SELECT * FROM {db}.{name} FINAL WHERE event_day = toDate('{day}')",
                name = t.name(),
                day = d[0]
            ))
            .await;
        }
        eprintln!("plain: {} copied", t.name());
    }
    // The v1 views (migration 002), without FINAL, over the plain tables.
    let v1 = git_show(&format!("{V1_COMMIT}:schemas/002_rollups.sql"));
    for stmt in v1.split(";\n") {
        let body: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            continue;
        }
        http.query(&body.replace("{database}", plain).replace(" FINAL", ""))
            .await;
    }
    started.elapsed().as_secs_f64()
}

fn git_show(spec: &str) -> String {
    let out = Command::new("git")
        .args(["show", spec])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git show {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ------------------------------------------------------------------------------------------------
// Panels.
// ------------------------------------------------------------------------------------------------

struct PanelQuery {
    file: String,
    title: String,
    ref_id: String,
    raw: String,
}

fn panel_queries(dashboard: &Json, file: &str) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    // The template variables' queries run on every dashboard load.
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let raw = v["query"]
                .as_str()
                .or_else(|| v["query"]["rawSql"].as_str())
                .unwrap_or_default();
            out.push(PanelQuery {
                file: file.to_string(),
                title: format!("variable ${}", v["name"].as_str().unwrap_or_default()),
                ref_id: String::new(),
                raw: raw.to_string(),
            });
        }
    }
    let mut panels = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        panels.push(p);
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    for p in panels {
        if p["datasource"]["uid"] != "clickhouse" {
            continue;
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(raw) = t["rawSql"].as_str() {
                out.push(PanelQuery {
                    file: file.to_string(),
                    title: p["title"].as_str().unwrap_or_default().to_string(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                    raw: raw.to_string(),
                });
            }
        }
    }
    out
}

struct Timing {
    seconds: Vec<f64>,
    rows: usize,
    hash: u64,
    error: Option<String>,
}

impl Timing {
    fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return f64::NAN;
        }
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }
    fn min(&self) -> f64 {
        self.seconds.iter().copied().fold(f64::INFINITY, f64::min)
    }
    fn max(&self) -> f64 {
        self.seconds.iter().copied().fold(0.0, f64::max)
    }
}

async fn time_once(http: &Http, sql: &str, t: &mut Timing) {
    if t.error.is_some() {
        return;
    }
    let started = Instant::now();
    match http.try_query(&format!("{sql}\nFORMAT TabSeparated")).await {
        Ok(text) => {
            t.seconds.push(started.elapsed().as_secs_f64());
            t.rows = text.lines().count();
            t.hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        }
        Err(e) => t.error = Some(e.lines().next().unwrap_or_default().chars().take(300).collect()),
    }
}

fn fmt_s(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.3}")
    }
}

async fn time_panels(args: &Args, http: &Http, db: &str, plain: &str) -> Vec<Json> {
    // The 30-day window: 2026-11-01 00:00 to 2026-12-01 00:00 UTC; $__interval_s as Grafana
    // picks it for 30 days on a half-width panel (~1000 px → 43 min → rounded to 30 min).
    let to_day = args.days;
    let range = Range {
        from_s: MONTH_START_S,
        to_s: MONTH_START_S + i64::from(to_day) * DAY_S,
        from_date: "2026-11-01",
        to_date: Box::leak(day_text(to_day).into_boxed_str()),
        interval_s: 1800,
    };
    let users: Vec<String> = http
        .rows(&format!(
            "SELECT DISTINCT user_email FROM {db}.api_requests WHERE tenant = '{TENANT}' ORDER BY user_email"
        ))
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    // One real prompt, from a busy weekday in the middle of the month.
    let prompt_id = http
        .scalar(&format!(
            "SELECT prompt_id FROM {db}.user_prompts WHERE tenant = '{TENANT}' AND event_day = (SELECT max(event_day) FROM {db}.user_prompts WHERE event_day <= toDate('2026-11-18')) ORDER BY prompt_id LIMIT 1"
        ))
        .await;
    eprintln!("timing: {} users, prompt_id {prompt_id}", users.len());
    let vars: Vars = [
        ("tenant".to_string(), VarValue::One(TENANT.to_string())),
        ("user".to_string(), VarValue::All(users)),
        ("prompt_id".to_string(), VarValue::One(prompt_id.clone())),
    ]
    .into_iter()
    .collect();
    let render = |raw: &str, database: &str| -> String {
        grafana::render(raw, &vars, &range).replace("cowork.", &format!("{database}."))
    };

    let mut baseline: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (file, _) in grafana::dashboards() {
        let Ok(text) = std::panic::catch_unwind(|| git_show(&format!("{V1_COMMIT}:grafana/dashboards/{file}"))) else {
            continue;
        };
        let d: Json = serde_json::from_str(&text).unwrap();
        for q in panel_queries(&d, &file) {
            baseline.insert((q.file, q.title, q.ref_id), q.raw.replace(" FINAL", ""));
        }
    }

    let mut results = Vec::new();
    let mut seen_variables = std::collections::BTreeSet::new();
    for (file, d) in grafana::dashboards() {
        for q in panel_queries(&d, &file) {
            if q.title.starts_with("variable ") && !seen_variables.insert(q.raw.clone()) {
                continue;
            }
            let sql = render(&q.raw, db);
            let base_sql = baseline
                .get(&(q.file.clone(), q.title.clone(), q.ref_id.clone()))
                .map(|raw| render(raw, plain));
            let new = || Timing {
                seconds: Vec::new(),
                rows: 0,
                hash: 0,
                error: None,
            };
            let (mut v2, mut base) = (new(), new());
            for _ in 0..args.runs {
                time_once(http, &sql, &mut v2).await;
                if let Some(b) = &base_sql {
                    time_once(http, b, &mut base).await;
                }
            }
            let ratio = v2.median() / base.median();
            let same = base_sql
                .as_ref()
                .map(|_| v2.error.is_none() && base.error.is_none() && v2.hash == base.hash);
            eprintln!(
                "timing: {file} / {}: v2 {} s, plain {} s, {} rows{}{}",
                q.title,
                fmt_s(v2.median()),
                fmt_s(base.median()),
                v2.rows,
                v2.error.as_ref().map(|e| format!(" ERROR v2: {e}")).unwrap_or_default(),
                base.error
                    .as_ref()
                    .map(|e| format!(" ERROR plain: {e}"))
                    .unwrap_or_default(),
            );
            results.push(json!({
                "dashboard": file,
                "panel": q.title,
                "ref_id": q.ref_id,
                "sql": sql,
                "baseline_sql": base_sql,
                "v2": {"median_s": v2.median(), "min_s": v2.min(), "max_s": v2.max(), "runs_s": v2.seconds, "rows": v2.rows, "error": v2.error},
                "plain": {"median_s": base.median(), "min_s": base.min(), "max_s": base.max(), "runs_s": base.seconds, "rows": base.rows, "error": base.error},
                "ratio": if ratio.is_finite() { json!(ratio) } else { Json::Null },
                "same_result": same,
                "over_1s": v2.median().is_nan() || v2.median() > 1.0,
            }));
        }
    }
    results
}

// ------------------------------------------------------------------------------------------------
// Bytes on disk.
// ------------------------------------------------------------------------------------------------

async fn parts(http: &Http, db: &str) -> Vec<Vec<String>> {
    http.rows(&format!(
        "SELECT table, toString(count()), toString(sum(rows)), toString(sum(bytes_on_disk)) FROM system.parts \
         WHERE database = '{db}' AND active GROUP BY table ORDER BY table"
    ))
    .await
}

fn bytes_of(parts: &[Vec<String>]) -> u64 {
    parts.iter().map(|r| r[3].parse::<u64>().unwrap()).sum()
}

/// The sample in current ClickHouse (chdb): the same RowBinary rows, the DDL for 26.x, the
/// rollups refreshed, then bytes on disk of active parts per distinct event.
fn chdb_bytes(db: &str) -> Result<Json, String> {
    let dir = work_dir().join("sample");
    let tables: Vec<Json> = Table::ALL
        .iter()
        .map(|t| json!({"name": t.name(), "columns": t.columns(), "path": dir.join(format!("{}.rowbinary", t.name()))}))
        .collect();
    let days: Vec<u16> = {
        // The sample's days: read from the events file would need a decoder; every day of the
        // month is refreshed instead (days without rows insert nothing).
        (0..30).map(|d| (MONTH_START_S / DAY_S) as u16 + d).collect()
    };
    let after_load: Vec<String> = days
        .iter()
        .flat_map(|d| {
            cowork_ingest::clickhouse::rollups::refresh_statements(
                db,
                TENANT,
                &cowork_ingest::clickhouse::rollups::day_text(*d),
                1,
            )
        })
        .collect();
    let queries = vec![
        format!("SELECT table, count(), sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active GROUP BY table ORDER BY table"),
        format!("SELECT uniqExact(event_id), count() FROM {db}.events"),
    ];
    let args = dir.join("chdb-args.json");
    std::fs::write(
        &args,
        json!({
            "database": db,
            "ddl": schema::render(db, &Target { features: Features::for_version((26, 1)), cluster: None }),
            "tables": tables,
            "after_load": after_load,
            "queries": queries,
        })
        .to_string(),
    )
    .unwrap();
    let python = std::env::var_os("COWORK_CHDB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".dev/venv/bin/python"));
    let out = Command::new(&python)
        .arg(root().join("tests/chdb_check.py"))
        .arg(&args)
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).chars().take(2000).collect());
    }
    let v: Json = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let results = &v["results"];
    let mut per_table = Vec::new();
    let mut total = 0u64;
    for r in results[0].as_array().unwrap() {
        let bytes: u64 = r[3].as_str().unwrap().parse().unwrap();
        total += bytes;
        per_table.push(json!({"table": r[0], "parts": r[1], "rows": r[2], "bytes": bytes}));
    }
    let distinct: u64 = results[1][0][0].as_str().unwrap().parse().unwrap();
    let rows: u64 = results[1][0][1].as_str().unwrap().parse().unwrap();
    Ok(json!({
        "version": v["version"],
        "sample_event_rows": rows,
        "sample_distinct_events": distinct,
        "bytes_on_disk": total,
        "bytes_per_event": total as f64 / distinct as f64,
        "tables": per_table,
    }))
}

// ------------------------------------------------------------------------------------------------

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let args = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let data_dir = work_dir().join("ch");
    std::fs::create_dir_all(work_dir()).unwrap();
    if !args.skip_load && args.url.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let server = match &args.url {
        Some(_) => None,
        None => Some(Server::start(&data_dir)),
    };
    let url = args.url.clone().unwrap_or_else(|| server.as_ref().unwrap().url.clone());
    let db = args.db.clone();
    let plain = format!("{db}_plain");
    let config = ClickHouseConfig {
        url: url.clone(),
        database: db.clone(),
        insert_timeout_ms: 1_800_000,
        ..ClickHouseConfig::default()
    };
    let store = Store::new(&config);
    let http = Http {
        client: reqwest::Client::new(),
        url: url.clone(),
    };
    let report = rt.block_on(async {
        let version = http.scalar("SELECT version()").await;
        eprintln!("ClickHouse {version} at {url}, database {db}");
        let mut report = json!({"clickhouse": version, "args": {
            "events": args.events, "days": args.days, "users": args.users, "batch": args.batch,
            "runs": args.runs, "settle_s": args.settle_s, "skip_load": args.skip_load}});
        if !args.skip_load {
            http.query(&format!("DROP DATABASE IF EXISTS {db}")).await;
            let target = Target::detect(&store).await.unwrap();
            schema::migrate(&store, &target, &mut |m| eprintln!("migrate: {m}"))
                .await
                .unwrap();
            let l = load(&args, &store).await;
            eprintln!("load: {} rows in {:.0} s", l.rows_sent, l.seconds);
            report["load"] = json!({"event_rows_sent": l.rows_sent, "duplicates_sent": l.duplicates_sent,
                "seconds": l.seconds, "events_per_s": l.rows_sent as f64 / l.seconds, "chdb_sample_event_rows": l.sample_events});
            let started = Instant::now();
            let days = cowork_ingest::clickhouse::rollups::rebuild(&store, None, None, None, &mut |m| eprintln!("rebuild: {m}"))
                .await
                .unwrap();
            let rebuild_s = started.elapsed().as_secs_f64();
            eprintln!("rebuild: {days} (tenant, day)s in {rebuild_s:.1} s");
            report["rebuild"] = json!({"days": days, "seconds": rebuild_s});
            let plain_s = build_plain(&http, &db, &plain).await;
            report["plain_copy_s"] = json!(plain_s);
            eprintln!("settle: {} s for background merges", args.settle_s);
            tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
        }
        let distinct: u64 = http
            .scalar(&format!("SELECT uniqExact(event_id) FROM {db}.events"))
            .await
            .parse()
            .unwrap();
        let stored: u64 = http.scalar(&format!("SELECT count() FROM {db}.events")).await.parse().unwrap();
        let by_event = http
            .rows(&format!("SELECT event_name, count() FROM {db}.events FINAL GROUP BY event_name ORDER BY 1"))
            .await;
        eprintln!("data: {distinct} distinct events, {stored} event rows stored (duplicates not yet merged: {})", stored - distinct);
        report["data"] = json!({"distinct_events": distinct, "event_rows_stored": stored,
            "by_event": by_event.iter().map(|r| (r[0].clone(), r[1].parse::<u64>().unwrap())).collect::<BTreeMap<_, _>>()});
        let v2_parts = parts(&http, &db).await;
        let plain_parts = parts(&http, &plain).await;
        for (name, p) in [("v2", &v2_parts), ("plain", &plain_parts)] {
            for r in p.iter() {
                eprintln!("parts {name}: {} {} parts, {} rows, {} bytes", r[0], r[1], r[2], r[3]);
            }
        }
        let table = |p: &[Vec<String>]| -> Json {
            p.iter().map(|r| json!({"table": r[0], "parts": r[1].parse::<u64>().unwrap(), "rows": r[2].parse::<u64>().unwrap(), "bytes": r[3].parse::<u64>().unwrap()})).collect()
        };
        report["bytes"] = json!({
            "v2_18_16": {"bytes_on_disk": bytes_of(&v2_parts), "bytes_per_event": bytes_of(&v2_parts) as f64 / distinct as f64, "tables": table(&v2_parts)},
            "plain_18_16": {"bytes_on_disk": bytes_of(&plain_parts), "bytes_per_event": bytes_of(&plain_parts) as f64 / distinct as f64, "tables": table(&plain_parts)},
        });
        report["panels"] = Json::Array(time_panels(&args, &http, &db, &plain).await);
        report
    });
    let mut report = report;
    if args.chdb && !args.skip_load {
        eprintln!("chdb: loading the sample");
        let started = Instant::now();
        report["bytes"]["current_chdb"] = match chdb_bytes(&db) {
            Ok(v) => v,
            Err(e) => json!({"error": e}),
        };
        eprintln!("chdb: {:.0} s", started.elapsed().as_secs_f64());
    } else if let Ok(old) = std::fs::read_to_string(work_dir().join("results.json")) {
        // A re-timing keeps the chdb figure of the load it re-times.
        if let Ok(old) = serde_json::from_str::<Json>(&old) {
            report["bytes"]["current_chdb"] = old["bytes"]["current_chdb"].clone();
        }
    }
    std::fs::write(
        work_dir().join("results.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    print!("{}", markdown(&report));
    drop(server);
    if !args.keep && args.url.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}

fn markdown(r: &Json) -> String {
    let mut out = String::new();
    let f = |v: &Json| v.as_f64().map(fmt_s).unwrap_or_else(|| "—".into());
    out.push_str(&format!(
        "ClickHouse {}\n\n",
        r["clickhouse"].as_str().unwrap_or_default()
    ));
    if !r["load"].is_null() {
        out.push_str(&format!(
            "Load: {} event rows ({} resent duplicates) in {:.0} s ({:.0} events/s); rollups rebuild of {} (tenant, day)s: {:.1} s; plain copies and views: {:.0} s\n\n",
            r["load"]["event_rows_sent"], r["load"]["duplicates_sent"], r["load"]["seconds"].as_f64().unwrap_or(0.0),
            r["load"]["events_per_s"].as_f64().unwrap_or(0.0), r["rebuild"]["days"], r["rebuild"]["seconds"].as_f64().unwrap_or(0.0),
            r["plain_copy_s"].as_f64().unwrap_or(0.0),
        ));
    }
    out.push_str(&format!(
        "Data: {} distinct events, {} event rows stored; by event: {}\n\n",
        r["data"]["distinct_events"], r["data"]["event_rows_stored"], r["data"]["by_event"]
    ));
    let b = &r["bytes"];
    out.push_str(&format!(
        "Bytes on disk per distinct event: 18.16 v2 (all tables incl. rollups) {:.1}; 18.16 plain MergeTree base tables {:.1}; current (chdb {}, sample of {} event rows) {}\n\n",
        b["v2_18_16"]["bytes_per_event"].as_f64().unwrap_or(f64::NAN),
        b["plain_18_16"]["bytes_per_event"].as_f64().unwrap_or(f64::NAN),
        b["current_chdb"]["version"].as_str().unwrap_or("?"),
        b["current_chdb"]["sample_event_rows"],
        b["current_chdb"]["bytes_per_event"].as_f64().map(|v| format!("{v:.1}")).unwrap_or_else(|| format!("{}", b["current_chdb"]["error"])),
    ));
    out.push_str("| dashboard | panel | v2 median s (min–max) | plain v1 median s (min–max) | v2 / plain | rows | same answer | ≤ 1 s |\n");
    out.push_str("|---|---|---:|---:|---:|---:|:---:|:---:|\n");
    for p in r["panels"].as_array().into_iter().flatten() {
        let cell = |side: &Json| -> String {
            if let Some(e) = side["error"].as_str() {
                return format!("error: {}", e.chars().take(80).collect::<String>().replace('|', "/"));
            }
            format!("{} ({}–{})", f(&side["median_s"]), f(&side["min_s"]), f(&side["max_s"]))
        };
        let plain = if p["baseline_sql"].is_null() {
            "no v1 panel".to_string()
        } else {
            cell(&p["plain"])
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            p["dashboard"].as_str().unwrap_or_default(),
            p["panel"].as_str().unwrap_or_default().replace('|', "/"),
            cell(&p["v2"]),
            plain,
            p["ratio"]
                .as_f64()
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "—".into()),
            p["v2"]["rows"],
            match p["same_result"].as_bool() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            },
            if p["over_1s"] == true { "**over**" } else { "yes" },
        ));
    }
    out
}
