//! Retention, by each table's `event_day`. Servers with TTL (20.1+) get a table TTL, applied by
//! `migrate` and at consumer start; ClickHouse 18.16 has none, so there whole day partitions
//! older than the retention are dropped instead.
//!
//! Day 1970-01-01 holds the events that sent no usable time of their own. It is never expired:
//! its rows have no age to measure.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::{Store, StoreError};
use super::tables::Table;
use super::ClickHouseConfig;

/// Drops the day partitions older than each table's retention, counted back from `today`
/// (events are partitioned by event date). Returns `(table, partition id)` of what was dropped.
pub async fn apply_retention(
    store: &Store,
    retention_days: &BTreeMap<Table, u32>,
    today: time::Date,
) -> Result<Vec<(String, String)>, StoreError> {
    let db = store.database();
    let mut dropped = Vec::new();
    for (table, days) in retention_days.iter().filter(|(_, d)| **d > 0) {
        // In cluster mode the parts are the local tables', on every node: one ON CLUSTER drop.
        let parts_of = store.local_name(table.name());
        let cutoff = today - time::Duration::days(i64::from(*days));
        let cutoff_id: u32 = format!("{:04}{:02}{:02}", cutoff.year(), u8::from(cutoff.month()), cutoff.day())
            .parse()
            .expect("digits");
        let parts = store
            .rows(&format!(
                "SELECT DISTINCT partition_id FROM system.parts WHERE database = '{db}' AND table = '{parts_of}' AND active ORDER BY partition_id"
            ))
            .await?;
        for id in parts.into_iter().filter_map(|r| r.into_iter().next()) {
            if id
                .parse::<u32>()
                .is_ok_and(|day| day < cutoff_id && day != NO_TIME_PARTITION)
            {
                store
                    .execute(&format!(
                        "ALTER TABLE {}{} DROP PARTITION ID '{id}'",
                        store.local(table.name()),
                        store.on_cluster()
                    ))
                    .await?;
                tracing::info!(table = %table, partition = %id, days, "retention dropped a partition");
                dropped.push((table.name().to_string(), id));
            }
        }
    }
    Ok(dropped)
}

/// The first day whose rows every table the rollups read still keeps on `today`
/// (`YYYY-MM-DD`), or `None` when none of them expires: the shortest retention among them counts.
/// The kind tables feed no rollup, so a short retention of, say, `api_bodies` stops no refresh.
pub fn kept_since(retention_days: &BTreeMap<Table, u32>, today: time::Date) -> Option<String> {
    let days = retention_days
        .iter()
        .filter(|(t, _)| t.kind().is_none())
        .map(|(_, d)| *d)
        .filter(|d| *d > 0)
        .min()?;
    let first = today - time::Duration::days(i64::from(days));
    Some(format!(
        "{:04}-{:02}-{:02}",
        first.year(),
        u8::from(first.month()),
        first.day()
    ))
}

/// The partition of the events that sent no time of their own (day 0).
const NO_TIME_PARTITION: u32 = 19_700_101;

/// The TTL clause for `days` of retention: rows expire `days` after their `event_day`, except on
/// day 0.
pub fn ttl_clause(days: u32) -> String {
    format!("TTL if(event_day = toDate('1970-01-01'), toDate('2149-01-01'), event_day + toIntervalDay({days}))")
}

/// Sets each table's TTL to its configured retention (and removes a TTL whose retention was
/// removed), on servers that have TTL. Returns what changed.
pub async fn apply_ttl(store: &Store, retention_days: &BTreeMap<Table, u32>) -> Result<Vec<String>, StoreError> {
    let db = store.database();
    let mut changed = Vec::new();
    for table in Table::ALL {
        let (local, bare) = (store.local(table.name()), store.local_name(table.name()));
        let rows = store
            .rows(&format!(
                "SELECT engine_full FROM system.tables WHERE database = '{db}' AND name = '{bare}'"
            ))
            .await?;
        let Some(engine) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else {
            continue;
        };
        let days = retention_days.get(&table).copied().unwrap_or(0);
        let has_ttl = engine.contains(" TTL ");
        let want = (days > 0).then(|| ttl_clause(days));
        let sql = match &want {
            Some(clause) if !engine.contains(&clause["TTL ".len()..]) => {
                format!("ALTER TABLE {local}{} MODIFY {clause}", store.on_cluster())
            }
            None if has_ttl => format!("ALTER TABLE {local}{} REMOVE TTL", store.on_cluster()),
            _ => continue,
        };
        store.execute(&sql).await?;
        changed.push(format!(
            "{}: {}",
            table.name(),
            want.unwrap_or_else(|| "TTL removed".into())
        ));
    }
    Ok(changed)
}

/// Keeps retention until `shutdown`: on servers with TTL, sets the TTLs once; elsewhere drops
/// expired partitions now and every `retention_check_ms`.
pub async fn run(config: ClickHouseConfig, shutdown: CancellationToken) {
    let store = Store::new(&config);
    if let Ok(version) = store.server_version().await {
        if super::schema::Features::for_version(version).ttl {
            match apply_ttl(&store, &config.retention_days).await {
                Ok(changed) => {
                    for change in changed {
                        tracing::info!(change = %change, "retention TTL set");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "setting the retention TTLs failed; run `cowork-ingest migrate`"),
            }
            return;
        }
    }
    if config.retention_days.values().all(|d| *d == 0) {
        return;
    }
    let every = Duration::from_millis(config.retention_check_ms.max(1000));
    loop {
        let today = time::OffsetDateTime::now_utc().date();
        if let Err(e) = apply_retention(&store, &config.retention_days, today).await {
            tracing::warn!(error = %e, "retention failed; trying again later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_retention_bounds_the_days_rollups_refresh() {
        let today = time::macros::date!(2026 - 12 - 02);
        assert_eq!(kept_since(&BTreeMap::new(), today), None);
        let days = BTreeMap::from([(Table::Events, 90), (Table::ApiRequests, 30), (Table::ToolResults, 0)]);
        assert_eq!(kept_since(&days, today).as_deref(), Some("2026-11-02"));
        assert!(ttl_clause(30).contains("event_day + toIntervalDay(30)"));
    }
}
