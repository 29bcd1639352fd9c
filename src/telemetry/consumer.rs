//! The consumer's observable events. Each `emit()` writes its log line (where there is one) and
//! its series together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{counter, gauge, histogram};

use super::labels::{DeadLetterClass, EventKind, InsertErrorClass, MessageOutcome, RebalanceKind, SecurityKind};
use super::*;
use crate::clickhouse::budgets::Status;
use crate::otlp::Signal;
use crate::transform::normalize::TimeSource;

/// What decoding a payload counted; added to the metrics only once its batch is stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Events by [`EventKind`] index.
    pub events: [u64; EventKind::ALL.len()],
    pub coercion_failures: u64,
    /// Events by the [`TimeSource`] that timed them (index into [`TimeSource::ALL`]).
    pub time_sources: [u64; TimeSource::ALL.len()],
    /// The `event_day`s of the events: the days whose rollups the batch makes stale.
    pub days: BTreeSet<u16>,
    /// Security events by [`SecurityKind`] index.
    pub security: [u64; SecurityKind::ALL.len()],
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.events.iter().sum()
    }

    pub fn add(&mut self, other: &Stats) {
        for (a, b) in self.events.iter_mut().zip(other.events) {
            *a += b;
        }
        for (a, b) in self.time_sources.iter_mut().zip(other.time_sources) {
            *a += b;
        }
        for (a, b) in self.security.iter_mut().zip(other.security) {
            *a += b;
        }
        self.coercion_failures += other.coercion_failures;
        self.days.extend(other.days.iter().copied());
    }

    /// Counts one security event of `kind` (an event already counted by [`Stats::count`]); it
    /// reaches `cowork_consumer_security_events_total` once the batch is stored, like the events.
    pub fn security_event(&mut self, kind: SecurityKind) {
        self.security[kind.index()] += 1;
    }

    /// Counts one event of `kind` on `day`, timed by `source`, with `coercion_failures`
    /// unreadable values.
    pub fn count(&mut self, kind: EventKind, day: u16, source: TimeSource, coercion_failures: u32) {
        if self.days.last() != Some(&day) {
            self.days.insert(day);
        }
        self.events[kind.index()] += 1;
        self.time_sources[source as usize] += 1;
        self.coercion_failures += u64::from(coercion_failures);
    }
}

/// Kafka message payload bytes read.
pub struct BytesConsumed {
    pub bytes: usize,
}

impl BytesConsumed {
    pub fn emit(self) {
        counter!(CONSUMER_BYTES).increment(self.bytes as u64);
    }
}

/// A batch is stored: its rows in ClickHouse, its dead letters acknowledged, its offsets stored.
pub struct BatchStored<'a> {
    /// Per tenant.
    pub stats: &'a BTreeMap<String, Stats>,
    pub inserted: u64,
    pub dead_lettered: u64,
    /// RowBinary bytes inserted.
    pub bytes: usize,
    /// Per signal ([`Signal::ALL`] order), the edge receive time of the newest stored payload,
    /// Unix nanoseconds (0 if none).
    pub newest_received_ns: [u64; 3],
}

impl BatchStored<'_> {
    pub fn emit(self) {
        let mut all = Stats::default();
        for (t, s) in self.stats {
            for kind in EventKind::ALL {
                let n = s.events[kind.index()];
                if n > 0 {
                    counter!(CONSUMER_EVENTS, "event" => kind.as_str(), "tenant" => tenant(t)).increment(n);
                }
            }
            all.add(s);
        }
        for source in TimeSource::ALL.into_iter().filter(|s| *s != TimeSource::Record) {
            let n = all.time_sources[source as usize];
            if n > 0 {
                counter!(CONSUMER_TIME_FALLBACKS, "source" => source.as_str()).increment(n);
            }
        }
        counter!(CONSUMER_COERCION_FAILURES).increment(all.coercion_failures);
        for kind in SecurityKind::ALL {
            let n = all.security[kind.index()];
            if n > 0 {
                counter!(CONSUMER_SECURITY_EVENTS, "kind" => kind.as_str()).increment(n);
            }
        }
        counter!(CONSUMER_MESSAGES, "outcome" => MessageOutcome::DeadLettered.as_str()).increment(self.dead_lettered);
        counter!(CONSUMER_MESSAGES, "outcome" => MessageOutcome::Inserted.as_str()).increment(self.inserted);
        histogram!(CONSUMER_BATCH_ROWS).record(all.total() as f64);
        if self.bytes > 0 {
            histogram!(CONSUMER_BATCH_BYTES).record(self.bytes as f64);
        }
        if self.inserted > 0 {
            gauge!(CONSUMER_LAST_INSERT).set(crate::util::now_ms() as f64 / 1e3);
        }
        for (signal, ns) in Signal::ALL.into_iter().zip(self.newest_received_ns) {
            if ns > 0 {
                gauge!(CONSUMER_COMMITTED_RECEIVED_AT, "signal" => signal.as_str()).set(ns as f64 / 1e9);
            }
        }
    }
}

/// A payload goes to the dead-letter topic.
pub struct DeadLettered<'a> {
    pub partition: i32,
    pub offset: i64,
    pub class: DeadLetterClass,
    pub reason: &'a str,
}

impl DeadLettered<'_> {
    pub fn emit(self) {
        tracing::warn!(
            partition = self.partition,
            offset = self.offset,
            class = self.class.as_str(),
            reason = %self.reason,
            "dead-lettering a payload"
        );
        counter!(CONSUMER_DEAD_LETTERS, "class" => self.class.as_str()).increment(1);
    }
}

/// One table's insert answered.
pub struct Inserted {
    pub table: &'static str,
    pub took: Duration,
}

impl Inserted {
    pub fn emit(self) {
        histogram!(CONSUMER_INSERT_DURATION, "table" => self.table).record(self.took.as_secs_f64());
    }
}

/// One table's insert failed.
pub struct InsertFailed {
    pub table: &'static str,
    pub class: InsertErrorClass,
}

impl InsertFailed {
    pub fn emit(self) {
        counter!(CONSUMER_INSERT_ERRORS, "table" => self.table, "class" => self.class.as_str()).increment(1);
    }
}

/// Consumption paused (`partitions` of them) while an insert is retried, or resumed (`None`).
pub struct Paused {
    pub partitions: Option<usize>,
}

impl Paused {
    pub fn emit(self) {
        match self.partitions {
            Some(n) => {
                gauge!(CONSUMER_PAUSED).set(1.0);
                gauge!(CONSUMER_PAUSED_PARTITIONS).set(n as f64);
            }
            None => {
                gauge!(CONSUMER_PAUSED).set(0.0);
                gauge!(CONSUMER_PAUSED_PARTITIONS).set(0.0);
                tracing::info!("ClickHouse took the batch; consumption resumed");
            }
        }
    }
}

/// Partitions assigned to or revoked from this member.
pub struct Rebalanced<'a> {
    pub kind: RebalanceKind,
    pub topic: &'a str,
    pub partitions: &'a [i32],
}

impl Rebalanced<'_> {
    pub fn emit(self) {
        match self.kind {
            RebalanceKind::Assign => {
                tracing::info!(topic = self.topic, partitions = ?self.partitions, "partitions assigned")
            }
            RebalanceKind::Revoke => {
                tracing::info!(topic = self.topic, partitions = ?self.partitions, "partitions revoked")
            }
        }
        counter!(CONSUMER_REBALANCES, "kind" => self.kind.as_str()).increment(1);
    }
}

/// Rollups waiting for a refresh, in (tenant, day)s.
pub struct RollupsPending {
    pub days: usize,
}

impl RollupsPending {
    pub fn emit(self) {
        gauge!(CONSUMER_ROLLUPS_PENDING).set(self.days as f64);
    }
}

/// One (tenant, day)'s rollups refreshed.
pub struct RollupRefreshed<'a> {
    pub tenant: &'a str,
    pub day: &'a str,
    pub took: Duration,
}

impl RollupRefreshed<'_> {
    pub fn emit(self) {
        tracing::debug!(
            tenant = self.tenant,
            day = self.day,
            seconds = self.took.as_secs_f64(),
            "rollups refreshed"
        );
        histogram!(CONSUMER_ROLLUP_REFRESH_DURATION).record(self.took.as_secs_f64());
    }
}

/// A refresh round failed; its days stay pending.
pub struct RollupRefreshFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl RollupRefreshFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "rollup refresh failed; trying again on the next round");
        counter!(CONSUMER_ROLLUP_REFRESH_ERRORS).increment(1);
    }
}

/// The newest budget evaluation, read by [`super::render_budgets`] at each scrape.
static BUDGETS: Mutex<Option<Arc<Vec<Status>>>> = Mutex::new(None);

/// The statuses of the newest budget evaluation (none before the first).
pub fn budget_statuses() -> Arc<Vec<Status>> {
    BUDGETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Every live budget evaluated against the month's spend: the gauges now show these.
pub struct BudgetsEvaluated {
    pub statuses: Vec<Status>,
}

impl BudgetsEvaluated {
    pub fn emit(self) {
        let over = self.statuses.iter().filter(|s| s.spend_ratio() >= 1.0).count();
        tracing::debug!(budgets = self.statuses.len(), exceeded = over, "budgets evaluated");
        *BUDGETS.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(self.statuses));
    }
}

/// A budget evaluation failed; the gauges keep the previous one.
pub struct BudgetEvaluationFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl BudgetEvaluationFailed<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "budget evaluation failed; trying again at the next check");
        counter!(BUDGET_EVALUATION_ERRORS).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_events_are_counted_per_kind_and_added_per_tenant() {
        let mut a = Stats::default();
        a.security_event(SecurityKind::PermissionBypass);
        a.security_event(SecurityKind::AuthFailure);
        a.security_event(SecurityKind::AuthFailure);
        let mut b = Stats::default();
        b.security_event(SecurityKind::AuthFailure);
        b.security_event(SecurityKind::ToolReject);
        a.add(&b);
        assert_eq!(a.security[SecurityKind::PermissionBypass.index()], 1);
        assert_eq!(a.security[SecurityKind::AuthFailure.index()], 3);
        assert_eq!(a.security[SecurityKind::ToolReject.index()], 1);
        assert_eq!(a.security.iter().sum::<u64>(), 5);
        // Security events are a property of events, not events of their own.
        assert_eq!(a.total(), 0);
    }
}
