//! The schema and the README's queries on both ClickHouse generations: Debian's 18.16 server
//! (what CI runs) and current ClickHouse embedded through chdb (what users run). The corpus is
//! encoded once by the consumer's fast path and loaded into both; every documented query must
//! run on both and return the same rows.

mod common;

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
    let (version, new) = common::clickhouse::run_on_chdb(&corpus, &queries);
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
