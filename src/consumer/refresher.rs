//! The rollup refresher: every `clickhouse.rollup_refresh_ms`, re-aggregates each (tenant, day)
//! marked since its last refresh ([`crate::clickhouse::rollups`]). Every member runs one; two
//! members refreshing the same day write the same figures, and the newer version wins.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clickhouse::store::{Store, StoreError};
use crate::clickhouse::ClickHouseConfig;
use crate::clickhouse::{retention, rollups};
use crate::telemetry::consumer::{RollupRefreshFailed, RollupRefreshed, RollupsPending};

async fn round(store: &Store, config: &ClickHouseConfig) -> Result<(), StoreError> {
    let settle_s = config.rollup_settle_ms.div_ceil(1000);
    let today = time::OffsetDateTime::now_utc().date();
    let kept_since = retention::kept_since(&config.retention_days, today);
    let due = rollups::pending(store, settle_s, kept_since.as_deref()).await?;
    RollupsPending { days: due.len() }.emit();
    if !due.is_empty() {
        let behind = rollups::replicas_behind(store).await?;
        if behind > 0 {
            // A replica still fetching rows could be the one a refresh reads: wait for it.
            tracing::debug!(replicas = behind, "rollup refresh waits for replicas to catch up");
            return Ok(());
        }
    }
    for (i, (tenant, day)) in due.iter().enumerate() {
        let started = Instant::now();
        rollups::refresh(store, tenant, day).await?;
        RollupRefreshed {
            tenant,
            day,
            took: started.elapsed(),
        }
        .emit();
        RollupsPending {
            days: due.len() - i - 1,
        }
        .emit();
    }
    Ok(())
}

/// Refreshes pending days until `shutdown`. A failed round is logged and counted; its days stay
/// marked, so the next round (of this member or another) does them.
pub async fn run(config: ClickHouseConfig, shutdown: CancellationToken) {
    let store = Store::new(&config);
    let every = Duration::from_millis(config.rollup_refresh_ms.max(100));
    loop {
        if let Err(error) = round(&store, &config).await {
            RollupRefreshFailed { error: &error }.emit();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
