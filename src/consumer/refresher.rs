//! The rollup refresher: every `clickhouse.rollup_refresh_ms`, re-aggregates each (tenant, day)
//! marked since its last refresh ([`crate::clickhouse::rollups`]). Every member runs one; two
//! members refreshing the same day write the same figures, and the newer version wins.
//!
//! After a round, at most every `clickhouse.budget_check_ms`, it also evaluates the budgets
//! against the freshly refreshed `cost_daily` ([`crate::clickhouse::budgets::evaluate`]) for the
//! `cowork_budget_*` gauges. Every member exports the same figures; the alerts take the highest.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clickhouse::store::{Store, StoreError};
use crate::clickhouse::ClickHouseConfig;
use crate::clickhouse::{budgets, retention, rollups};
use crate::telemetry::consumer::{
    BudgetEvaluationFailed, BudgetsEvaluated, RollupRefreshFailed, RollupRefreshed, RollupsPending,
};

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

/// Refreshes pending days until `shutdown`, and evaluates the budgets every
/// `budget_check_ms`. A failed round is logged and counted; its days stay marked, so the next
/// round (of this member or another) does them. A failed budget evaluation keeps the last
/// gauges until the next check.
pub async fn run(config: ClickHouseConfig, shutdown: CancellationToken) {
    let store = Store::new(&config);
    let every = Duration::from_millis(config.rollup_refresh_ms.max(100));
    let budget_every = Some(Duration::from_millis(config.budget_check_ms)).filter(|d| !d.is_zero());
    let mut budgets_due = Instant::now();
    loop {
        if let Err(error) = round(&store, &config).await {
            RollupRefreshFailed { error: &error }.emit();
        }
        if let Some(budget_every) = budget_every.filter(|_| Instant::now() >= budgets_due) {
            budgets_due = Instant::now() + budget_every;
            match budgets::evaluate(&store, time::OffsetDateTime::now_utc()).await {
                Ok(statuses) => BudgetsEvaluated { statuses }.emit(),
                Err(error) => BudgetEvaluationFailed { error: &error }.emit(),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
