//! `cowork-ingest directory import FILE --tenant T` and `directory list --tenant T`: the user
//! directory ([`crate::clickhouse::directory`]) as a person edits it.

use std::path::Path;

use anyhow::Context;

use crate::clickhouse::directory;
use crate::clickhouse::schema;
use crate::clickhouse::store::Store;
use crate::config::Config;

/// Replaces the tenant's directory with the CSV file at `path`. Prints the counts on stdout
/// (`added N, updated N, removed N, unchanged N`) and what it did on stderr; a refused file
/// names every problem and its line, and changes nothing.
pub async fn import(config: &Config, path: &Path, tenant: &str) -> anyhow::Result<()> {
    let tenant = tenant.trim();
    anyhow::ensure!(!tenant.is_empty(), "--tenant is empty");
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e}); save the CSV as UTF-8", path.display()))?;
    let entries = directory::parse_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let store = Store::new(&config.clickhouse);
    schema::check(&store).await?;
    let report = directory::import(&store, tenant, &entries).await?;
    println!(
        "added {}, updated {}, removed {}, unchanged {}",
        report.added, report.updated, report.removed, report.unchanged
    );
    if report.changed() {
        eprintln!(
            "imported {} entries from {} into the directory of tenant {tenant} (database {}, version {}); \
             marked {} day(s) of cost_daily for a rollup refresh",
            entries.len(),
            path.display(),
            store.database(),
            report.version,
            report.days_marked
        );
    } else {
        eprintln!(
            "the directory of tenant {tenant} already holds exactly these {} entries: nothing written",
            entries.len()
        );
    }
    Ok(())
}

/// Prints the tenant's directory, one person per line.
pub async fn list(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    let entries = directory::list(&store, tenant.trim()).await?;
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace('\n', " ")
        }
    };
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|s| {
            let e = &s.entry;
            [
                dash(&e.user_identity),
                dash(&e.team),
                dash(&e.department),
                dash(&e.cost_center),
                dash(&e.manager),
                s.imported_at.clone(),
            ]
        })
        .collect();
    let header = [
        "user_identity",
        "team",
        "department",
        "cost_center",
        "manager",
        "imported_at",
    ]
    .map(String::from);
    print!("{}", super::table(&header, &rows));
    eprintln!("{} entries in the directory of tenant {}", entries.len(), tenant.trim());
    Ok(())
}
