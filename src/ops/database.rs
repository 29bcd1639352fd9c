//! `cowork-ingest migrate [--print-sql]` and `cowork-ingest forget`.

use crate::clickhouse::store::Store;
use crate::clickhouse::{erasure, schema};
use crate::config::Config;

/// Applies the migrations not applied yet, saying what it did on stderr.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    let ran = schema::migrate(&store).await?;
    if ran.is_empty() {
        eprintln!("schema of database {} is up to date", store.database());
    }
    for name in ran {
        eprintln!("applied migration {name} to database {}", store.database());
    }
    Ok(())
}

/// The DDL `migrate` would run on an empty server.
pub fn print_sql(config: &Config) {
    print!("{}", schema::render(&config.clickhouse.database));
}

/// Erases one user's rows of one tenant: the rows removed per table on stdout, a total on
/// stderr.
pub async fn forget(config: &Config, tenant: &str, user: &str) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    let removed = erasure::forget(&store, tenant, user).await?;
    let total: u64 = removed.iter().map(|(_, n)| n).sum();
    for (table, n) in removed {
        println!("{table}\t{n}");
    }
    eprintln!(
        "removed {total} rows of {user} (tenant {tenant}) from database {}",
        store.database()
    );
    Ok(())
}
