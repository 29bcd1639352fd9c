//! Retention: whole day partitions older than each table's retention are dropped. Dropping
//! partitions is the one retention mechanism every ClickHouse version has.

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
        let cutoff = today - time::Duration::days(i64::from(*days));
        let cutoff_id: u32 = format!("{:04}{:02}{:02}", cutoff.year(), u8::from(cutoff.month()), cutoff.day())
            .parse()
            .expect("digits");
        let parts = store
            .rows(&format!(
                "SELECT DISTINCT partition_id FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active ORDER BY partition_id"
            ))
            .await?;
        for id in parts.into_iter().filter_map(|r| r.into_iter().next()) {
            if id.parse::<u32>().is_ok_and(|day| day < cutoff_id) {
                store
                    .execute(&format!("ALTER TABLE {db}.{table} DROP PARTITION ID '{id}'"))
                    .await?;
                tracing::info!(table = %table, partition = %id, days, "retention dropped a partition");
                dropped.push((table.name().to_string(), id));
            }
        }
    }
    Ok(dropped)
}

/// Drops expired partitions now and every `retention_check_ms`, until `shutdown`.
pub async fn run(config: ClickHouseConfig, shutdown: CancellationToken) {
    if config.retention_days.values().all(|d| *d == 0) {
        return;
    }
    let store = Store::new(&config);
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
