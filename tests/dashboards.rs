//! The Grafana dashboards in `grafana/dashboards/` without Grafana: every ClickHouse panel query
//! is expanded the way the grafana-clickhouse-datasource plugin expands it (`$__conditionalAll`
//! in the browser, then template variables, then the backend's macros), run on ClickHouse 18.16
//! and on current ClickHouse (chdb) over the corpus, and must return rows with the columns its
//! panel uses, the same on both. Every Prometheus expression must pass `promtool check rules`.
//! The JSON models themselves must be well formed: unique uids and titles, every panel on a
//! provisioned data source and with a description.

mod common;
#[path = "common/grafana.rs"]
mod grafana;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use grafana::{dashboards, Range, VarValue, Vars};
use serde_json::Value;

const CLICKHOUSE_UID: &str = "clickhouse";
const PROMETHEUS_UID: &str = "prometheus";

/// The dashboard time range: 2026-11-17 00:00:00 to 2026-12-04 00:00:00 UTC (the log corpus is
/// dated 2026-11-18, the captured metrics and spans 2026-12-01 and 2026-12-02).
const FROM_S: i64 = 1_794_873_600;
const TO_S: i64 = 1_796_342_400;
const FROM_DATE: &str = "2026-11-17";
const TO_DATE: &str = "2026-12-04";
/// `$__interval_s`: one-minute buckets spread the corpus' seven minutes over several points.
const INTERVAL_S: u32 = 60;
const TENANT: &str = "acme";
const PROMPT_ID: &str = "df71b0aa-4a28-4781-9670-ca94b4f15781";
/// Two users picked for the multi-value `user` variable; one name needs quote escaping.
const USERS: [&str; 2] = ["chen.smith@acme.example", "fay.o'neil@acme.example"];
/// The same for the events corpus (`tests/fixtures/events`): between them they have every kind
/// of row the Audit dashboard shows.
const EVENT_USERS: [&str; 2] = ["ana.müller@acme.example", "bo.o'neil@acme.example"];
/// A prompt of the events corpus, with an API request, a tool decision and a tool result.
const EVENT_PROMPT_ID: &str = "4f26c61c-4350-40a2-96f0-8de15641fdaa";

/// Tables whose rows are only exact when read with FINAL (the views apply it themselves).
const DEDUPLICATED_TABLES: [cowork_ingest::clickhouse::Table; cowork_ingest::clickhouse::Table::COUNT] =
    cowork_ingest::clickhouse::Table::ALL;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(common::fixtures().join("expected.json")).unwrap()).unwrap()
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    // Panels inside collapsed rows live in the row's own `panels`.
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("dashboard has panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

// ------------------------------------------------------------------------------------------------
// What Grafana and the plugin do to a query before ClickHouse sees it.
// ------------------------------------------------------------------------------------------------

/// The dashboard time range as the plugin's macros see it.
const RANGE: Range = Range {
    from_s: FROM_S,
    to_s: TO_S,
    from_date: FROM_DATE,
    to_date: TO_DATE,
    interval_s: INTERVAL_S,
};

/// The SQL ClickHouse receives for `raw` under `vars`.
fn render(raw: &str, vars: &Vars) -> String {
    grafana::render(raw, vars, &RANGE)
}

// ------------------------------------------------------------------------------------------------
// Results.
// ------------------------------------------------------------------------------------------------

struct Answer {
    names: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Answer {
    fn parse(text: &str) -> Answer {
        let mut lines = text
            .lines()
            .map(|l| l.split('\t').map(common::clickhouse::unescape).collect::<Vec<_>>());
        let names = lines.next().expect("a header line");
        let types = lines.next().expect("a types line");
        Answer {
            names,
            types,
            rows: lines.collect(),
        }
    }

    fn column(&self, name: &str) -> Vec<String> {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.names));
        self.rows.iter().map(|r| r[i].clone()).collect()
    }
}

fn is_numeric(ty: &str) -> bool {
    let ty = ty.strip_prefix("Nullable(").unwrap_or(ty);
    ["UInt", "Int", "Float", "Decimal"].iter().any(|p| ty.starts_with(p))
}

/// The columns `panel` refers to by name: field overrides, a bar chart's x field, a bar gauge's
/// field regex when it is a plain `/^name$/`.
fn referenced_columns(panel: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in panel["fieldConfig"]["overrides"].as_array().into_iter().flatten() {
        if o["matcher"]["id"] == "byName" {
            out.insert(str_of(&o["matcher"]["options"], "override name").to_string());
        }
    }
    if let Some(x) = panel["options"]["xField"].as_str() {
        out.insert(x.to_string());
    }
    if let Some(f) = panel["options"]["reduceOptions"]["fields"].as_str() {
        if let Some(name) = f.strip_prefix("/^").and_then(|f| f.strip_suffix("$/")) {
            out.insert(name.to_string());
        }
    }
    out
}

/// What a panel of `panel`'s type needs from its query's answer.
fn check_shape(label: &str, panel: &Value, target: &Value, a: &Answer) {
    assert!(
        !a.names.is_empty() && a.names.iter().all(|n| !n.is_empty()),
        "{label}: empty header {:?}",
        a.names
    );
    assert!(!a.rows.is_empty(), "{label}: no rows");
    for c in referenced_columns(panel) {
        assert!(
            a.names.contains(&c),
            "{label}: the panel uses column {c}, the query returns {:?}",
            a.names
        );
    }
    let kind = str_of(&panel["type"], "panel type");
    let series = target["format"] == 0 || target["queryType"] == "timeSeries";
    assert_eq!(
        kind == "timeseries",
        series,
        "{label}: time series panels and only they ask for time series"
    );
    match kind {
        "timeseries" => {
            assert_eq!(
                a.names[0], "t",
                "{label}: a time series query returns its time column `t` first"
            );
            assert!(
                a.types[0].starts_with("DateTime"),
                "{label}: `t` is a DateTime, not {}",
                a.types[0]
            );
            let rest = &a.types[1..];
            assert!(
                rest.iter().any(|t| is_numeric(t)),
                "{label}: no value column in {:?}",
                a.types
            );
            assert!(
                rest.iter().all(|t| is_numeric(t) || t == "String"),
                "{label}: besides `t`, only values and String labels: {:?}",
                a.types
            );
            let times = a.column("t");
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "{label}: rows are ordered by `t`"
            );
        }
        "stat" => assert!(
            a.types.iter().all(|t| is_numeric(t)),
            "{label}: a stat shows numbers, got {:?}",
            a.types
        ),
        "barchart" => {
            let x = str_of(&panel["options"]["xField"], "xField");
            let i = a.names.iter().position(|n| n == x).unwrap();
            assert_eq!(a.types[i], "String", "{label}: bar chart x field {x}");
            for (n, t) in a.names.iter().zip(&a.types) {
                assert!(n == x || is_numeric(t), "{label}: bar {n} is {t}, not a number");
            }
        }
        "bargauge" => {
            assert!(
                a.types.iter().any(|t| t == "String"),
                "{label}: a bar gauge names its bars"
            );
            assert!(
                a.types.iter().any(|t| is_numeric(t)),
                "{label}: a bar gauge needs values"
            );
        }
        "table" => {}
        other => panic!("{label}: panel type {other} is not checked by this test"),
    }
}

/// The one way a query may name the tenant: `${tenant:singlequote}`, which Grafana renders as a
/// quoted literal with its `'` escaped. Any other reference (`$tenant`, `${tenant}`, `'${tenant}'`,
/// `[[tenant]]`, another format) pastes the value into the SQL as it is.
const TENANT_LITERAL: &str = "${tenant:singlequote}";

/// What is wrong with how `raw` names the tenant, if anything: every reference to the `tenant`
/// variable must be [`TENANT_LITERAL`], never quoted by hand.
fn tenant_quoting_problem(raw: &str) -> Option<String> {
    let mut at = 0;
    while let Some(i) = raw[at..].find(['$', '[']) {
        let i = at + i;
        let tail = &raw[i..];
        let named = ["$tenant", "${tenant", "[[tenant"].iter().any(|p| {
            tail.starts_with(p) && !tail[p.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        });
        if named && !tail.starts_with(TENANT_LITERAL) {
            return Some(format!(
                "name the tenant as {TENANT_LITERAL} (a quoted, escaped literal), not `{}`",
                &tail[..tail.len().min(20)]
            ));
        }
        if named && (raw[..i].ends_with('\'') || tail[TENANT_LITERAL.len()..].starts_with('\'')) {
            return Some(format!(
                "{TENANT_LITERAL} is quoted already; '{TENANT_LITERAL}' unquotes it"
            ));
        }
        at = i + 1;
    }
    None
}

fn check_tenant_quoting(label: &str, raw: &str) {
    if let Some(problem) = tenant_quoting_problem(raw) {
        panic!("{label}: {problem}:\n{raw}");
    }
}

/// Static rules for a ClickHouse panel query, before it is run.
fn check_sql_rules(label: &str, raw: &str) {
    assert!(
        raw.contains(&format!("tenant = {TENANT_LITERAL}")),
        "{label}: every query is scoped to the selected tenant:\n{raw}"
    );
    check_tenant_quoting(label, raw);
    let lower = raw.to_lowercase();
    // Every read of a deduplicated table (base or rollup) collapses copies: with FINAL; or, for
    // a list of base rows, with `LIMIT 1 BY event_id`; or as the set of a `GLOBAL IN (SELECT ...)`
    // lookup, where a copy adds nothing (GLOBAL so that a cluster runs it once); or, for a rollup,
    // by keeping each day's newest refresh (`max(version)`); or as a DISTINCT list of values.
    let rollups = cowork_ingest::clickhouse::tables::Rollup::ALL.map(|r| r.name());
    for table in DEDUPLICATED_TABLES.map(|t| t.name()).into_iter().chain(rollups) {
        let base = DEDUPLICATED_TABLES.iter().any(|t| t.name() == table);
        let needle = format!("from cowork.{table}");
        let newest = !base && lower.contains(&format!("max(version) from cowork.{table} "));
        let listed_once = base
            && (lower.contains("limit 1 by event_id")
                || table == "spans" && lower.contains("limit 1 by trace_id, span_id")
                || table == "metric_points" && lower.contains("limit 1 by point_id"));
        let distinct = lower.trim_start().starts_with("select distinct");
        let mut at = 0;
        while let Some(i) = lower[at..].find(&needle) {
            let after = at + i + needle.len();
            let next = lower[after..].trim_start();
            let word_ends = !lower[after..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let before = &lower[..at + i];
            let set_lookup = before
                .rfind("global in (select ")
                .is_some_and(|j| !before[j..].contains(" from "));
            if word_ends && !set_lookup && !listed_once && !distinct && !newest {
                assert!(
                    next.starts_with("final"),
                    "{label}: read cowork.{table} with FINAL (or another way that collapses copies):\n{raw}"
                );
            }
            at = after;
        }
    }
    // The latency histograms' bounds have one home (rollups::LATENCY_BOUNDS_MS).
    if lower.contains("_ms_le") {
        assert!(
            raw.contains(&cowork_ingest::clickhouse::rollups::latency_bounds_sql()),
            "{label}: a latency percentile uses rollups::LATENCY_BOUNDS_MS:\n{raw}"
        );
    }
    for newer in ["with fill", " over (", "datetime64", "tostartofinterval"] {
        assert!(
            !lower.contains(newer),
            "{label}: `{newer}` does not run on ClickHouse 18.16:\n{raw}"
        );
    }
    // Tables are named with their database, so that the test (and Grafana) read the right one.
    // (An ARRAY JOIN joins arrays, not a table.)
    let words: Vec<&str> = lower.split_whitespace().collect();
    for (i, pair) in words.windows(2).enumerate() {
        let array_join = pair[0] == "join" && i > 0 && words[i - 1] == "array";
        if (pair[0] == "from" || pair[0] == "join") && !array_join {
            assert!(
                pair[1].starts_with("cowork.") || pair[1].starts_with('('),
                "{label}: name the database: `{} {}`:\n{raw}",
                pair[0],
                pair[1]
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Tests.
// ------------------------------------------------------------------------------------------------

#[test]
fn dashboards_are_well_formed() {
    let all = dashboards();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "cost.json",
        "sessions.json",
        "tools.json",
        "errors.json",
        "pipeline.json",
        "productivity.json",
        "audit.json",
    ] {
        assert!(names.contains(&expected), "grafana/dashboards/{expected} exists");
    }
    let datasources = std::fs::read_to_string(root().join("grafana/provisioning/datasources/datasources.yml")).unwrap();
    for uid in [CLICKHOUSE_UID, PROMETHEUS_UID] {
        assert!(
            datasources.contains(&format!("uid: {uid}\n")),
            "datasource {uid} is provisioned"
        );
    }
    assert!(datasources.contains("type: grafana-clickhouse-datasource"));
    let providers = std::fs::read_to_string(root().join("grafana/provisioning/dashboards/dashboards.yml")).unwrap();
    assert!(providers.contains("path: /var/lib/grafana/dashboards"));

    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut total = 0;
    for (file, d) in &all {
        let uid = str_of(&d["uid"], "uid");
        let title = str_of(&d["title"], "title");
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(!title.is_empty(), "{file}: title");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} is used twice");
        assert!(titles.insert(title.to_string()), "{file}: title {title} is used twice");
        assert!(d["schemaVersion"].as_u64().unwrap() >= 36, "{file}: schemaVersion");
        assert!(d["id"].is_null(), "{file}: provisioned dashboards carry no database id");

        let mut ids = BTreeSet::new();
        let mut cells = BTreeSet::new();
        for p in panels(d) {
            total += 1;
            let title = str_of(&p["title"], "panel title");
            let label = format!("{file} / {title}");
            assert!(ids.insert(p["id"].as_u64().unwrap()), "{label}: panel id is unique");
            let uid = str_of(&p["datasource"]["uid"], "panel datasource uid");
            assert!(
                uid == CLICKHOUSE_UID || uid == PROMETHEUS_UID,
                "{label}: datasource uid {uid} is neither {CLICKHOUSE_UID} nor {PROMETHEUS_UID}"
            );
            let ds_type = str_of(&p["datasource"]["type"], "panel datasource type");
            let want_type = if uid == CLICKHOUSE_UID {
                "grafana-clickhouse-datasource"
            } else {
                "prometheus"
            };
            assert_eq!(ds_type, want_type, "{label}: datasource type");
            if *file == "pipeline.json" {
                assert_eq!(
                    uid, PROMETHEUS_UID,
                    "{label}: the pipeline dashboard is Prometheus only"
                );
            } else {
                assert_eq!(uid, CLICKHOUSE_UID, "{label}: the usage dashboards read ClickHouse");
            }
            let description = p["description"].as_str().unwrap_or_default().trim();
            assert!(
                !description.is_empty(),
                "{label}: every panel says what question it answers"
            );
            assert!(
                description.ends_with('?'),
                "{label}: the description is a question: {description}"
            );
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{label}: has a query");
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"], p["datasource"]["uid"],
                    "{label}: target datasource"
                );
                if uid == CLICKHOUSE_UID {
                    assert_eq!(t["editorType"], "sql", "{label}: raw SQL");
                    assert!(
                        t["rawSql"].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{label}: rawSql"
                    );
                    check_tenant_quoting(&label, t["rawSql"].as_str().unwrap());
                } else {
                    assert!(
                        t["expr"].as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{label}: expr"
                    );
                }
            }
            // The grid: inside 24 columns, no two panels on the same cell.
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(w > 0 && h > 0 && x + w <= 24, "{label}: gridPos {g}");
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{label}: overlaps another panel at {cx},{cy}");
                }
            }
        }

        // Template variables: ClickHouse dashboards have `tenant` and a multi-value `user`.
        let vars = d["templating"]["list"].as_array().unwrap();
        let var = |name: &str| vars.iter().find(|v| v["name"] == name);
        for v in vars {
            if let Some(q) = v["query"].as_str().or_else(|| v["query"]["rawSql"].as_str()) {
                check_tenant_quoting(&format!("{file}: variable {}", v["name"]), q);
            }
        }
        if *file != "pipeline.json" {
            let tenant = var("tenant").unwrap_or_else(|| panic!("{file}: variable tenant"));
            assert_eq!(tenant["datasource"]["uid"], CLICKHOUSE_UID);
            assert_eq!(tenant["multi"], false, "{file}: one tenant at a time");
            let user = var("user").unwrap_or_else(|| panic!("{file}: variable user"));
            assert_eq!(user["datasource"]["uid"], CLICKHOUSE_UID);
            assert_eq!(user["multi"], true, "{file}: several users");
            assert_eq!(user["includeAll"], true, "{file}: All users");
            assert!(
                user["allValue"].is_null(),
                "{file}: All must stay $__all for $__conditionalAll"
            );
        }
    }
    let sessions = &all.iter().find(|(n, _)| n == "sessions.json").unwrap().1;
    let prompt = sessions["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "prompt_id")
        .expect("sessions.json: variable prompt_id");
    assert_eq!(prompt["type"], "textbox");
    eprintln!("{} dashboards, {total} panels", all.len());
}

#[test]
fn the_tenant_is_a_quoted_escaped_literal() {
    let vars: Vars = [("tenant".to_string(), VarValue::One("o'brien".to_string()))]
        .into_iter()
        .collect();
    // Grafana's singlequote format: the value in single quotes, each `'` in it as `\'`.
    assert_eq!(
        render("WHERE tenant = ${tenant:singlequote}", &vars),
        "WHERE tenant = 'o\\'brien'"
    );
    // The forms the dashboards may not use.
    for bad in [
        "WHERE tenant = '${tenant}'",
        "WHERE tenant = '$tenant'",
        "WHERE tenant = $tenant",
        "WHERE tenant = [[tenant]]",
        "WHERE tenant = ${tenant:raw}",
        "WHERE tenant = '${tenant:singlequote}'",
    ] {
        assert!(tenant_quoting_problem(bad).is_some(), "{bad} is refused");
    }
    assert_eq!(
        tenant_quoting_problem("WHERE tenant = ${tenant:singlequote} AND tenant_x = $tenants"),
        None
    );
}

#[test]
fn prometheus_expressions_are_valid_promql() {
    let mut exprs = BTreeSet::new();
    fn collect(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(s)) => {
                            out.insert(s.clone());
                        }
                        _ => collect(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    for (file, d) in dashboards() {
        for p in panels(&d) {
            if p["datasource"]["uid"] != PROMETHEUS_UID {
                continue;
            }
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: a Prometheus target has an expr"));
                exprs.insert(expr.to_string());
            }
        }
        if file == "pipeline.json" {
            collect(&d, &mut exprs);
        }
    }
    assert!(
        exprs.len() >= 10,
        "the pipeline dashboard has its Prometheus queries ({})",
        exprs.len()
    );
    let grafana_vars = [
        ("$__rate_interval", "5m"),
        ("${__rate_interval}", "5m"),
        ("$__interval", "1m"),
        ("${__interval}", "1m"),
        ("$__range", "1h"),
        ("${__range}", "1h"),
    ];
    let exprs: Vec<String> = exprs
        .into_iter()
        .map(|e| {
            let mut e = e;
            for (var, value) in grafana_vars {
                e = e.replace(var, value);
            }
            assert!(!e.contains('$'), "an unknown Grafana variable is left in {e}");
            e
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, exprs: &[String]| -> std::process::Output {
        let mut yaml = String::from("groups:\n  - name: dashboards\n    rules:\n");
        for (i, e) in exprs.iter().enumerate() {
            // A JSON string is a valid YAML double-quoted scalar.
            yaml.push_str(&format!(
                "      - record: dashboard:expr_{i}\n        expr: {}\n",
                serde_json::to_string(e).unwrap()
            ));
        }
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        std::process::Command::new(promtool())
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .expect("promtool runs (Debian's prometheus package)")
    };
    // promtool does reject invalid PromQL, so its success below means something.
    let broken = check("broken.yml", &["sum(rate(cowork_edge_requests_total[5m])".to_string()]);
    assert!(!broken.status.success(), "promtool accepts an unbalanced expression");

    let out = check("dashboards.yml", &exprs);
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{} Prometheus expressions pass promtool", exprs.len());
}

fn promtool() -> PathBuf {
    let path = Path::new("/usr/bin/promtool");
    if path.exists() {
        return path.to_path_buf();
    }
    PathBuf::from("promtool")
}

/// One ClickHouse query of a dashboard: where it comes from, the panel it feeds and the
/// dataset it runs on.
struct Query<'a> {
    label: String,
    dataset: usize,
    panel: &'a Value,
    target: &'a Value,
    sql: String,
}

/// A database the panels run on, and what its variables must list.
struct Dataset {
    name: &'static str,
    corpus: common::clickhouse::LoadedCorpus,
    /// The dashboards whose panels run on it.
    dashboards: &'static [&'static str],
    /// What the `user` variable lists: the identities of the sessions, sorted.
    users: Vec<String>,
    /// The "two users" selection.
    two: [&'static str; 2],
    prompt_id: &'static str,
}

impl Dataset {
    fn runs(&self, file: &str) -> bool {
        self.dashboards.is_empty() || self.dashboards.contains(&file)
    }
}

/// The log corpus' users: every record names its user by `user.email`.
fn corpus_users(expected: &Value) -> Vec<String> {
    let mut users: Vec<String> = expected["cost_by_user"].as_object().unwrap().keys().cloned().collect();
    users.sort();
    users
}

/// The events corpus (`tests/fixtures/events`): the identities of its sessions, sorted.
fn event_users(expected: &Value) -> Vec<String> {
    let users: BTreeSet<String> = expected["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["session_id"] != "" && e["user_identity"] != "")
        .map(|e| e["user_identity"].as_str().unwrap().to_string())
        .collect();
    users.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_panels_run_on_the_corpus() {
    let expected = expected();
    let events_dir = root().join("tests/fixtures/events");
    let events_expected: Value =
        serde_json::from_slice(&std::fs::read(events_dir.join("expected.json")).unwrap()).unwrap();

    // Two databases on the shared 18.16 server, each encoded by the consumer's fast path and
    // migrated: the log corpus with the captured metrics and spans (every dashboard but Audit),
    // and the events corpus, every documented event kind with its people and teams (Audit, and
    // the cost and sessions dashboards again, for their attribution and version panels).
    let mut datasets = [
        Dataset {
            name: "corpus",
            corpus: common::clickhouse::load_corpus().await,
            dashboards: &[
                "cost.json",
                "errors.json",
                "productivity.json",
                "sessions.json",
                "tools.json",
            ],
            users: corpus_users(&expected),
            two: USERS,
            prompt_id: PROMPT_ID,
        },
        Dataset {
            name: "events",
            corpus: common::clickhouse::load_bodies(TENANT, &common::corpus_at(&events_dir, "proto")).await,
            dashboards: &["audit.json", "cost.json", "sessions.json"],
            users: event_users(&events_expected),
            two: EVENT_USERS,
            prompt_id: EVENT_PROMPT_ID,
        },
    ];
    let ch = common::clickhouse::shared();
    // Budgets for the Budgets panel (the same rows on both engines).
    for dataset in &mut datasets {
        let budgets = format!(
            "INSERT INTO {}.budgets (tenant, scope, scope_value, monthly_usd, updated_at, version, deleted) VALUES \
             ('{TENANT}', 'tenant', '', 100, '2026-12-01 00:00:00', 1, 0), \
             ('{TENANT}', 'user', '{}', 20.5, '2026-12-01 00:00:00', 1, 0), \
             ('{TENANT}', 'team', 'removed', 5, '2026-12-01 00:00:00', 2, 1)",
            dataset.corpus.db, USERS[0]
        );
        common::clickhouse::query(&ch.url, &budgets).await;
        dataset.corpus.refresh.push(budgets);
    }
    let run = |dataset: &Dataset, sql: String| {
        let url = ch.url.clone();
        let db = dataset.corpus.db.clone();
        async move {
            let sql = sql.replace("cowork.", &format!("{db}."));
            let text = common::clickhouse::query(&url, &format!("{sql}\nFORMAT TabSeparatedWithNamesAndTypes")).await;
            Answer::parse(&text)
        }
    };
    let stored = run(
        &datasets[0],
        format!("SELECT count() AS n FROM cowork.events FINAL WHERE tenant = '{TENANT}'"),
    )
    .await;
    assert_eq!(
        stored.column("n")[0],
        expected["events"].to_string(),
        "the log corpus is stored"
    );
    let stored = run(
        &datasets[1],
        format!("SELECT count() AS n FROM cowork.events FINAL WHERE tenant = '{TENANT}'"),
    )
    .await;
    assert_eq!(
        stored.column("n")[0],
        events_expected["counts"]["records"].to_string(),
        "the events corpus is stored"
    );
    let all = dashboards();
    for (file, _) in &all {
        assert!(
            datasets.iter().any(|d| d.runs(file)) || file == "pipeline.json",
            "{file}: no dataset runs its panels"
        );
    }

    // Template variables: tenant first, then user (which depends on it).
    let mut variable_queries = 0;
    for dataset in &datasets {
        for u in dataset.two {
            assert!(
                dataset.users.iter().any(|c| c == u),
                "{u} is a user of the {} dataset",
                dataset.name
            );
        }
        for (file, d) in all.iter().filter(|(f, _)| dataset.runs(f)) {
            let mut vars = Vars::new();
            for v in d["templating"]["list"].as_array().unwrap() {
                let name = str_of(&v["name"], "variable name").to_string();
                match str_of(&v["type"], "variable type") {
                    "query" => {
                        let raw = v["query"]
                            .as_str()
                            .or_else(|| v["query"]["rawSql"].as_str())
                            .unwrap_or_else(|| panic!("{file}: variable {name} has a query"));
                        check_tenant_quoting(&format!("{file}: variable {name}"), raw);
                        let a = run(dataset, render(raw, &vars)).await;
                        let got = a.column(&a.names[0]);
                        variable_queries += 1;
                        let want: Vec<String> = match name.as_str() {
                            "tenant" => vec![TENANT.to_string()],
                            "user" => dataset.users.clone(),
                            other => panic!("{file}: no expectation for variable {other}"),
                        };
                        assert_eq!(got, want, "{file} on {}: variable {name} lists {want:?}", dataset.name);
                        // Its default selection: All for a multi-value variable, else the first value.
                        let value = if v["multi"] == true {
                            VarValue::All(got)
                        } else {
                            VarValue::One(got[0].clone())
                        };
                        vars.insert(name, value);
                    }
                    "textbox" => {
                        vars.insert(name, VarValue::One(String::new()));
                    }
                    other => panic!("{file}: variable type {other} is not checked by this test"),
                }
            }
        }
    }
    eprintln!("{variable_queries} variable queries return the datasets' tenant and users");

    // Every ClickHouse panel of a dataset's dashboards, under two selections: two users, and All.
    let mut queries: Vec<Query> = Vec::new();
    for (n, dataset) in datasets.iter().enumerate() {
        let selections: [(&str, VarValue); 2] = [
            (
                "two users",
                VarValue::Many(dataset.two.iter().map(|u| u.to_string()).collect()),
            ),
            ("all users", VarValue::All(dataset.users.clone())),
        ];
        for (file, d) in all.iter().filter(|(f, _)| dataset.runs(f)) {
            for p in panels(d) {
                if p["datasource"]["uid"] != CLICKHOUSE_UID {
                    continue;
                }
                for t in p["targets"].as_array().unwrap() {
                    let raw = str_of(&t["rawSql"], "rawSql");
                    let base = format!("{file} / {} / {}", p["title"].as_str().unwrap(), t["refId"]);
                    check_sql_rules(&base, raw);
                    for (selection, users) in &selections {
                        let vars: Vars = [
                            ("tenant".to_string(), VarValue::One(TENANT.to_string())),
                            ("user".to_string(), users.clone()),
                            ("prompt_id".to_string(), VarValue::One(dataset.prompt_id.to_string())),
                        ]
                        .into_iter()
                        .collect();
                        queries.push(Query {
                            label: format!("{base} ({selection}, {})", dataset.name),
                            dataset: n,
                            panel: p,
                            target: t,
                            sql: render(raw, &vars),
                        });
                    }
                }
            }
        }
    }
    assert!(
        queries.len() >= 40,
        "the ClickHouse dashboards have their panels ({})",
        queries.len()
    );

    let mut answers = Vec::new();
    for q in &queries {
        let a = run(&datasets[q.dataset], q.sql.clone()).await;
        check_shape(&q.label, q.panel, q.target, &a);
        answers.push(a);
    }
    eprintln!("{} ClickHouse panel queries return rows on 18.16", queries.len());

    // A few panels must say exactly what expected.json says.
    let answer_on = |dataset: &str, title: &str, selection: &str| -> &Answer {
        let i = queries
            .iter()
            .position(|q| q.panel["title"] == title && q.label.ends_with(&format!("({selection}, {dataset})")))
            .unwrap_or_else(|| panic!("a panel titled {title} on {dataset}"));
        &answers[i]
    };
    let answer = |title: &str, selection: &str| answer_on("corpus", title, selection);
    let number = |a: &Answer, col: &str| -> f64 { a.column(col)[0].parse().unwrap() };
    let total_cost: f64 = expected["cost_by_user"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((number(answer("Total cost", "all users"), "cost_usd") - total_cost).abs() < 1e-6);
    let two_cost: f64 = USERS
        .iter()
        .map(|u| expected["cost_by_user"][u].as_f64().unwrap())
        .sum();
    assert!((number(answer("Total cost", "two users"), "cost_usd") - two_cost).abs() < 1e-6);
    assert_eq!(
        number(answer("Sessions by product", "all users"), "total") as u64,
        expected["sessions"].as_u64().unwrap()
    );
    assert_eq!(
        number(answer("API errors", "all users"), "errors") as u64,
        expected["by_event"]["api_error"].as_u64().unwrap()
    );
    assert_eq!(
        number(answer("Tool results", "all users"), "failures") as u64,
        expected["tool_results"]["failure"].as_u64().unwrap()
    );
    let replay = answer("Prompt replay: ${prompt_id}", "all users");
    let events: Vec<String> = expected["one_prompt"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        replay.column("event_name"),
        events,
        "the replay is the prompt's events in order"
    );
    assert_eq!(replay.column("offset_ms")[0].parse::<f64>().unwrap(), 0.0);
    for (name, model) in replay.column("event_name").iter().zip(replay.column("model")) {
        assert_eq!(
            name == "api_request",
            !model.is_empty(),
            "details are joined to their events"
        );
    }

    // Budgets: the live ones, against the spend of the month the range ends in (December,
    // when the corpus has none).
    let budgets = answer("Budgets", "all users");
    assert_eq!(budgets.column("scope"), ["tenant", "user"]);
    assert_eq!(budgets.column("scope_value"), ["", USERS[0]]);
    assert_eq!(budgets.column("budget_usd"), ["100", "20.5"]);
    assert_eq!(budgets.column("spend_usd"), ["0", "0"]);
    assert_eq!(budgets.column("projected_ratio"), ["0", "0"]);

    // The Productivity dashboard gives the captured SDK exports' totals.
    let signals: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/signals/expected-delta.json")).unwrap())
            .unwrap();
    let totals = &signals["totals"];
    let lines = answer("Lines of code", "all users");
    assert_eq!(number(lines, "added"), totals["lines_added"].as_f64().unwrap());
    assert_eq!(number(lines, "removed"), totals["lines_removed"].as_f64().unwrap());
    let output = answer("Commits and pull requests", "all users");
    assert_eq!(number(output, "commits"), totals["commits"].as_f64().unwrap());
    assert_eq!(
        number(output, "pull_requests"),
        totals["pull_requests"].as_f64().unwrap()
    );
    let per_pr = answer("Cost per PR and per commit", "all users");
    let cost = totals["cost_usd"].as_f64().unwrap();
    assert!((number(per_pr, "cost_usd") - cost).abs() < 1e-6);
    assert!((number(per_pr, "cost_per_pr") - cost / totals["pull_requests"].as_f64().unwrap()).abs() < 1e-6);
    let active = answer("Active time", "all users");
    assert!((number(active, "cli_hours") - totals["active_time_cli_s"].as_f64().unwrap() / 3600.0).abs() < 1e-3);
    let blocked = answer("Time blocked on permission prompts", "all users");
    assert_eq!(
        number(blocked, "prompts") as u64,
        signals["spans"]["by_name"]["claude_code.tool.blocked_on_user"]
            .as_u64()
            .unwrap()
    );
    let ttft = answer("Time to first token by model", "all users");
    for (model, requests) in ttft.column("model").iter().zip(ttft.column("requests")) {
        assert_eq!(
            requests.parse::<u64>().unwrap(),
            signals["spans"]["ttft_ms_by_model"][model]["count"].as_u64().unwrap(),
            "TTFT requests of {model}"
        );
    }
    let starts = answer("Sessions by start type", "all users");
    let by_start: u64 = starts
        .column("sessions")
        .iter()
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(by_start, totals["sessions"].as_u64().unwrap());

    // The cache and latency panels agree with the log corpus' tokens and requests per model.
    let tokens = expected["tokens_by_model"].as_object().unwrap();
    let latency = answer("API latency by model", "all users");
    let mut requests: BTreeMap<String, u64> = BTreeMap::new();
    for (model, n) in latency.column("model").into_iter().zip(latency.column("requests")) {
        requests.insert(model, n.parse().unwrap());
    }
    let want: BTreeMap<String, u64> = tokens
        .iter()
        .map(|(m, t)| (m.clone(), t["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(requests, want, "API latency by model counts every request");
    for p95 in latency.column("p95_ms") {
        assert!(p95.parse::<f64>().unwrap() > 0.0, "a p95 from the histogram: {p95}");
    }
    let cache = answer("Cache savings by model", "all users");
    let prices = BTreeMap::from([
        ("claude-haiku-4-5-20251001", 1.0),
        ("claude-opus-4-6", 5.0),
        ("claude-sonnet-4-6", 3.0),
    ]);
    for (i, model) in cache.column("model").iter().enumerate() {
        let t = &tokens[model];
        let read = t["cache_read"].as_f64().unwrap();
        assert_eq!(
            cache.column("cache_read_tokens")[i].parse::<f64>().unwrap(),
            read,
            "{model}"
        );
        let price = prices[model.as_str()];
        assert_eq!(
            cache.column("input_price_per_mtok")[i].parse::<f64>().unwrap(),
            price,
            "{model}"
        );
        let saved: f64 = cache.column("saved_usd")[i].parse().unwrap();
        assert!((saved - read * price * 0.9 / 1e6).abs() < 1e-6, "{model} saved {saved}");
    }
    assert_eq!(cache.rows.len(), tokens.len());
    let (mut read, mut prompt) = (0.0, 0.0);
    for t in tokens.values() {
        read += t["cache_read"].as_f64().unwrap();
        prompt +=
            t["input"].as_f64().unwrap() + t["cache_read"].as_f64().unwrap() + t["cache_creation"].as_f64().unwrap();
    }
    let ratio = number(answer("Cache hit ratio and savings", "all users"), "cache_hit_ratio");
    assert!((ratio - read / prompt).abs() < 1e-9, "cache hit ratio {ratio}");

    // The audit and attribution panels say what the events corpus holds.
    let on_events = |title: &str| answer_on("events", title, "all users");
    let rows_of = |table: &str| events_expected[table].as_array().unwrap().clone();
    let count = |table: &str, keep: &dyn Fn(&Value) -> bool| rows_of(table).iter().filter(|r| keep(r)).count() as f64;
    let security = on_events("Security events");
    for (column, want) in [
        (
            "bypass_switches",
            count("permission_mode_changes", &|r| r["to_mode"] == "bypassPermissions"),
        ),
        ("auth_failures", count("auth_events", &|r| r["success"] == false)),
        (
            "mcp_connection_failures",
            count("mcp_server_connections", &|r| r["status"] == "failed"),
        ),
        (
            "third_party_installs",
            count("plugin_installs", &|r| r["marketplace_is_official"] == false),
        ),
        (
            "hook_blocks",
            count("hook_executions", &|r| {
                r["phase"] == "complete" && r["num_blocking"].as_u64().unwrap_or(0) > 0
            }),
        ),
        ("refusals", count("api_refusals", &|_| true)),
        (
            "rejected_tools",
            count("tool_decisions", &|r| r["decision"] == "reject"),
        ),
    ] {
        assert!(want > 0.0, "the events corpus has {column}");
        assert_eq!(number(security, column), want, "Security events: {column}");
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let of = |table: &str, keep: &dyn Fn(&Value) -> bool, column: &str| -> Vec<String> {
        sorted(
            rows_of(table)
                .iter()
                .filter(|r| keep(r))
                .map(|r| r[column].as_str().unwrap().to_string())
                .collect(),
        )
    };
    assert_eq!(
        sorted(on_events("Permission escalations").column("user_identity")),
        of(
            "permission_mode_changes",
            &|r| r["to_mode"] == "bypassPermissions",
            "user_identity"
        ),
        "Permission escalations: who switched to bypassPermissions"
    );
    assert_eq!(
        sorted(on_events("Third-party plugin installs").column("user_identity")),
        of(
            "plugin_installs",
            &|r| r["marketplace_is_official"] == false,
            "user_identity"
        ),
    );
    let commands = on_events("Rejected commands").column("bash_command");
    for c in of("tool_decisions", &|r| r["decision"] == "reject", "bash_command") {
        assert!(commands.contains(&c), "Rejected commands shows {c:?}: {commands:?}");
    }

    // Cost by team, and by subagent, skill, plugin, MCP server and effort, are the requests'.
    let money = |a: &Answer, keys: &[&str]| -> BTreeMap<Vec<String>, f64> {
        let mut out = BTreeMap::new();
        for (i, c) in a.column("cost_usd").iter().enumerate() {
            let key: Vec<String> = keys.iter().map(|k| a.column(k)[i].clone()).collect();
            assert!(
                out.insert(key, c.parse::<f64>().unwrap()).is_none(),
                "one row per {keys:?}"
            );
        }
        out
    };
    let close = |what: &str, got: &BTreeMap<Vec<String>, f64>, want: &BTreeMap<Vec<String>, f64>| {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{what}"
        );
        for (k, v) in want {
            assert!((got[k] - v).abs() < 1e-6, "{what} {k:?}: {} against {v}", got[k]);
        }
    };
    let text = |r: &Value, key: &str| r[key].as_str().unwrap().to_string();
    let or = |v: String, none: &str| if v.is_empty() { none.to_string() } else { v };
    let mut by_team = BTreeMap::new();
    let mut by_attribution = BTreeMap::new();
    for r in rows_of("api_requests") {
        let cost = r["cost_usd"].as_f64().unwrap();
        *by_team.entry(vec![or(text(&r, "team"), "(no team)")]).or_insert(0.0) += cost;
        let plugin = match (text(&r, "plugin_name"), text(&r, "marketplace_name")) {
            (p, _) if p.is_empty() => p,
            (p, m) if m.is_empty() => p,
            (p, m) => format!("{p}@{m}"),
        };
        for (kind, name) in [
            ("subagent", text(&r, "agent_name")),
            ("skill", text(&r, "skill_name")),
            ("plugin", plugin),
            ("mcp_server", text(&r, "mcp_server_name")),
            ("effort", text(&r, "effort")),
        ] {
            *by_attribution
                .entry(vec![kind.to_string(), or(name, "(none)")])
                .or_insert(0.0) += cost;
        }
    }
    close("Cost by team", &money(on_events("Cost by team"), &["team"]), &by_team);
    close(
        "Cost by subagent, skill, plugin and MCP server",
        &money(
            on_events("Cost by subagent, skill, plugin and MCP server"),
            &["kind", "name"],
        ),
        &by_attribution,
    );
    assert!(by_team.len() > 1, "the events corpus has several teams: {by_team:?}");

    // Client versions: each session's app_version (app.version, else service.version).
    let mut versions = BTreeSet::new();
    for e in rows_of("events") {
        if e["session_id"] != "" {
            versions.insert((text(&e, "service_name"), or(text(&e, "app_version"), "(not sent)")));
        }
    }
    let shown = on_events("Client versions in use");
    let got: BTreeSet<(String, String)> = shown
        .column("service_name")
        .into_iter()
        .zip(shown.column("app_version"))
        .collect();
    assert_eq!(got, versions, "Client versions in use");

    // The same queries on current ClickHouse (chdb) return the same answers.
    for (n, dataset) in datasets.iter().enumerate() {
        let db = &dataset.corpus.db;
        let mine: Vec<(&Query, &Answer)> = queries.iter().zip(&answers).filter(|(q, _)| q.dataset == n).collect();
        let chdb_queries: Vec<String> = mine
            .iter()
            .map(|(q, _)| {
                format!(
                    "{}\nFORMAT TabSeparatedWithNamesAndTypes",
                    q.sql.replace("cowork.", &format!("{db}."))
                )
            })
            .collect();
        let (version, results) = common::clickhouse::run_on_chdb(&dataset.corpus, &chdb_queries);
        assert_eq!(results.len(), mine.len());
        for ((q, old), new) in mine.iter().zip(results) {
            let new: Vec<Vec<String>> = new
                .iter()
                .map(|r| r.iter().map(|f| common::clickhouse::unescape(f)).collect())
                .collect();
            assert_eq!(old.names, new[0], "{}: columns on 18.16 and {version}", q.label);
            assert_eq!(
                common::clickhouse::comparable(&old.rows),
                common::clickhouse::comparable(&new[2..]),
                "{}: 18.16 and {version} disagree on:\n{}",
                q.label,
                q.sql
            );
        }
        eprintln!(
            "{} ClickHouse panel queries on the {} dataset agree on 18.16 and {version}",
            mine.len(),
            dataset.name
        );
    }
}
