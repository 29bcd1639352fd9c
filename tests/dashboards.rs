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

use std::collections::BTreeSet;
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

/// Static rules for a ClickHouse panel query, before it is run.
fn check_sql_rules(label: &str, raw: &str) {
    assert!(
        raw.contains("tenant = '${tenant}'") || raw.contains("tenant = ${tenant:singlequote}"),
        "{label}: every query is scoped to the selected tenant:\n{raw}"
    );
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

/// One ClickHouse query of a dashboard: where it comes from and the panel it feeds.
struct Query<'a> {
    label: String,
    panel: &'a Value,
    target: &'a Value,
    sql: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_panels_run_on_the_corpus() {
    let expected = expected();

    // The corpus, encoded by the consumer's fast path, in a fresh migrated 18.16 database.
    let mut corpus = common::clickhouse::load_corpus().await;
    assert_eq!(corpus.events as u64, expected["events"].as_u64().unwrap());
    let ch = common::clickhouse::shared();
    let db = corpus.db.clone();
    // Budgets for the Budgets panel (the same rows on both engines), and cost_daily's
    // attribution columns until migration 006 makes them.
    let mut config = cowork_ingest::config::Config::default();
    config.clickhouse.url = ch.url.clone();
    config.clickhouse.database = db.clone();
    let mut setup = common::clickhouse::add_attribution_columns(&config).await;
    let budgets = format!(
        "INSERT INTO {db}.budgets (tenant, scope, scope_value, monthly_usd, updated_at, version, deleted) VALUES \
         ('{TENANT}', 'tenant', '', 100, '2026-12-01 00:00:00', 1, 0), \
         ('{TENANT}', 'user', '{}', 20.5, '2026-12-01 00:00:00', 1, 0), \
         ('{TENANT}', 'team', 'removed', 5, '2026-12-01 00:00:00', 2, 1)",
        USERS[0]
    );
    common::clickhouse::query(&ch.url, &budgets).await;
    setup.push(budgets);
    corpus.refresh.extend(setup);
    let run = |sql: String| {
        let url = ch.url.clone();
        let db = db.clone();
        async move {
            let sql = sql.replace("cowork.", &format!("{db}."));
            let text = common::clickhouse::query(&url, &format!("{sql}\nFORMAT TabSeparatedWithNamesAndTypes")).await;
            Answer::parse(&text)
        }
    };

    // Template variables: tenant first, then user (which depends on it).
    let mut corpus_users: Vec<String> = expected["cost_by_user"].as_object().unwrap().keys().cloned().collect();
    corpus_users.sort();
    for u in USERS {
        assert!(corpus_users.iter().any(|c| c == u), "{u} is a corpus user");
    }
    let all = dashboards();
    let mut variable_queries = 0;
    for (file, d) in &all {
        let mut vars = Vars::new();
        for v in d["templating"]["list"].as_array().unwrap() {
            let name = str_of(&v["name"], "variable name").to_string();
            match str_of(&v["type"], "variable type") {
                "query" => {
                    let raw = v["query"]
                        .as_str()
                        .or_else(|| v["query"]["rawSql"].as_str())
                        .unwrap_or_else(|| panic!("{file}: variable {name} has a query"));
                    let a = run(render(raw, &vars)).await;
                    let got = a.column(&a.names[0]);
                    variable_queries += 1;
                    let want: Vec<String> = match name.as_str() {
                        "tenant" => vec![TENANT.to_string()],
                        "user" => corpus_users.clone(),
                        other => panic!("{file}: no expectation for variable {other}"),
                    };
                    assert_eq!(got, want, "{file}: variable {name} lists {want:?}");
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
    eprintln!("{variable_queries} variable queries return the corpus' tenant and users");

    // Every ClickHouse panel, under two selections: two users, and All.
    let selections: [(&str, VarValue); 2] = [
        (
            "two users",
            VarValue::Many(USERS.iter().map(|u| u.to_string()).collect()),
        ),
        ("all users", VarValue::All(corpus_users.clone())),
    ];
    let mut queries: Vec<Query> = Vec::new();
    for (file, d) in &all {
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
                        ("prompt_id".to_string(), VarValue::One(PROMPT_ID.to_string())),
                    ]
                    .into_iter()
                    .collect();
                    queries.push(Query {
                        label: format!("{base} ({selection})"),
                        panel: p,
                        target: t,
                        sql: render(raw, &vars),
                    });
                }
            }
        }
    }
    assert!(
        queries.len() >= 40,
        "the five ClickHouse dashboards have their panels ({})",
        queries.len()
    );

    let mut answers = Vec::new();
    for q in &queries {
        let a = run(q.sql.clone()).await;
        check_shape(&q.label, q.panel, q.target, &a);
        answers.push(a);
    }
    eprintln!("{} ClickHouse panel queries return rows on 18.16", queries.len());

    // A few panels must say exactly what expected.json says.
    let answer = |title: &str, selection: &str| -> &Answer {
        let i = queries
            .iter()
            .position(|q| q.panel["title"] == title && q.label.ends_with(&format!("({selection})")))
            .unwrap_or_else(|| panic!("a panel titled {title}"));
        &answers[i]
    };
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

    // The same queries on current ClickHouse (chdb) return the same answers.
    let chdb_queries: Vec<String> = queries
        .iter()
        .map(|q| {
            format!(
                "{}\nFORMAT TabSeparatedWithNamesAndTypes",
                q.sql.replace("cowork.", &format!("{db}."))
            )
        })
        .collect();
    let (version, results) = common::clickhouse::run_on_chdb(&corpus, &chdb_queries);
    assert_eq!(results.len(), queries.len());
    for ((q, old), new) in queries.iter().zip(&answers).zip(results) {
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
        "{} ClickHouse panel queries agree on 18.16 and {version}",
        queries.len()
    );
}
