//! The user directory and the budgets (migration 005) on the real 18.16 server: `directory
//! import` and a re-import that changes a team and drops a user, `budgets set | list | remove`
//! through the CLI, and budgets crossing 80% and 100% of their month: the evaluation, the
//! gauges a running consumer exports, and the alert rules that fire on them (promtool).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cowork_ingest::clickhouse::budgets::{self, Month, Scope, Usd};
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::config::Config;

use common::clickhouse::{self as ch, rows};

const HEADER: &str = "user_identity,team,department,cost_center,manager\n";

/// A migrated database of its own on the shared server, and a config file that points at it.
async fn setup(dir: &Path) -> (Config, PathBuf) {
    let config = ch::migrated(Config::default(), &ch::shared().url).await;
    let path = dir.join("cowork.toml");
    std::fs::write(
        &path,
        format!(
            "[clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n",
            config.clickhouse.url, config.clickhouse.database
        ),
    )
    .unwrap();
    (config, path)
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `cowork-ingest --config CONFIG ARGS`.
fn cli(config: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env_remove("COWORK_CONFIG")
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command line's words (none of them empty or with a space).
fn words(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

fn cli_ok(config: &Path, args: &[&str]) -> Run {
    let run = cli(config, args);
    assert!(
        run.ok,
        "`cowork-ingest {}` failed:\n{}\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

/// `directory list` output as rows of cells (header first).
fn table(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_import_then_a_reimport_replaces_the_tenants_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (config, toml) = setup(dir.path()).await;
    // Two days of acme's spend and one of globex's, whose rollups an import must mark.
    ch::query(
        &config.clickhouse.url,
        &format!(
            "INSERT INTO {}.cost_daily (tenant, day, user_email, model, cost_usd, version) VALUES \
             ('acme', '2026-11-18', 'ana@acme.example', 'm', 1, 1), ('acme', '2026-11-19', 'bo@acme.example', 'm', 1, 1), \
             ('globex', '2026-11-18', 'x@globex.example', 'm', 1, 1)",
            config.clickhouse.database
        ),
    )
    .await;
    let marks = |tenant: &str| {
        let config = config.clone();
        let tenant = tenant.to_string();
        async move {
            rows(
                &config,
                &format!("SELECT count(), uniqExact(day) FROM {{db}}.rollup_dirty WHERE tenant = '{tenant}'"),
            )
            .await[0]
                .clone()
        }
    };

    let first = dir.path().join("first.csv");
    std::fs::write(
        &first,
        format!(
            "{HEADER}ana@acme.example,payments,Engineering,CC-100,cy@acme.example\r\n\
             \"bo@acme.example\", \"Risk, Fraud & Abuse\" ,Engineering,CC-200,\"Cy \"\"the boss\"\"\"\r\n\
             deb@acme.example,payments,Engineering,CC-100,\r\n"
        ),
    )
    .unwrap();
    let run = cli_ok(
        &toml,
        &["directory", "import", first.to_str().unwrap(), "--tenant", "acme"],
    );
    assert_eq!(run.stdout, "added 3, updated 0, removed 0, unchanged 0\n");
    assert!(run.stderr.contains("marked 2 day(s) of cost_daily"), "{}", run.stderr);
    assert_eq!(marks("acme").await, ["2", "2"]);
    // Another tenant's directory is its own.
    std::fs::write(
        dir.path().join("globex.csv"),
        format!("{HEADER}x@globex.example,ops,,,\n"),
    )
    .unwrap();
    cli_ok(
        &toml,
        &[
            "directory",
            "import",
            dir.path().join("globex.csv").to_str().unwrap(),
            "--tenant",
            "globex",
        ],
    );
    let listed = table(&cli_ok(&toml, &["directory", "list", "--tenant", "acme"]).stdout);
    assert_eq!(
        listed[0],
        [
            "user_identity",
            "team",
            "department",
            "cost_center",
            "manager",
            "imported_at"
        ]
    );
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(
        listed[2][..5],
        [
            "bo@acme.example",
            "Risk, Fraud & Abuse",
            "Engineering",
            "CC-200",
            "Cy \"the boss\""
        ]
    );
    assert_eq!(listed[3][4], "-", "an empty manager");

    // A bad file changes nothing and names the line.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{HEADER}ana@acme.example,x,,,\n,y,,,\nana@acme.example,z,,,\n"),
    )
    .unwrap();
    let run = cli(
        &toml,
        &["directory", "import", bad.to_str().unwrap(), "--tenant", "acme"],
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("line 3: user_identity is empty"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("line 4: user_identity `ana@acme.example` is already on line 2"),
        "{}",
        run.stderr
    );
    std::fs::write(&bad, "email,team\n").unwrap();
    let run = cli(
        &toml,
        &["directory", "import", bad.to_str().unwrap(), "--tenant", "acme"],
    );
    assert!(
        run.stderr
            .contains("line 1: the header must be `user_identity,team,department,cost_center,manager`"),
        "{}",
        run.stderr
    );

    // The re-import: bo changes team, deb is gone, eve is new.
    let second = dir.path().join("second.csv");
    std::fs::write(
        &second,
        format!(
            "{HEADER}ana@acme.example,payments,Engineering,CC-100,cy@acme.example\n\
             bo@acme.example,payments,Engineering,CC-100,cy@acme.example\n\
             eve@acme.example,infra,Engineering,CC-300,cy@acme.example\n"
        ),
    )
    .unwrap();
    let run = cli_ok(
        &toml,
        &["directory", "import", second.to_str().unwrap(), "--tenant", "acme"],
    );
    assert_eq!(run.stdout, "added 1, updated 1, removed 1, unchanged 1\n");
    assert_eq!(marks("acme").await, ["4", "2"], "both days marked again");
    assert_eq!(
        marks("globex").await,
        ["1", "1"],
        "globex's own import marked its one day"
    );

    let listed = table(&cli_ok(&toml, &["directory", "list", "--tenant", "acme"]).stdout);
    let teams: Vec<(String, String)> = listed[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let want = [
        ("ana@acme.example", "payments"),
        ("bo@acme.example", "payments"),
        ("eve@acme.example", "infra"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(teams, want);
    // Readers (the rollups) see the same with FINAL, and deb as a tombstone of the new version;
    // every row of the import shares it.
    let live = rows(
        &config,
        "SELECT user_identity, team FROM {db}.user_directory FINAL WHERE tenant = 'acme' AND deleted = 0 ORDER BY user_identity",
    )
    .await;
    assert_eq!(live, want.map(|(a, b)| vec![a, b]));
    let versions = rows(
        &config,
        "SELECT user_identity, deleted, version FROM {db}.user_directory FINAL WHERE tenant = 'acme' ORDER BY user_identity",
    )
    .await;
    assert_eq!(versions.len(), 4);
    assert_eq!(versions[2][..2], ["deb@acme.example", "1"]);
    assert!(versions.iter().all(|r| r[2] == versions[0][2]), "{versions:?}");
    let globex = rows(
        &config,
        "SELECT user_identity, team FROM {db}.user_directory FINAL WHERE tenant = 'globex' AND deleted = 0",
    )
    .await;
    assert_eq!(globex, [["x@globex.example", "ops"]]);

    // The same file again changes nothing and writes nothing.
    let run = cli_ok(
        &toml,
        &["directory", "import", second.to_str().unwrap(), "--tenant", "acme"],
    );
    assert_eq!(run.stdout, "added 0, updated 0, removed 0, unchanged 3\n");
    let newest = rows(
        &config,
        "SELECT toString(max(version)) FROM {db}.user_directory WHERE tenant = 'acme'",
    )
    .await;
    assert_eq!(newest[0][0], versions[0][2], "no new version");
    assert_eq!(marks("acme").await, ["4", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_set_listed_replaced_and_removed_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (config, toml) = setup(dir.path()).await;
    let run = cli_ok(
        &toml,
        &words("budgets set --tenant acme --scope tenant --monthly-usd 5000"),
    );
    assert!(
        run.stderr
            .contains("set the monthly budget of tenant acme to 5000.00 USD (new)"),
        "{}",
        run.stderr
    );
    cli_ok(
        &toml,
        &words("budgets set --tenant acme --scope team --value payments --monthly-usd 1200.5"),
    );
    let run = cli_ok(
        &toml,
        &words("budgets set --tenant acme --scope team --value payments --monthly-usd 1500"),
    );
    assert!(
        run.stderr.contains("to 1500.00 USD (was 1200.50 USD)"),
        "{}",
        run.stderr
    );
    cli_ok(
        &toml,
        &words("budgets set --tenant acme --scope cost_center --value CC-100 --monthly-usd 800.25"),
    );
    cli_ok(
        &toml,
        &words("budgets set --tenant acme --scope user --value ana@acme.example --monthly-usd 300"),
    );
    cli_ok(
        &toml,
        &words("budgets set --tenant globex --scope tenant --monthly-usd 10"),
    );

    let listed = table(&cli_ok(&toml, &["budgets", "list", "--tenant", "acme"]).stdout);
    let short: Vec<Vec<String>> = listed.iter().map(|r| r[..4].to_vec()).collect();
    assert_eq!(
        short,
        [
            ["tenant", "scope", "value", "monthly_usd"],
            ["acme", "cost_center", "CC-100", "800.25"],
            ["acme", "team", "payments", "1500.00"],
            ["acme", "tenant", "-", "5000.00"],
            ["acme", "user", "ana@acme.example", "300.00"],
        ]
    );
    assert_eq!(
        table(&cli_ok(&toml, &["budgets", "list"]).stdout).len(),
        6,
        "every tenant's"
    );

    let run = cli_ok(
        &toml,
        &[
            "budgets", "remove", "--tenant", "acme", "--scope", "team", "--value", "payments",
        ],
    );
    assert!(
        run.stderr
            .contains("removed the monthly budget of team \"payments\" in tenant acme (1500.00 USD)"),
        "{}",
        run.stderr
    );
    let listed = table(&cli_ok(&toml, &["budgets", "list", "--tenant", "acme"]).stdout);
    assert!(listed.iter().all(|r| r[1] != "team"), "{listed:?}");
    let stored = rows(
        &config,
        "SELECT deleted, toString(monthly_usd) FROM {db}.budgets FINAL WHERE tenant = 'acme' AND scope = 'team'",
    )
    .await;
    assert_eq!(stored, [["1", "1500.00"]], "a tombstone");

    // Refusals, each with a sentence that says what is wrong.
    for (args, says) in [
        (
            vec!["remove", "--tenant", "acme", "--scope", "team", "--value", "payments"],
            "tenant acme has no budget for team \"payments\"",
        ),
        (
            vec!["set", "--tenant", "acme", "--scope", "team", "--monthly-usd", "10"],
            "scope team needs --value: the team whose spend it limits",
        ),
        (
            words("set --tenant acme --scope tenant --value x --monthly-usd 10"),
            "scope tenant is the whole tenant's spend: leave out --value",
        ),
        (
            words("set --tenant acme --scope department --value x --monthly-usd 10"),
            "[possible values: tenant, team, cost_center, user]",
        ),
        (
            words("set --tenant acme --scope user --value x --monthly-usd 10.005"),
            "has more than two decimals",
        ),
        (
            words("set --tenant acme --scope user --value x --monthly-usd 0"),
            "a monthly budget must be more than 0",
        ),
        (
            words("set --tenant acme --scope user --value x --monthly-usd=-3"),
            "is not an amount in USD",
        ),
    ] {
        let mut all = vec!["budgets"];
        all.extend(args);
        let run = cli(&toml, &all);
        assert!(!run.ok, "{all:?} succeeded");
        assert!(run.stderr.contains(says), "{all:?}: {}", run.stderr);
    }
    assert_eq!(
        table(&cli_ok(&toml, &["budgets", "list", "--tenant", "acme"]).stdout).len(),
        4
    );
}

/// `metric{labels} value` lines of `name` in a Prometheus text page, by their labels.
fn series(page: &str, name: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once("} ")?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// `expr:` and `for:` of an alert in `prometheus/alerts.yml`.
fn rule(rules: &str, alert: &str) -> (String, String) {
    let block = rules
        .split("- alert:")
        .find(|b| b.trim_start().starts_with(&format!("{alert}\n")))
        .unwrap_or_else(|| panic!("alerts.yml has no {alert}"));
    let field = |key: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{alert} has no single-line {key}"))
            .trim()
            .to_string()
    };
    (field("expr:"), field("for:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_crossing_80_and_100_percent_export_gauges_that_fire_the_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = common::cluster();
    let base = common::config(&cluster.bootstrap_servers(), dir.path(), &[]);
    let mut config = ch::migrated(common::kafka::consumer_settings(base), &ch::shared().url).await;
    config.clickhouse.budget_check_ms = 300;
    let store = Store::new(&config.clickhouse);
    let db = config.clickhouse.database.clone();

    // This month's spend (today, on the server's clock) and last month's, which must not count.
    let today = rows(
        &config,
        "SELECT toString(today()), toString(toStartOfMonth(today()) - 1)",
    )
    .await;
    let (today, last_month) = (&today[0][0], &today[0][1]);
    let row = |day: &str, user: &str, team: &str, cc: &str, usd: &str, version: u32| {
        format!("('acme', '{day}', '{user}', '{user}', '{team}', '{cc}', 'm', {usd}, {version})")
    };
    let values = [
        row(today, "ana@acme.example", "payments", "CC-100", "50", 1),
        row(today, "bo@acme.example", "payments", "CC-100", "35", 1),
        row(today, "eve@acme.example", "infra", "CC-300", "60", 1),
        row(today, "fay@acme.example", "infra", "CC-300", "355", 1),
        // An older refresh of today, replaced by the rows above.
        row(today, "ana@acme.example", "payments", "CC-100", "1000", 0),
        row(last_month, "eve@acme.example", "infra", "CC-300", "1000", 1),
    ];
    ch::query(
        &config.clickhouse.url,
        &format!(
            "INSERT INTO {db}.cost_daily (tenant, day, user_email, user_identity, team, cost_center, model, cost_usd, version) VALUES {}",
            values.join(", ")
        ),
    )
    .await;
    let usd = |s: &str| Usd::parse(s).unwrap();
    for (scope, value, limit) in [
        (Scope::Tenant, None, "1000"),                 // 500 spent: 50%
        (Scope::Team, Some("payments"), "100"),        // 85: 80% reached
        (Scope::User, Some("eve@acme.example"), "50"), // 60: exceeded
        (Scope::CostCenter, Some("CC-300"), "400"),    // 415: exceeded
        (Scope::CostCenter, Some("CC-999"), "10"),     // nothing spent
    ] {
        budgets::set(&store, "acme", scope, value, usd(limit)).await.unwrap();
    }
    budgets::set(&store, "acme", Scope::Team, Some("gone"), usd("1"))
        .await
        .unwrap();
    budgets::remove(&store, "acme", Scope::Team, Some("gone"))
        .await
        .unwrap();

    // The evaluation.
    let now = time::OffsetDateTime::now_utc();
    let month = Month::of(now);
    let got: Vec<(String, String, f64, f64)> = budgets::evaluate(&store, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(s.tenant, "acme");
            assert!((s.projected_usd - s.spend_usd / month.elapsed).abs() < 1e-6, "{s:?}");
            (s.scope.to_string(), s.scope_value, s.limit_usd, s.spend_usd)
        })
        .collect();
    let want = [
        ("cost_center", "CC-300", 400.0, 415.0),
        ("cost_center", "CC-999", 10.0, 0.0),
        ("team", "payments", 100.0, 85.0),
        ("tenant", "", 1000.0, 500.0),
        ("user", "eve@acme.example", 50.0, 60.0),
    ]
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c, d));
    assert_eq!(got, want);

    // A running consumer's refresher exports them.
    let consumer = common::kafka::InProcessConsumer::start(config.clone()).await;
    let url = format!("http://{}/metrics", consumer.admin);
    let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
    let label = |scope: &str, value: &str| format!("tenant=\"acme\",scope=\"{scope}\",scope_value=\"{value}\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let page = scrape().await;
        if series(&page, "cowork_budget_spend_ratio").len() == 5 {
            break page;
        }
        assert!(Instant::now() < deadline, "no budget gauges within 60 s:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ratio = series(&page, "cowork_budget_spend_ratio");
    assert_eq!(ratio[&label("team", "payments")], 0.85);
    assert_eq!(ratio[&label("user", "eve@acme.example")], 1.2);
    assert_eq!(ratio[&label("tenant", "")], 0.5);
    assert_eq!(ratio[&label("cost_center", "CC-999")], 0.0);
    assert_eq!(
        series(&page, "cowork_budget_spend_usd")[&label("cost_center", "CC-300")],
        415.0
    );
    assert_eq!(
        series(&page, "cowork_budget_limit_usd")[&label("cost_center", "CC-300")],
        400.0
    );
    // The consumer evaluated between `now` and this scrape: its projection lies between theirs.
    let later = Month::of(time::OffsetDateTime::now_utc());
    let projected = series(&page, "cowork_budget_projected_ratio")[&label("team", "payments")];
    assert!(
        0.85 / later.elapsed - 1e-9 <= projected && projected <= 0.85 / month.elapsed + 1e-9,
        "{projected}"
    );
    assert!(page.contains("# HELP cowork_budget_spend_ratio ") && page.contains("bounded by the configured budgets"));
    assert!(page.contains("cowork_budget_evaluation_errors_total 0"), "{page}");

    // The alert rules on exactly these series: 80% for payments, exceeded for eve and CC-300.
    let rules = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/alerts.yml")).unwrap();
    let mut yaml = String::from("groups:\n  - name: budgets\n    rules:\n");
    for alert in ["BudgetAt80Percent", "BudgetExceeded"] {
        let (expr, wait) = rule(&rules, alert);
        yaml.push_str(&format!(
            "      - alert: {alert}\n        expr: {expr}\n        for: {wait}\n"
        ));
    }
    std::fs::write(dir.path().join("rules.yml"), yaml).unwrap();
    let mut test = String::from(
        "rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for (labels, v) in &ratio {
        test.push_str(&format!(
            "      - series: 'cowork_budget_spend_ratio{{instance=\"consumer-1:9465\",{labels}}}'\n        values: '{v}x30'\n"
        ));
    }
    test.push_str("    alert_rule_test:\n");
    for (alert, fired) in [
        ("BudgetAt80Percent", vec![("team", "payments")]),
        (
            "BudgetExceeded",
            vec![("cost_center", "CC-300"), ("user", "eve@acme.example")],
        ),
    ] {
        test.push_str(&format!(
            "      - eval_time: 2m\n        alertname: {alert}\n        exp_alerts: []\n"
        ));
        test.push_str(&format!(
            "      - eval_time: 10m\n        alertname: {alert}\n        exp_alerts:\n"
        ));
        for (scope, value) in fired {
            test.push_str(&format!(
                "          - exp_labels:\n              tenant: acme\n              scope: {scope}\n              scope_value: \"{value}\"\n"
            ));
        }
    }
    std::fs::write(dir.path().join("test.yml"), &test).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool runs (Debian's prometheus package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "the budget alerts on the exported gauges:\n{test}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And the suite's own unit tests of both rules, with their annotations, pass.
    let tests =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/alerts_test.yml")).unwrap();
    for alert in ["BudgetAt80Percent", "BudgetExceeded"] {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels:"
            )),
            "{alert} fires in alerts_test.yml"
        );
    }
    let out = Command::new("promtool")
        .args(["test", "rules", "prometheus/alerts_test.yml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // A removed budget's series disappear at the next evaluation.
    budgets::remove(&store, "acme", Scope::CostCenter, Some("CC-999"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape().await;
        if !page.contains("scope_value=\"CC-999\"") {
            assert_eq!(series(&page, "cowork_budget_limit_usd").len(), 4);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed budget is still exported:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
}
