//! Storing a batch: one INSERT per table, several at once, retried while ClickHouse is unavailable, bisected by
//! message when it rejects the data. The policy is written against two small traits, so that it
//! is tested here with a fake store and a fake clock:
//!
//! - [`RowSink`]: takes one table's RowBinary rows ([`Store`] is the real one);
//! - [`Pause`]: waits between retries (the worker's keeps polling Kafka, so that the group keeps
//!   this member, and can be cut short by shutdown).
//!
//! Rules: a transient failure retries the same range after a growing wait; a rejected range of
//! several messages is split in two; a message rejected alone is handed back to become a dead
//! letter. Nothing is reported stored unless every range was acknowledged.
//!
//! The inserts read the batch's own buffers: [`share`] hands them out as [`Bytes`] without a
//! copy, and [`reclaim`] takes them back afterwards, for the next batch to fill.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::clickhouse::rows::{Mark, Rows};
use crate::clickhouse::store::{Store, StoreError};
use crate::clickhouse::Table;
use crate::telemetry::consumer::{InsertFailed, Inserted};
use crate::telemetry::labels::InsertErrorClass;
use crate::util::Backoff;

/// Somewhere rows can be inserted.
pub trait RowSink {
    fn insert(&self, table: Table, rows: Bytes) -> impl Future<Output = Result<(), StoreError>>;
}

impl RowSink for Store {
    async fn insert(&self, table: Table, rows: Bytes) -> Result<(), StoreError> {
        Store::insert(self, table.name(), table.columns(), rows).await
    }
}

/// One table's buffer of a batch's rows, as the owner of a [`Bytes`].
struct TableRows(Arc<Rows>, Table);

impl AsRef<[u8]> for TableRows {
    fn as_ref(&self) -> &[u8] {
        self.0.buf(self.1)
    }
}

/// Every table's buffer of `rows` as [`Bytes`] (for [`insert_messages`]), without a copy.
pub fn share(rows: Rows) -> (Arc<Rows>, [Bytes; Table::COUNT]) {
    let rows = Arc::new(rows);
    let data = Table::ALL.map(|t| Bytes::from_owner(TableRows(rows.clone(), t)));
    (rows, data)
}

/// The rows back from [`share`], emptied but with their buffers' capacity, once every [`Bytes`]
/// of them is dropped (an HTTP client still holding one gets its way: fresh buffers instead).
pub fn reclaim(rows: Arc<Rows>, data: [Bytes; Table::COUNT]) -> Rows {
    drop(data);
    let mut rows = Arc::try_unwrap(rows).unwrap_or_default();
    rows.clear();
    rows
}

/// A wait between retries; false if the consumer must stop instead.
pub trait Pause {
    fn wait(&mut self, delay: Duration) -> impl Future<Output = bool>;
}

/// Inserts the rows of every message: message `i` owns the rows between `bounds[i]` and
/// `bounds[i + 1]` of each table's buffer in `data`, up to `concurrency` tables at once. Returns the messages rejected alone, with
/// the server's reason, or `None` if `pause` said stop before everything was stored.
pub async fn insert_messages(
    sink: &impl RowSink,
    data: &[Bytes; Table::COUNT],
    bounds: &[Mark],
    concurrency: usize,
    mut backoff: Backoff,
    pause: &mut impl Pause,
) -> Option<Vec<(usize, String)>> {
    let messages = bounds.len().saturating_sub(1);
    let mut ranges = vec![(0, messages)];
    let mut rejected = Vec::new();
    while let Some((lo, hi)) = ranges.pop() {
        if lo == hi {
            continue;
        }
        match insert_range(sink, data, bounds[lo], bounds[hi], concurrency).await {
            Ok(()) => backoff.reset(),
            Err(StoreError::Retry(e)) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "insert failed; pausing and retrying");
                if !pause.wait(delay).await {
                    return None;
                }
                ranges.push((lo, hi));
            }
            Err(StoreError::Reject(e)) if hi - lo == 1 => rejected.push((lo, e)),
            Err(StoreError::Reject(e)) => {
                tracing::warn!(error = %e, messages = hi - lo, "ClickHouse rejected a batch; bisecting it");
                let mid = lo + (hi - lo) / 2;
                ranges.push((mid, hi));
                ranges.push((lo, mid));
            }
        }
    }
    rejected.sort_by_key(|(i, _)| *i);
    Some(rejected)
}

/// One INSERT per table for the rows between two marks, up to `concurrency` at once: the range
/// is stored once all of them are. If any failed, the whole range is retried (a transient failure
/// anywhere wins, since bisecting on it would be wrong) or bisected; the tables that took their
/// rows take them again, which their dedup makes harmless, as for any replay.
async fn insert_range(
    sink: &impl RowSink,
    data: &[Bytes; Table::COUNT],
    from: Mark,
    to: Mark,
    concurrency: usize,
) -> Result<(), StoreError> {
    let inserts = Table::ALL
        .into_iter()
        .filter(|t| to.rows[t.index()] != from.rows[t.index()])
        .map(|table| async move {
            let i = table.index();
            let started = Instant::now();
            let result = sink.insert(table, data[i].slice(from.bytes[i]..to.bytes[i])).await;
            match &result {
                Ok(()) => Inserted {
                    table: table.name(),
                    took: started.elapsed(),
                }
                .emit(),
                Err(e) => InsertFailed {
                    table: table.name(),
                    class: match e {
                        StoreError::Retry(_) => InsertErrorClass::Retry,
                        StoreError::Reject(_) => InsertErrorClass::Reject,
                    },
                }
                .emit(),
            }
            result
        });
    let results: Vec<_> = futures::stream::iter(inserts)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut rejected = None;
    for result in results {
        match result {
            Ok(()) => {}
            Err(e @ StoreError::Retry(_)) => return Err(e),
            Err(e @ StoreError::Reject(_)) => rejected = rejected.or(Some(e)),
        }
    }
    rejected.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Rows are one byte per message in the `events` table; a byte of 0xff is data ClickHouse
    /// rejects, and the first `unavailable` calls fail as if the server were down.
    #[derive(Default)]
    struct FakeStore {
        unavailable: RefCell<usize>,
        stored: RefCell<Vec<u8>>,
        calls: RefCell<usize>,
    }

    impl RowSink for FakeStore {
        async fn insert(&self, table: Table, rows: Bytes) -> Result<(), StoreError> {
            assert_eq!(table, Table::Events);
            *self.calls.borrow_mut() += 1;
            if *self.unavailable.borrow() > 0 {
                *self.unavailable.borrow_mut() -= 1;
                return Err(StoreError::Retry("connection refused".into()));
            }
            if rows.contains(&0xff) {
                return Err(StoreError::Reject("Code: 27. Cannot parse input".into()));
            }
            self.stored.borrow_mut().extend_from_slice(&rows);
            Ok(())
        }
    }

    /// Records the waits; says stop after `stop_after` of them.
    struct FakeClock {
        waits: Vec<Duration>,
        stop_after: usize,
    }

    impl Pause for FakeClock {
        async fn wait(&mut self, delay: Duration) -> bool {
            self.waits.push(delay);
            self.waits.len() <= self.stop_after
        }
    }

    fn clock() -> FakeClock {
        FakeClock {
            waits: Vec::new(),
            stop_after: usize::MAX,
        }
    }

    /// One events row (one byte) per message.
    fn batch(bytes: &[u8]) -> ([Bytes; Table::COUNT], Vec<Mark>) {
        let mut data: [Bytes; Table::COUNT] = Default::default();
        data[Table::Events.index()] = Bytes::copy_from_slice(bytes);
        let bounds = (0..=bytes.len())
            .map(|i| {
                let mut m = Mark::default();
                m.bytes[Table::Events.index()] = i;
                m.rows[Table::Events.index()] = i;
                m
            })
            .collect();
        (data, bounds)
    }

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(200), Duration::from_millis(1000))
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_healthy_batch_is_one_insert() {
        let store = FakeStore::default();
        let (data, bounds) = batch(&[1, 2, 3, 4]);
        let rejected = run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut clock())).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(*store.stored.borrow(), [1, 2, 3, 4]);
        assert_eq!(*store.calls.borrow(), 1);
    }

    #[test]
    fn rejected_messages_are_isolated_by_bisection_and_the_rest_is_stored() {
        let store = FakeStore::default();
        let (data, bounds) = batch(&[0, 1, 2, 3, 4, 0xff, 6, 0xff]);
        let rejected = run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut clock())).unwrap();
        assert_eq!(rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [5, 7]);
        assert!(rejected[0].1.contains("Cannot parse"), "{rejected:?}");
        let mut stored = store.stored.borrow().clone();
        stored.sort();
        assert_eq!(stored, [0, 1, 2, 3, 4, 6], "every other message is stored exactly once");
    }

    #[test]
    fn an_unavailable_server_is_retried_with_growing_waits() {
        let store = FakeStore {
            unavailable: RefCell::new(4),
            ..FakeStore::default()
        };
        let mut c = clock();
        let (data, bounds) = batch(&[1, 2]);
        let rejected = run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut c)).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(*store.stored.borrow(), [1, 2]);
        let ms: Vec<u128> = c.waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1000], "doubling, capped at the maximum");
    }

    #[test]
    fn a_stop_while_waiting_reports_nothing_stored() {
        let store = FakeStore {
            unavailable: RefCell::new(10),
            ..FakeStore::default()
        };
        let mut c = FakeClock {
            waits: Vec::new(),
            stop_after: 2,
        };
        let (data, bounds) = batch(&[1, 2, 3]);
        assert_eq!(run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut c)), None);
        assert!(store.stored.borrow().is_empty());
        assert_eq!(c.waits.len(), 3);
    }

    /// Rows in several tables; counts the inserts under way at once, and fails the first
    /// insert into each table named in `fail` with its error.
    #[derive(Default)]
    struct Tables {
        under_way: RefCell<usize>,
        most_at_once: RefCell<usize>,
        fail: RefCell<Vec<(Table, StoreError)>>,
        stored: RefCell<Vec<Table>>,
    }

    impl RowSink for Tables {
        async fn insert(&self, table: Table, _rows: Bytes) -> Result<(), StoreError> {
            *self.under_way.borrow_mut() += 1;
            let now = *self.under_way.borrow();
            self.most_at_once.replace_with(|m| (*m).max(now));
            tokio::task::yield_now().await;
            *self.under_way.borrow_mut() -= 1;
            let mut fail = self.fail.borrow_mut();
            if let Some(i) = fail.iter().position(|(t, _)| *t == table) {
                return Err(fail.remove(i).1);
            }
            self.stored.borrow_mut().push(table);
            Ok(())
        }
    }

    /// One message with a row in each of `tables`.
    fn one_message_in(tables: &[Table]) -> ([Bytes; Table::COUNT], Vec<Mark>) {
        let mut data: [Bytes; Table::COUNT] = Default::default();
        let mut end = Mark::default();
        for t in tables {
            data[t.index()] = Bytes::from_static(b"r");
            end.bytes[t.index()] = 1;
            end.rows[t.index()] = 1;
        }
        (data, vec![Mark::default(), end])
    }

    #[test]
    fn the_tables_of_a_range_are_inserted_at_once() {
        let store = Tables::default();
        let tables = [Table::Events, Table::ApiRequests, Table::ToolResults];
        let (data, bounds) = one_message_in(&tables);
        let rejected = run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut clock())).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(*store.most_at_once.borrow(), 3, "all three were under way together");
        assert_eq!(store.stored.borrow().len(), 3);
    }

    #[test]
    fn no_more_tables_are_under_way_than_the_concurrency() {
        let store = Tables::default();
        let tables = [Table::Events, Table::ApiRequests, Table::ToolResults];
        let (data, bounds) = one_message_in(&tables);
        let rejected = run(insert_messages(&store, &data, &bounds, 2, backoff(), &mut clock())).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(*store.most_at_once.borrow(), 2);
        assert_eq!(store.stored.borrow().len(), 3);
        let store = Tables::default();
        run(insert_messages(&store, &data, &bounds, 1, backoff(), &mut clock())).unwrap();
        assert_eq!(*store.most_at_once.borrow(), 1, "1: one table after another");
    }

    #[test]
    fn a_transient_failure_in_one_table_retries_the_range_even_if_another_rejected_it() {
        let store = Tables::default();
        store.fail.borrow_mut().extend([
            (
                Table::ApiRequests,
                StoreError::Reject("Code: 27. Cannot parse input".into()),
            ),
            (Table::ToolResults, StoreError::Retry("connection refused".into())),
        ]);
        let tables = [Table::Events, Table::ApiRequests, Table::ToolResults];
        let (data, bounds) = one_message_in(&tables);
        let mut c = clock();
        let rejected = run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut c)).unwrap();
        assert_eq!(
            c.waits.len(),
            1,
            "one wait, for the transient failure: no bisection on it"
        );
        assert!(rejected.is_empty(), "the retry stored it: {rejected:?}");
        let mut stored = store.stored.borrow().clone();
        stored.sort_by_key(|t| t.index());
        // The first round stored events; the retry stored all three.
        assert_eq!(
            stored,
            [Table::Events, Table::Events, Table::ApiRequests, Table::ToolResults]
        );
    }

    #[test]
    fn an_empty_batch_inserts_nothing() {
        let store = FakeStore::default();
        let (data, bounds) = batch(&[]);
        assert_eq!(
            run(insert_messages(&store, &data, &bounds, 8, backoff(), &mut clock())),
            Some(vec![])
        );
        assert_eq!(*store.calls.borrow(), 0);
    }
}
