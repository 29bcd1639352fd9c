//! `cowork-ingest migrate [--print-sql]`, `cowork-ingest rollups rebuild` and
//! `cowork-ingest forget`.

use anyhow::Context;

use crate::clickhouse::schema::{Features, Target};
use crate::clickhouse::store::{parse_version, Store};
use crate::clickhouse::{erasure, retention, rollups, schema};
use crate::config::Config;

/// Applies the migrations not applied yet and the configured TTLs, saying what it did on stderr.
/// After the upgrade to schema v2 it rebuilds the rollups from the copied rows.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    let target = Target::detect(&store).await?;
    let ran = schema::migrate(&store, &target, &mut |step| eprintln!("{step}")).await?;
    if ran.is_empty() {
        eprintln!("schema of database {} is up to date", store.database());
    }
    for name in &ran {
        eprintln!("applied migration {name} to database {}", store.database());
    }
    if ran.contains(&"003_v2") {
        let kept = retention::kept_since(&config.clickhouse.retention_days, today());
        let days = rollups::rebuild(&store, None, None, kept.as_deref(), &mut |step| {
            eprintln!("rollups: {step}")
        })
        .await?;
        if days > 0 {
            eprintln!("rebuilt the rollups of {days} (tenant, day)s");
        }
    }
    if target.features.ttl {
        for change in retention::apply_ttl(&store, &config.clickhouse.retention_days).await? {
            eprintln!("{change}");
        }
    }
    // Tables a migration added get the per-tenant readers' row policies.
    let readers = super::readers::sync(&store).await?;
    if readers > 0 {
        eprintln!("re-applied the row policies of {readers} tenant reader(s)");
    }
    Ok(())
}

/// The DDL `migrate` would run on an empty server: the configured one, or a server of
/// `server_version` (such as `18.16` or `24.8`) without connecting.
pub async fn print_sql(config: &Config, server_version: Option<&str>) -> anyhow::Result<()> {
    let target = match server_version {
        Some(v) => Target {
            features: Features::for_version(
                parse_version(v)
                    .with_context(|| format!("--server-version {v:?}: expected MAJOR.MINOR, such as 24.8"))?,
            ),
            cluster: Some(config.clickhouse.cluster.clone()).filter(|c| !c.is_empty()),
        },
        None => Target::detect(&Store::new(&config.clickhouse))
            .await
            .context("reading the server's version (or pass --server-version)")?,
    };
    print!("{}", schema::render(&config.clickhouse.database, &target));
    Ok(())
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// Re-aggregates the rollups from the base tables (never a day retention has begun to drop).
pub async fn rebuild_rollups(config: &Config, since: Option<&str>, tenant: Option<&str>) -> anyhow::Result<()> {
    let store = Store::new(&config.clickhouse);
    schema::check(&store).await?;
    let started = std::time::Instant::now();
    let kept = retention::kept_since(&config.clickhouse.retention_days, today());
    let days = rollups::rebuild(&store, since, tenant, kept.as_deref(), &mut |step| eprintln!("{step}")).await?;
    eprintln!(
        "rebuilt the rollups of {days} (tenant, day)s in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
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
