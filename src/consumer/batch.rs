//! A batch: the rows, dead letters and offsets of a run of messages. Pure bookkeeping, no IO:
//! where each held message's rows start, which offset each partition reaches, and which of those
//! offsets may be stored. The worker keeps at most two: one filling, one being stored.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};

use super::dead_letter::{self, DeadLetter};
use crate::clickhouse::rows::{Mark, Rows};
use crate::config::ConsumerConfig;
use crate::kafka::Outgoing;
use crate::otlp::Signal;
use crate::telemetry::consumer::{DeadLettered, Stats};

/// A message whose rows are in the batch, and where they start in each table's buffer.
pub struct Held {
    pub msg: OwnedMessage,
    pub start: Mark,
}

/// Rows and offsets of a run of messages.
#[derive(Default)]
pub struct Batch {
    pub rows: Rows,
    pub held: Vec<Held>,
    pub dead: Vec<Outgoing>,
    /// Per (topic, partition), the offset after the last message taken.
    pub next_offsets: BTreeMap<(String, i32), i64>,
    /// Per tenant.
    pub stats: BTreeMap<String, Stats>,
    pub dead_count: u64,
    pub inserted_count: u64,
    /// RowBinary bytes ClickHouse took, once the rows are inserted.
    pub inserted_bytes: usize,
    /// Per signal ([`Signal::ALL`] order), the edge receive time of the newest payload.
    pub newest_received_ns: [u64; 3],
    pub wire_bytes: usize,
    pub opened: Option<Instant>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// The batch closes on rows or bytes (its age is the worker's timer).
    pub fn is_full(&self, limits: &ConsumerConfig) -> bool {
        self.rows.records() >= limits.batch_max_rows || self.rows.bytes() + self.wire_bytes >= limits.batch_max_bytes
    }

    /// Full, or open for `max_age`: time to store it.
    pub fn is_due(&self, limits: &ConsumerConfig, max_age: Duration) -> bool {
        self.is_full(limits) || self.opened.is_some_and(|t| t.elapsed() >= max_age)
    }

    /// A new, empty batch that reuses this one's buffers (their capacity, not their contents).
    pub fn recycled(self) -> Batch {
        let Batch { mut rows, mut held, .. } = self;
        rows.clear();
        held.clear();
        Batch {
            rows,
            held,
            ..Batch::default()
        }
    }

    /// Notes that `msg` was taken: the batch opens, and its partition's next offset moves.
    pub fn open_for(&mut self, msg: &OwnedMessage) {
        self.opened.get_or_insert_with(Instant::now);
        self.wire_bytes += msg.payload().map_or(0, <[u8]>::len);
        self.next_offsets
            .insert((msg.topic().to_string(), msg.partition()), msg.offset() + 1);
    }

    /// Adds one decoded payload's counts to its tenant's.
    pub fn count(&mut self, tenant: &str, signal: Signal, stats: &Stats, received_at_ns: u64) {
        let newest = &mut self.newest_received_ns[signal as usize];
        *newest = (*newest).max(received_at_ns);
        match self.stats.get_mut(tenant) {
            Some(s) => s.add(stats),
            None => {
                self.stats.insert(tenant.to_string(), stats.clone());
            }
        }
    }

    /// Queues `msg` for the dead-letter topic.
    pub fn dead_letter(&mut self, msg: &OwnedMessage, why: DeadLetter) {
        DeadLettered {
            partition: msg.partition(),
            offset: msg.offset(),
            class: why.class,
            reason: &why.reason,
        }
        .emit();
        self.dead.push(dead_letter::pending(msg, &why));
        self.dead_count += 1;
    }

    /// Where each held message's rows start, then where the batch ends: message `i` owns the
    /// rows between `bounds[i]` and `bounds[i + 1]`.
    pub fn bounds(&self) -> Vec<Mark> {
        self.held.iter().map(|h| h.start).chain([self.rows.mark()]).collect()
    }

    /// The offsets to store once the batch is stored: only for partitions still owned. A
    /// partition revoked while the batch was open is read again by its new owner (the tables
    /// deduplicate), and storing its stale offset could move the group backwards.
    pub fn offsets_to_store(&self, owned: &[(String, i32)]) -> Vec<(&str, i32, i64)> {
        self.next_offsets
            .iter()
            .filter(|(tp, _)| owned.contains(tp))
            .map(|((t, p), next)| (t.as_str(), *p, *next))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Timestamp;

    use super::*;
    use crate::telemetry::labels::DeadLetterClass;

    fn msg(partition: i32, offset: i64, payload: &[u8]) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.to_vec()),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    #[test]
    fn offsets_move_past_the_last_message_and_only_for_owned_partitions() {
        let mut b = Batch::default();
        assert!(b.is_empty());
        for (p, o) in [(0, 10), (1, 3), (0, 11), (2, 7)] {
            b.open_for(&msg(p, o, b"xy"));
        }
        assert!(!b.is_empty() && b.opened.is_some());
        assert_eq!(b.wire_bytes, 8);
        let owned = |ps: &[i32]| ps.iter().map(|p| ("t".to_string(), *p)).collect::<Vec<_>>();
        assert_eq!(
            b.offsets_to_store(&owned(&[0, 1, 2])),
            [("t", 0, 12), ("t", 1, 4), ("t", 2, 8)]
        );
        assert_eq!(
            b.offsets_to_store(&owned(&[2, 0])),
            [("t", 0, 12), ("t", 2, 8)],
            "partition 1 was revoked"
        );
        let other = msg(0, 40, b"m").set_topic("metrics".into());
        b.open_for(&other);
        let mut both = owned(&[0]);
        both.push(("metrics".into(), 0));
        assert_eq!(
            b.offsets_to_store(&both),
            [("metrics", 0, 41), ("t", 0, 12)],
            "each topic's partitions move alone"
        );
    }

    #[test]
    fn a_dead_letter_moves_the_offset_and_keeps_the_payload() {
        let mut b = Batch::default();
        let m = msg(4, 99, b"garbage");
        b.open_for(&m);
        b.dead_letter(&m, DeadLetter::new(DeadLetterClass::Undecodable, "not OTLP"));
        assert_eq!((b.dead_count, b.dead.len()), (1, 1));
        assert_eq!(b.dead[0].payload, b"garbage");
        assert_eq!(b.offsets_to_store(&[("t".into(), 4)]), [("t", 4, 100)]);
    }

    #[test]
    fn counts_add_up_per_tenant() {
        let mut b = Batch::default();
        let mut s = Stats::default();
        s.events[0] = 2;
        b.count("acme", Signal::Logs, &s, 5);
        b.count("acme", Signal::Logs, &s, 3);
        b.count("globex", Signal::Metrics, &s, 9);
        assert_eq!(b.stats["acme"].total(), 4);
        assert_eq!(b.stats["globex"].total(), 2);
        assert_eq!(b.newest_received_ns, [5, 9, 0]);
    }

    #[test]
    fn a_batch_is_full_on_rows_or_bytes() {
        let limits = ConsumerConfig {
            batch_max_bytes: 10,
            ..ConsumerConfig::default()
        };
        let mut b = Batch::default();
        b.open_for(&msg(0, 0, b"12345"));
        assert!(!b.is_full(&limits));
        b.open_for(&msg(0, 1, b"12345"));
        assert!(b.is_full(&limits));
        assert!(
            b.is_due(&limits, Duration::from_secs(3600)),
            "full is due, however young"
        );
    }

    #[test]
    fn a_batch_is_due_when_old_and_a_recycled_one_starts_empty() {
        let limits = ConsumerConfig::default();
        let mut b = Batch::default();
        assert!(!b.is_due(&limits, Duration::ZERO), "an empty batch never is");
        b.open_for(&msg(3, 5, b"abc"));
        b.dead_letter(&msg(3, 5, b"abc"), DeadLetter::new(DeadLetterClass::Undecodable, "x"));
        assert!(!b.is_due(&limits, Duration::from_secs(3600)));
        assert!(b.is_due(&limits, Duration::ZERO));
        let fresh = b.recycled();
        assert!(fresh.is_empty() && fresh.opened.is_none() && fresh.dead.is_empty() && fresh.held.is_empty());
        assert_eq!((fresh.wire_bytes, fresh.dead_count, fresh.rows.records()), (0, 0, 0));
    }
}
