//! The schema and the README's queries on both ClickHouse generations: Debian's 18.16 server
//! (what CI runs) and current ClickHouse embedded through chdb (what users run). The corpus is
//! encoded once by the consumer's fast path and loaded into both; every documented query must
//! run on both and return the same rows.

mod common;

use std::path::PathBuf;

use cowork_ingest::config::ContentPolicy;
use cowork_ingest::consumer::{Decoder, Envelope};
use cowork_ingest::envelope::{Compression, ContentType};
use cowork_ingest::rows::{Rows, Table};
use cowork_ingest::schema;
use cowork_ingest::store::Store;

/// The ```sql blocks of the README.
fn readme_queries() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(q), "```") => {
                out.push(q.trim().to_string());
                current = None;
            }
            (Some(q), l) => {
                q.push_str(l);
                q.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

fn chdb_python() -> PathBuf {
    std::env::var_os("COWORK_CHDB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.dev/venv/bin/python")))
}

/// Numbers compare by value (18.16 prints `1.500000000`, current releases `1.5`), text exactly.
fn normalize(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|f| match f.parse::<f64>() {
                    Ok(v) if !f.contains('-') || f.starts_with('-') => format!("{v:.9}"),
                    _ => common::clickhouse::unescape(&f),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_queries_agree_on_clickhouse_18_16_and_current() {
    // Encode the corpus once.
    let mut rows = Rows::default();
    let mut decoder = Decoder::new(64 << 20);
    let policy = ContentPolicy::default();
    for (i, b) in common::corpus("proto-none").iter().enumerate() {
        let env = Envelope {
            tenant: "acme",
            content_type: ContentType::Protobuf,
            compression: Compression::Identity,
            received_at_ns: 1_795_100_000_000_000_000,
        };
        decoder.encode(&env, &b.body, 0, i as i64, &policy, &mut rows).unwrap();
    }
    assert_eq!(rows.events(), 1232);

    // ClickHouse 18.16.
    let ch = common::clickhouse::shared();
    let config = common::clickhouse::migrated(cowork_ingest::config::Config::default(), &ch.url).await;
    let db = config.clickhouse.database.clone();
    let store = Store::new(&config.clickhouse);
    let dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for t in Table::ALL {
        let data = rows.bufs[t as usize].clone();
        store.insert(t.name(), &t.columns(), data.clone().into()).await.unwrap();
        let path = dir.path().join(format!("{}.rowbinary", t.name()));
        std::fs::write(&path, &data).unwrap();
        tables.push(serde_json::json!({"name": t.name(), "columns": t.columns(), "path": path}));
    }
    let queries: Vec<String> = readme_queries()
        .iter()
        .map(|q| q.replace("cowork.", &format!("{db}.")))
        .collect();
    assert!(queries.len() >= 8, "the README documents its queries in ```sql blocks");
    let mut old = Vec::new();
    for q in &queries {
        let text = common::clickhouse::query(&ch.url, &format!("{q}\nFORMAT TabSeparated")).await;
        let result: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        assert!(!result.is_empty(), "no rows on 18.16 for:\n{q}");
        old.push(result);
    }

    // Current ClickHouse, embedded.
    let args = dir.path().join("args.json");
    std::fs::write(
        &args,
        serde_json::json!({
            "database": db,
            "ddl": schema::render(&db),
            "tables": tables,
            "queries": queries,
        })
        .to_string(),
    )
    .unwrap();
    let python = chdb_python();
    let out = std::process::Command::new(&python)
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
    let version = current["version"].as_str().unwrap();
    assert!(
        version.split('.').next().unwrap().parse::<u32>().unwrap() >= 23,
        "chdb runs a current ClickHouse ({version})"
    );
    let new: Vec<Vec<Vec<String>>> = serde_json::from_value(current["results"].clone()).unwrap();
    assert_eq!(new.len(), queries.len());
    eprintln!("{} README queries agree on 18.16 and {version}", queries.len());
    for ((q, a), b) in queries.iter().zip(old).zip(new) {
        assert_eq!(normalize(a), normalize(b), "18.16 and {version} disagree on:\n{q}");
    }
}
