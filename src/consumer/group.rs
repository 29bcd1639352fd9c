//! Group membership as the metrics see it: which partitions (of the logs, metrics and traces
//! topics) this process owns (kept current by
//! the rebalance callbacks), and their lag, read from Kafka on its own schedule by a thread that
//! never waits on the consumer loop. A stalled consumer therefore still shows growing lag, and a
//! revoked partition's lag disappears with the partition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::Config;
use crate::kafka::{self, Group};
use crate::telemetry::consumer::Rebalanced;
use crate::telemetry::labels::RebalanceKind;

/// A (topic, partition).
pub type TopicPartition = (String, i32);

/// Partitions owned now (of every topic the member reads), and their last measured lag.
#[derive(Default)]
pub struct Ownership {
    assigned: Mutex<BTreeSet<TopicPartition>>,
    lag: Mutex<BTreeMap<TopicPartition, i64>>,
}

impl Ownership {
    pub fn lag(&self) -> BTreeMap<TopicPartition, i64> {
        self.lag.lock().expect("not poisoned").clone()
    }

    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.assigned.lock().expect("not poisoned").iter().cloned().collect()
    }
}

/// The consumer's librdkafka context: follows rebalances.
pub struct GroupContext {
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    pub owned: Arc<Ownership>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &TopicPartitionList, topic: &str| -> Vec<i32> {
            tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                for topic in &self.topics {
                    let new = partitions(tpl, topic);
                    if new.is_empty() {
                        continue;
                    }
                    Rebalanced {
                        kind: RebalanceKind::Assign,
                        topic,
                        partitions: &new,
                    }
                    .emit();
                    let mut assigned = self.owned.assigned.lock().expect("not poisoned");
                    assigned.extend(new.into_iter().map(|p| (topic.clone(), p)));
                }
            }
            Rebalance::Revoke(tpl) => {
                // librdkafka keeps an application pause across revoke and re-assignment: a
                // partition revoked while the consumer was paused for a retry would never be
                // read again if it came back. Resume it on the way out.
                if let Err(e) = consumer.resume(tpl) {
                    tracing::warn!(error = %e, "could not resume revoked partitions");
                }
                for topic in &self.topics {
                    let gone = partitions(tpl, topic);
                    if gone.is_empty() {
                        continue;
                    }
                    Rebalanced {
                        kind: RebalanceKind::Revoke,
                        topic,
                        partitions: &gone,
                    }
                    .emit();
                    let mut assigned = self.owned.assigned.lock().expect("not poisoned");
                    let mut lag = self.owned.lag.lock().expect("not poisoned");
                    for p in gone {
                        let tp = (topic.clone(), p);
                        assigned.remove(&tp);
                        lag.remove(&tp);
                    }
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

/// Measures the lag of the owned partitions every `consumer.lag_refresh_ms`, until `stop`:
/// the high watermark minus the group's committed offset (or the low watermark when nothing is
/// committed yet), from Kafka itself.
pub fn watch_lag(config: &Config, owned: Arc<Ownership>, stop: Arc<AtomicBool>) -> rdkafka::error::KafkaResult<()> {
    // Never subscribes: it only asks the group coordinator and the partition leaders.
    let client = kafka::Bounded::new(
        kafka::group_consumer(config, Group::LagWatch).create::<BaseConsumer>()?,
        Duration::from_secs(5),
    );
    let every = Duration::from_millis(config.consumer.lag_refresh_ms.max(100));
    std::thread::Builder::new()
        .name("lag-watch".into())
        .spawn(move || {
            let timeout = Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let parts = owned.assigned();
                let mut measured = BTreeMap::new();
                if !parts.is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for (topic, p) in &parts {
                        tpl.add_partition(topic, *p);
                    }
                    match client.committed_offsets(tpl, timeout) {
                        Ok(committed) => {
                            for (topic, p) in parts {
                                let Ok((low, high)) = client.fetch_watermarks(&topic, p, timeout) else {
                                    continue;
                                };
                                let at = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                                    Some(Offset::Offset(o)) => o.max(low),
                                    _ => low,
                                };
                                measured.insert((topic, p), (high - at).max(0));
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "could not read committed offsets for the lag"),
                    }
                }
                {
                    let assigned = owned.assigned.lock().expect("not poisoned");
                    let mut lag = owned.lag.lock().expect("not poisoned");
                    // Keep the last value of a partition Kafka did not answer for this time.
                    for (p, n) in measured {
                        lag.insert(p, n);
                    }
                    lag.retain(|p, _| assigned.contains(p));
                }
                while started.elapsed() < every && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?;
    Ok(())
}
