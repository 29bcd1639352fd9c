//! `readers`: per-tenant read-only ClickHouse users.
//!
//! What runs where, and why:
//! - Debian's 18.16 (the real server of every other ClickHouse test) has no row-level security
//!   at all, so `readers` must refuse there, and `sync` (which `migrate` calls) must do nothing.
//!   Both are checked against the real server, as is the discovery of the tables to cover.
//! - Current ClickHouse is here only as chdb, which is embedded without a writable access
//!   storage: `CREATE USER` fails there (ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND, also with a
//!   config file that adds a `local_directory`), and `EXECUTE AS` is disabled. So no test logs
//!   in as a reader; instead current ClickHouse's own parser (`formatQuery`) accepts every
//!   statement `readers` sends, and the unit tests in `src/ops/readers.rs` pin their text and
//!   order.

mod common;

use std::process::Command;
use std::time::Duration;

use common::clickhouse::{chdb_python, query, shared};
use cowork_ingest::clickhouse::store::Store;
use cowork_ingest::config::Config;
use cowork_ingest::ops::readers::{self, ReaderOptions};

/// A store on the shared 18.16 server, over a new database with two tenant tables, a view over
/// one of them, a `_local` table as cluster mode names them, and a table without a `tenant`
/// column; rows of tenants A and B.
async fn tenant_database() -> Store {
    let ch = shared();
    let db = format!("t_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.requests (tenant String, n UInt64) ENGINE = MergeTree ORDER BY tenant"),
        format!("CREATE TABLE {db}.sessions (tenant String, id String) ENGINE = MergeTree ORDER BY tenant"),
        format!("CREATE TABLE {db}.sessions_local (tenant String, id String) ENGINE = MergeTree ORDER BY tenant"),
        format!("CREATE VIEW {db}.requests_view AS SELECT tenant, n FROM {db}.requests"),
        format!("CREATE TABLE {db}.state (k String) ENGINE = MergeTree ORDER BY k"),
        format!("INSERT INTO {db}.requests VALUES ('A', 1), ('B', 2)"),
        format!("INSERT INTO {db}.sessions VALUES ('A', 'a'), ('B', 'b')"),
    ] {
        query(&ch.url, &sql).await;
    }
    let mut config = Config::default().clickhouse;
    config.url = ch.url.clone();
    config.database = db;
    Store::new(&config)
}

#[tokio::test]
async fn tables_to_cover_are_those_with_a_tenant_column() {
    let store = tenant_database().await;
    let tables = tokio::time::timeout(Duration::from_secs(30), readers::tenant_tables(&store))
        .await
        .expect("system.columns answers within 30 s")
        .unwrap();
    assert_eq!(tables, ["requests", "requests_view", "sessions", "sessions_local"]);
}

#[tokio::test]
async fn clickhouse_18_16_is_refused_and_sync_does_nothing() {
    let store = tenant_database().await;
    let within = Duration::from_secs(30);
    let version = store.server_version().await.unwrap();
    assert!(
        !readers::has_sql_access_control(version),
        "the shared server is 18.16 ({version:?})"
    );

    let err = tokio::time::timeout(within, readers::create(&store, "A", None, &ReaderOptions::default()))
        .await
        .unwrap()
        .expect_err("18.16 gets no reader");
    let text = err.to_string();
    assert!(
        text.contains("no row-level security") && text.contains("every tenant's rows"),
        "{text}"
    );
    for err in [
        readers::list(&store).await.expect_err("list refused"),
        readers::revoke(&store, "A").await.expect_err("revoke refused"),
    ] {
        assert!(err.to_string().contains("no row-level security"), "{err}");
    }
    // `migrate` calls sync on every server.
    assert_eq!(
        tokio::time::timeout(within, readers::sync(&store))
            .await
            .unwrap()
            .unwrap(),
        0
    );
    // Nothing changed for the users that read everything.
    let all = query(
        &shared().url,
        &format!("SELECT count() FROM {}.requests_view", store.database()),
    )
    .await;
    assert_eq!(all.trim(), "2");
}

#[test]
fn bad_tenant_names_are_refused_before_connecting() {
    for bad in ["a b", "a'b", "x;DROP", ""] {
        let out = Command::new(env!("CARGO_BIN_EXE_cowork-ingest"))
            .args([
                "--set",
                "clickhouse.url=http://127.0.0.1:9",
                "readers",
                "create",
                "--tenant",
                bad,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("letters, digits"), "{bad:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{bad:?}: printed a password");
    }
}

/// Every statement `readers` sends to a current server, for a tenant whose name has every
/// allowed punctuation mark, over table names that need quoting: on one server, then (from
/// index [`CLUSTER_FROM`] on) in cluster mode.
fn current_statements() -> Vec<String> {
    let tenant = "a.b-c_1";
    let tables = vec!["events".to_string(), ".inner.cost_daily".to_string()];
    let options = ReaderOptions {
        max_memory_bytes: 123_456_789,
        hosts: vec!["10.0.0.0/8".into(), "::1".into()],
    };
    let mut sql = vec![
        readers::create_user_sql(tenant, &"ab".repeat(32), &options, None),
        readers::create_user_sql(tenant, &"ab".repeat(32), &ReaderOptions::default(), None),
    ];
    sql.extend(readers::cover_sql(
        "cowork",
        tenant,
        &tables,
        &["gone".to_string()],
        None,
    ));
    sql.extend(readers::revoke_sql(tenant, &[("cowork".into(), "events".into())], None));
    assert_eq!(sql.len(), CLUSTER_FROM);
    let cluster = Some("c1");
    let tables = vec!["events".to_string(), "events_local".to_string()];
    sql.push(readers::create_user_sql(tenant, &"ab".repeat(32), &options, cluster));
    sql.extend(readers::cover_sql(
        "cowork",
        tenant,
        &tables,
        &["gone_local".to_string()],
        cluster,
    ));
    sql.extend(readers::revoke_sql(
        tenant,
        &[("cowork".into(), "events_local".into())],
        cluster,
    ));
    sql
}

/// Where the cluster-mode statements start in [`current_statements`].
const CLUSTER_FROM: usize = 2 + 8 + 2;

#[test]
fn current_clickhouse_parses_every_statement() {
    let statements = current_statements();
    let script = r#"
import json, sys
from chdb import session
s = session.Session()
out = []
for stmt in json.load(sys.stdin):
    lit = "'" + stmt.replace("\\", "\\\\").replace("'", "\\'") + "'"
    try:
        out.append(str(s.query("SELECT formatQuery(" + lit + ")", "TabSeparatedRaw")).strip())
    except Exception as e:
        out.append("ERROR " + str(e))
print(json.dumps({"version": str(s.query("SELECT version()", "TabSeparatedRaw")).strip(), "formatted": out}))
"#;
    let mut child = Command::new(chdb_python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): scripts/test installs chdb-core",
                chdb_python().display()
            )
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&statements).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chdb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = result["version"].as_str().unwrap();
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 23, "chdb runs a current ClickHouse ({version})");
    let formatted: Vec<String> = serde_json::from_value(result["formatted"].clone()).unwrap();
    assert_eq!(formatted.len(), statements.len());
    for (stmt, f) in statements.iter().zip(&formatted) {
        assert!(
            !f.starts_with("ERROR"),
            "ClickHouse {version} cannot parse\n  {stmt}\n{f}"
        );
    }
    // What the parser understood, not only that it parsed.
    assert!(
        formatted[0].contains("max_memory_usage = 123456789 CONST"),
        "{}",
        formatted[0]
    );
    assert!(
        formatted[0].contains("IDENTIFIED WITH sha256_hash BY"),
        "{}",
        formatted[0]
    );
    assert!(formatted[1].contains("HOST ANY"), "{}", formatted[1]);
    assert!(
        formatted
            .iter()
            .any(|f| f.contains("AS RESTRICTIVE FOR SELECT USING tenant = 'a.b-c_1' TO `cowork_reader_a.b-c_1`")),
        "{formatted:#?}"
    );
    // One server: nothing runs ON CLUSTER. Cluster mode: everything does, where ClickHouse
    // puts it (the formatter moves a row policy's ON CLUSTER after its table).
    let (single, cluster) = formatted.split_at(CLUSTER_FROM);
    assert!(single.iter().all(|f| !f.contains("ON CLUSTER")), "{single:#?}");
    assert!(cluster.iter().all(|f| f.contains(" ON CLUSTER c1")), "{cluster:#?}");
    assert!(
        cluster[0].starts_with("CREATE USER `cowork_reader_a.b-c_1` ON CLUSTER c1 IDENTIFIED"),
        "{}",
        cluster[0]
    );
    for needle in [
        "CREATE ROW POLICY OR REPLACE `cowork_reader_a.b-c_1` ON cowork.events_local ON CLUSTER c1 AS RESTRICTIVE",
        "GRANT ON CLUSTER c1 SELECT ON cowork.events_local TO `cowork_reader_a.b-c_1`",
        "REVOKE ON CLUSTER c1 ALL ON *.* FROM `cowork_reader_a.b-c_1`",
        "DROP ROW POLICY IF EXISTS `cowork_reader_a.b-c_1` ON cowork.events_local ON CLUSTER c1",
        "DROP USER IF EXISTS `cowork_reader_a.b-c_1` ON CLUSTER c1",
    ] {
        assert!(cluster.iter().any(|f| f.starts_with(needle)), "{needle}\n{cluster:#?}");
    }
}
