//! The schema and the README's queries on both ClickHouse generations: Debian's 18.16 server
//! (what CI runs) and current ClickHouse embedded through chdb (what users run). The corpus is
//! encoded once by the consumer's fast path and loaded into both; every documented query must
//! run on both and return the same rows.

mod common;

use cowork_ingest::schema;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_queries_agree_on_clickhouse_18_16_and_current() {
    let corpus = common::clickhouse::load_corpus().await;
    assert_eq!(corpus.events, 1232);
    let (db, url) = (corpus.db.clone(), corpus.url.clone());
    let queries: Vec<String> = readme_queries()
        .iter()
        .map(|q| q.replace("cowork.", &format!("{db}.")))
        .collect();
    assert!(queries.len() >= 8, "the README documents its queries in ```sql blocks");
    let mut old = Vec::new();
    for q in &queries {
        let text = common::clickhouse::query(&url, &format!("{q}\nFORMAT TabSeparated")).await;
        let result: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        assert!(!result.is_empty(), "no rows on 18.16 for:\n{q}");
        old.push(result);
    }

    // Current ClickHouse, embedded.
    let args = corpus.dir.path().join("args.json");
    std::fs::write(
        &args,
        serde_json::json!({
            "database": db,
            "ddl": schema::render(&db),
            "tables": corpus.tables,
            "queries": queries,
        })
        .to_string(),
    )
    .unwrap();
    let python = common::clickhouse::chdb_python();
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
        assert_eq!(
            common::clickhouse::comparable(&a),
            common::clickhouse::comparable(&b),
            "18.16 and {version} disagree on:\n{q}"
        );
    }
}
