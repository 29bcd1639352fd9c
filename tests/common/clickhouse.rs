//! A real ClickHouse server for tests: Debian's `clickhouse-server` (18.16 in CI) started as an
//! ordinary process with its own config, data directory and free ports. It dies with the test
//! process (PR_SET_PDEATHSIG), so no server outlives a test run.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cowork_ingest::clickhouse::schema;
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::config::Config;

pub struct ClickHouse {
    pub url: String,
    dir: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

/// Spawns `cmd` from one thread that lives as long as the test process: PR_SET_PDEATHSIG fires
/// when the spawning *thread* exits, and test threads exit after each test.
fn spawn_for_process(cmd: Command) -> Child {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            loop {
                std::thread::park();
            }
        });
        std::sync::Mutex::new(tx)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    spawner.lock().unwrap().send((cmd, tx)).unwrap();
    rx.recv().unwrap().expect("clickhouse-server starts")
}

fn server_command() -> Command {
    if let Ok(path) = which("clickhouse-server") {
        Command::new(path)
    } else {
        let mut c =
            Command::new(which("clickhouse").expect("clickhouse-server is installed (scripts/test installs it)"));
        c.arg("server");
        c
    }
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

fn write_config(dir: &Path, http: u16, tcp: u16) {
    for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
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
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("users.xml"),
        r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#,
    )
    .unwrap();
}

impl ClickHouse {
    /// The server's process id, while it runs.
    #[allow(dead_code)] // the pipeline bench reads its CPU time
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Starts a new server in a temporary directory. A free port can be taken by someone else
    /// before the server binds it: up to three tries, each on new ports.
    pub fn start() -> ClickHouse {
        let mut last = String::new();
        for _ in 0..3 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().to_path_buf();
            write_config(&dir, super::free_port(), super::free_port());
            let mut ch = ClickHouse {
                url: String::new(),
                dir,
                child: None,
                _tmp: Some(tmp),
            };
            match ch.spawn() {
                Ok(()) => return ch,
                Err(e) => last = e,
            }
        }
        panic!("{last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let config = std::fs::read_to_string(self.dir.join("config.xml")).unwrap();
        let port = config
            .split("<http_port>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string();
        self.url = format!("http://127.0.0.1:{port}");
        let mut cmd = server_command();
        cmd.arg(format!("--config-file={}", self.dir.join("config.xml").display()))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the child dies when the thread that spawned it
        // does, and that thread lives as long as the test process (see `spawn_for_process`).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(spawn_for_process(cmd));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.url.trim_start_matches("http://")).is_ok()
                && http_get(&format!("{}/ping", self.url)).is_some_and(|b| b.starts_with("Ok"))
            {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!(
                    "ClickHouse exited at startup ({status}):\n{}",
                    self.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("ClickHouse did not start within 60 s:\n{}", self.error_log()))
    }

    /// The end of the server's error log, for failure messages.
    fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log/error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the server (SIGTERM, then SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server per test binary, shared by its tests (each test uses its own database).
pub fn shared() -> &'static ClickHouse {
    static SHARED: OnceLock<ClickHouse> = OnceLock::new();
    SHARED.get_or_init(ClickHouse::start)
}

fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `sql` over HTTP and returns the response body; panics with the server's message.
pub async fn query(url: &str, sql: &str) -> String {
    let resp = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "ClickHouse refused {sql}: {text}");
    text
}

/// `config` pointed at `url` and a new database, migrated.
pub async fn migrated(mut config: Config, url: &str) -> Config {
    config.clickhouse.url = url.to_string();
    config.clickhouse.database = format!("t_{}", uuid::Uuid::new_v4().simple());
    config.clickhouse.rollup_refresh_ms = 200;
    if config.clickhouse.cluster.is_empty() {
        config.clickhouse.rollup_settle_ms = 0;
    } else {
        config.clickhouse.rollup_settle_ms = 3000;
    }
    let store = Store::new(&config.clickhouse);
    let target = schema::Target::detect(&store).await.expect("the server's version");
    schema::migrate(&store, &target, &mut |_| {})
        .await
        .expect("migrations apply");
    config
}

/// The schema as current ClickHouse (chdb's 26.x) gets it.
pub fn current_target() -> schema::Target {
    schema::Target {
        features: schema::Features::for_version((26, 1)),
        cluster: None,
    }
}

/// Waits until the rollups are current: every (tenant, day) of `events` and `metric_points` was refreshed, and none
/// awaits a refresh, twice in a row half a second apart (the consumer marks a day just after
/// its rows land). A running consumer's refresher does them; fails after `within`.
pub async fn wait_rollups(config: &Config, within: Duration) {
    let store = Store::new(&config.clickhouse);
    let db = &config.clickhouse.database;
    let settle_s = config.clickhouse.rollup_settle_ms.div_ceil(1000);
    let deadline = std::time::Instant::now() + within;
    let mut quiet = 0;
    loop {
        let pending = cowork_ingest::clickhouse::rollups::pending(&store, settle_s, None)
            .await
            .expect("pending rollups");
        let unrefreshed = rows(
            config,
            &format!(
                "SELECT count() FROM (SELECT DISTINCT tenant, event_day AS day FROM {db}.events \
                 UNION ALL SELECT DISTINCT tenant, event_day AS day FROM {db}.metric_points \
                 UNION ALL SELECT DISTINCT tenant, event_day AS day FROM {db}.spans) \
                 WHERE (tenant, day) NOT IN (SELECT tenant, day FROM {db}.rollup_state)"
            ),
        )
        .await;
        if pending.is_empty() && unrefreshed[0][0] == "0" {
            quiet += 1;
            if quiet == 2 {
                return;
            }
        } else {
            quiet = 0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollups of {pending:?} (and {} never refreshed days) not refreshed within {within:?}: is a consumer's refresher running?",
            unrefreshed[0][0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A TabSeparated field as text (the library's own unescaping).
pub fn unescape(field: &str) -> String {
    cowork_ingest::clickhouse::store::unescape_tsv(field)
}

/// The corpus loaded once into a fresh database: encoded by the consumer's fast path (tenant
/// `acme`), inserted into the shared 18.16 server, and written as one RowBinary file per table
/// so that chdb (current ClickHouse) can load the very same rows.
pub struct LoadedCorpus {
    pub url: String,
    pub db: String,
    pub events: usize,
    /// `[{"name", "columns", "path"}]`, as `tests/chdb_check.py` takes them.
    pub tables: Vec<serde_json::Value>,
    /// The rollup refresh statements for the corpus' (tenant, day)s, for chdb to run once the
    /// rows are loaded.
    pub refresh: Vec<String>,
    pub dir: tempfile::TempDir,
}

pub async fn load_corpus() -> LoadedCorpus {
    use cowork_ingest::clickhouse::rows::Rows;
    use cowork_ingest::config::ContentPolicy;
    use cowork_ingest::consumer::{Decoder, Envelope};
    use cowork_ingest::otlp::{Compression, ContentType, Signal};

    let mut rows = Rows::default();
    let mut decoder = Decoder::new(64 << 20, Default::default());
    let policy = ContentPolicy::default();
    for (i, b) in super::corpus("proto-none").iter().enumerate() {
        let env = Envelope {
            tenant: "acme",
            content_type: ContentType::Protobuf,
            compression: Compression::Identity,
            received_at_ns: 1_795_100_000_000_000_000,
            ..Envelope::default()
        };
        decoder
            .rows_into(&env, &b.body, 0, i as i64, &policy, &mut rows)
            .unwrap();
    }
    let events = rows.records();
    // The captured metrics and spans of the real SDK (tests/fixtures/signals), for the
    // Productivity dashboard: DELTA protobuf and its spans.
    let signals = super::fixtures().join("../signals");
    for (signal, folder) in [
        (Signal::Metrics, "metrics-proto-delta"),
        (Signal::Traces, "traces-proto"),
    ] {
        for (i, b) in super::corpus_at(&signals, folder).iter().enumerate() {
            let env = Envelope {
                signal,
                tenant: "acme",
                content_type: ContentType::Protobuf,
                compression: Compression::Identity,
                received_at_ns: 1_796_200_000_000_000_000,
                ..Envelope::default()
            };
            decoder
                .rows_into(&env, &b.body, 1, i as i64, &policy, &mut rows)
                .unwrap();
        }
    }
    load_rows(rows, events).await
}

/// Log bodies (protobuf) of `tenant` decoded as the consumer does and loaded like
/// [`load_corpus`].
pub async fn load_bodies(tenant: &str, bodies: &[super::CorpusBody]) -> LoadedCorpus {
    use cowork_ingest::clickhouse::rows::Rows;
    use cowork_ingest::config::ContentPolicy;
    use cowork_ingest::consumer::{Decoder, Envelope};
    use cowork_ingest::otlp::{Compression, ContentType};

    let mut rows = Rows::default();
    let mut decoder = Decoder::new(64 << 20, Default::default());
    for (i, b) in bodies.iter().enumerate() {
        let env = Envelope {
            tenant,
            content_type: ContentType::Protobuf,
            compression: Compression::Identity,
            received_at_ns: 1_796_200_000_000_000_000,
            ..Envelope::default()
        };
        decoder
            .rows_into(&env, &b.body, 0, i as i64, &ContentPolicy::default(), &mut rows)
            .unwrap();
    }
    let events = rows.records();
    load_rows(rows, events).await
}

/// Inserts `rows` into a freshly migrated database on the shared 18.16 server, builds the
/// rollups, and keeps the RowBinary files and refresh statements for chdb.
async fn load_rows(rows: cowork_ingest::clickhouse::rows::Rows, events: usize) -> LoadedCorpus {
    use cowork_ingest::clickhouse::Table;

    let ch = shared();
    let config = migrated(Config::default(), &ch.url).await;
    let store = Store::new(&config.clickhouse);
    let dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for t in Table::ALL {
        let data = rows.buf(t).to_vec();
        store.insert(t.name(), t.columns(), data.clone().into()).await.unwrap();
        let path = dir.path().join(format!("{}.rowbinary", t.name()));
        std::fs::write(&path, &data).unwrap();
        tables.push(serde_json::json!({"name": t.name(), "columns": t.columns(), "path": path}));
    }
    // The rollups, as `rollups rebuild` makes them; chdb runs the same refresh statements.
    let days = store
        .rows(&format!(
            "SELECT DISTINCT tenant, day FROM (SELECT tenant, toString(event_day) AS day FROM {db}.events \
             UNION ALL SELECT tenant, toString(event_day) AS day FROM {db}.metric_points \
             UNION ALL SELECT tenant, toString(event_day) AS day FROM {db}.spans) ORDER BY 1, 2",
            db = config.clickhouse.database
        ))
        .await
        .unwrap();
    cowork_ingest::clickhouse::rollups::rebuild(&store, None, None, None, &mut |_| {})
        .await
        .unwrap();
    let refresh: Vec<String> = days
        .iter()
        .flat_map(|d| {
            cowork_ingest::clickhouse::rollups::refresh_statements(&config.clickhouse.database, &d[0], &d[1], 1)
        })
        .collect();
    LoadedCorpus {
        url: ch.url.clone(),
        db: config.clickhouse.database,
        events,
        tables,
        refresh,
        dir,
    }
}

/// The Python with chdb-core that `scripts/test` installs (or `COWORK_CHDB_PYTHON`).
pub fn chdb_python() -> PathBuf {
    std::env::var_os("COWORK_CHDB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.dev/venv/bin/python")))
}

/// Rows for comparing two ClickHouse generations: numbers by value (18.16 prints `1.500000000`,
/// current releases `1.5`), text exactly.
pub fn comparable(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|f| match f.parse::<f64>() {
                    Ok(v) if !f.contains('-') || f.starts_with('-') => format!("{v:.9}"),
                    _ => f.clone(),
                })
                .collect()
        })
        .collect()
}

/// Runs `queries` on current ClickHouse (chdb, embedded) over the same schema and rows as
/// `corpus`; returns the engine's version and each query's TabSeparated rows (fields raw).
pub fn run_on_chdb(corpus: &LoadedCorpus, queries: &[String]) -> (String, Vec<Vec<Vec<String>>>) {
    let args = corpus.dir.path().join("args.json");
    std::fs::write(
        &args,
        serde_json::json!({
            "database": corpus.db,
            "ddl": cowork_ingest::clickhouse::schema::render(&corpus.db, &current_target()),
            "tables": corpus.tables,
            "after_load": corpus.refresh,
            "queries": queries,
        })
        .to_string(),
    )
    .unwrap();
    let python = chdb_python();
    let out = Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_check.py"))
        .arg(&args)
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): scripts/test installs chdb-core", python.display()));
    assert!(
        out.status.success(),
        "chdb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = current["version"].as_str().unwrap().to_string();
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 23, "chdb runs a current ClickHouse ({version})");
    (version, serde_json::from_value(current["results"].clone()).unwrap())
}

/// Events in the corpus (`expected.json`'s `events`).
pub const CORPUS_EVENTS: u64 = 1232;

/// Where the tests read: in cluster mode, from the first healthy replica of each shard, as the
/// consumer writes and reads (a replica still fetching the newest parts would be read otherwise).
fn read_url(config: &Config) -> String {
    match config.clickhouse.cluster.is_empty() {
        true => config.clickhouse.url.clone(),
        false => format!(
            "{}/?load_balancing=in_order",
            config.clickhouse.url.trim_end_matches('/')
        ),
    }
}

/// `SELECT count() FROM <db>.<from>` on `config`'s ClickHouse.
pub async fn count(config: &Config, from: &str) -> u64 {
    let ch = &config.clickhouse;
    query(
        &read_url(config),
        &format!("SELECT count() FROM {}.{from}", ch.database),
    )
    .await
    .trim()
    .parse()
    .unwrap()
}

/// Waits until `events FINAL` holds exactly `want` rows (and never more).
pub async fn wait_events(config: &Config, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = count(config, "events FINAL").await;
        if n == want {
            return;
        }
        assert!(n < want, "{n} events stored, more than the {want} sent");
        assert!(
            Instant::now() < deadline,
            "only {n} of {want} events reached ClickHouse within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// TabSeparated rows of `sql`, with `{db}` replaced by `config`'s database.
pub async fn rows(config: &Config, sql: &str) -> Vec<Vec<String>> {
    raw_rows(config, sql)
        .await
        .into_iter()
        .map(|r| r.iter().map(|f| unescape(f)).collect())
        .collect()
}

/// [`rows`] with every field as the server wrote it (TabSeparated escapes; NULL is `\N`).
pub async fn raw_rows(config: &Config, sql: &str) -> Vec<Vec<String>> {
    let ch = &config.clickhouse;
    query(
        &read_url(config),
        &format!("{} FORMAT TabSeparated", sql.replace("{db}", &ch.database)),
    )
    .await
    .lines()
    .map(|l| l.split('\t').map(String::from).collect())
    .collect()
}

pub fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(super::fixtures().join("expected.json")).unwrap()).unwrap()
}

pub fn pairs(rows: Vec<Vec<String>>) -> BTreeMap<String, u64> {
    rows.into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect()
}

pub fn json_map(v: &serde_json::Value) -> BTreeMap<String, u64> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Every aggregate of expected.json, computed in ClickHouse the way the README documents.
pub async fn assert_matches_expected(config: &Config, context: &str) {
    let want = expected();
    assert_eq!(count(config, "events FINAL").await, CORPUS_EVENTS, "{context}: events");
    wait_rollups(config, Duration::from_secs(60)).await;
    let by_event = pairs(
        rows(
            config,
            "SELECT event_name, count() FROM {db}.events FINAL GROUP BY event_name",
        )
        .await,
    );
    assert_eq!(by_event, json_map(&want["by_event"]), "{context}: by_event");
    let by_service = pairs(
        rows(
            config,
            "SELECT service_name, count() FROM {db}.events FINAL GROUP BY service_name",
        )
        .await,
    );
    assert_eq!(by_service, json_map(&want["by_service"]), "{context}: by_service");

    let cost: HashMap<String, f64> = rows(
        config,
        "SELECT user_email, sum(cost_usd) FROM {db}.api_requests FINAL GROUP BY user_email",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    let want_cost: HashMap<String, f64> = serde_json::from_value(want["cost_by_user"].clone()).unwrap();
    assert_eq!(cost.len(), want_cost.len(), "{context}: users with cost");
    for (user, c) in &want_cost {
        let got = cost
            .get(user)
            .unwrap_or_else(|| panic!("{context}: no cost for {user}"));
        assert!((got - c).abs() < 1e-6, "{context}: cost of {user}: {got} != {c}");
    }
    // cost_daily holds the same money as api_requests, to the nano-dollar.
    let daily = rows(config, "SELECT sum(cost_usd) FROM {db}.cost_daily FINAL").await;
    let direct = rows(config, "SELECT sum(cost_usd) FROM {db}.api_requests FINAL").await;
    assert_eq!(daily, direct, "{context}: cost_daily total");

    for r in rows(config,
            "SELECT model, sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_creation_tokens), count() \
             FROM {db}.api_requests FINAL GROUP BY model",
        )
        .await
    {
        let m = &want["tokens_by_model"][&r[0]];
        let got: Vec<u64> = r[1..].iter().map(|v| v.parse().unwrap()).collect();
        let exp: Vec<u64> = ["input", "output", "cache_read", "cache_creation", "requests"]
            .iter()
            .map(|k| m[k].as_u64().unwrap())
            .collect();
        assert_eq!(got, exp, "{context}: tokens of {}", r[0]);
    }
    let decisions: BTreeMap<String, u64> = rows(
        config,
        "SELECT tool_name, decision, count() FROM {db}.tool_decisions FINAL GROUP BY tool_name, decision",
    )
    .await
    .into_iter()
    .map(|r| (format!("{}|{}", r[0], r[1]), r[2].parse().unwrap()))
    .collect();
    assert_eq!(decisions, json_map(&want["decisions"]), "{context}: decisions");
    let outcomes = pairs(
        rows(
            config,
            "SELECT if(success = 1, 'success', 'failure'), count() FROM {db}.tool_results FINAL GROUP BY success",
        )
        .await,
    );
    assert_eq!(outcomes, json_map(&want["tool_results"]), "{context}: tool results");
    let errors = pairs(
        rows(
            config,
            "SELECT toString(status_code), count() FROM {db}.api_errors FINAL GROUP BY status_code",
        )
        .await,
    );
    assert_eq!(errors, json_map(&want["api_errors_by_status"]), "{context}: errors");
    assert_eq!(
        count(config, "user_prompts FINAL").await,
        want["prompts"].as_u64().unwrap(),
        "{context}: prompts"
    );
    let sessions = pairs(
        rows(
            config,
            "SELECT service_name, count() FROM {db}.sessions FINAL GROUP BY service_name",
        )
        .await,
    );
    assert_eq!(sessions, json_map(&want["sessions_by_service"]), "{context}: sessions");
    let with_paths = rows(
        config,
        "SELECT count() FROM {db}.sessions FINAL WHERE notEmpty(workspace_host_paths)",
    )
    .await;
    assert_eq!(
        with_paths[0][0],
        want["cowork_host_paths_sessions"].to_string(),
        "{context}: host paths"
    );
    // The session totals agree with the typed tables.
    let totals = rows(config, "SELECT sum(prompts), sum(api_requests), sum(api_errors), sum(tool_decisions), sum(tool_rejects), sum(tool_failures) FROM {db}.sessions FINAL")
        .await;
    let rejects: u64 = want["decisions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("|reject"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    let e = &want["by_event"];
    assert_eq!(
        totals[0],
        [
            e["user_prompt"].to_string(),
            e["api_request"].to_string(),
            e["api_error"].to_string(),
            e["tool_decision"].to_string(),
            rejects.to_string(),
            want["tool_results"]["failure"].to_string()
        ],
        "{context}: session totals"
    );
    let one = &want["one_prompt"];
    let sequence: Vec<String> = rows(
        config,
        &format!(
            "SELECT event_name FROM {{db}}.events FINAL WHERE prompt_id = '{}' ORDER BY timestamp_ns, event_sequence",
            one["prompt_id"].as_str().unwrap()
        ),
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    let want_seq: Vec<String> = serde_json::from_value(one["events"].clone()).unwrap();
    assert_eq!(sequence, want_seq, "{context}: one prompt's events");
}
