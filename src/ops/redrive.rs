//! `cowork-ingest redrive`: publishes dead letters back to the topic they came from (without
//! the `cowork-dlq-*` headers), from the redrive group's committed position up to the end of
//! the dead-letter topic as it was when redrive started.
//!
//! librdkafka's consumer calls block, so the work runs on a blocking thread, and the consumer
//! is closed within a bounded time whatever the brokers do.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::envelope::{dead_letter, header_str};
use crate::kafka::{self, Group, Outgoing, ProducerRole};
use crate::util::Backoff;

/// How long each Kafka call may take before redrive gives up with an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Re-publishes dead letters (at most `limit`); returns how many were re-published.
pub async fn redrive(config: &Config, limit: Option<u64>) -> anyhow::Result<u64> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || redrive_blocking(&config, limit)).await?
}

fn redrive_blocking(config: &Config, limit: Option<u64>) -> anyhow::Result<u64> {
    let consumer = kafka::Bounded::new(
        kafka::group_consumer(config, Group::Redrive).create::<BaseConsumer>()?,
        CALL_TIMEOUT,
    );
    let producer: FutureProducer = kafka::producer(config, ProducerRole::DeadLetter).create()?;
    republish(config, &consumer, &producer, limit)
}

fn republish(
    config: &Config,
    consumer: &BaseConsumer,
    producer: &FutureProducer,
    limit: Option<u64>,
) -> anyhow::Result<u64> {
    let dlq = &config.consumer.dlq_topic;
    let metadata = consumer.fetch_metadata(Some(dlq), CALL_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == dlq)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(!partitions.is_empty(), "dead-letter topic {dlq} does not exist");
    let mut wanted = TopicPartitionList::new();
    for p in &partitions {
        wanted.add_partition(dlq, *p);
    }
    let committed = consumer.committed_offsets(wanted, CALL_TIMEOUT)?;
    let mut assign = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(dlq, *p, CALL_TIMEOUT)?;
        let start = match committed.find_partition(dlq, *p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= low => o,
            _ => low,
        };
        if start < high {
            assign.add_partition_offset(dlq, *p, Offset::Offset(start))?;
            ends.insert(*p, high);
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assign)?;
    let mut done = BTreeMap::new();
    let mut count = 0u64;
    let result = republish_until(config, consumer, producer, limit, &mut ends, &mut done, &mut count);
    // What was re-published is committed even when a later message failed: the next run starts
    // after it.
    if !done.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for (p, next) in done {
            tpl.add_partition_offset(dlq, p, Offset::Offset(next))?;
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
    }
    result.map(|()| count)
}

/// Re-publishes from the assigned positions until every partition reached its end (or `limit`),
/// noting in `done` the next offset of each partition.
fn republish_until(
    config: &Config,
    consumer: &BaseConsumer,
    producer: &FutureProducer,
    limit: Option<u64>,
    ends: &mut BTreeMap<i32, i64>,
    done: &mut BTreeMap<i32, i64>,
    count: &mut u64,
) -> anyhow::Result<()> {
    let dlq = &config.consumer.dlq_topic;
    while !ends.is_empty() && limit.is_none_or(|l| *count < l) {
        let Some(msg) = consumer.poll(CALL_TIMEOUT) else {
            anyhow::bail!(
                "no message from {dlq} within {CALL_TIMEOUT:?} while {} partition(s) had more",
                ends.len()
            );
        };
        let msg: OwnedMessage = msg?.detach();
        let target = header_str(&msg, dead_letter::TOPIC)
            .unwrap_or(&config.kafka.logs_topic)
            .to_string();
        let mut pending = vec![Outgoing::from_message(&msg, dead_letter::original_headers(&msg))];
        produce_all(producer, &target, &mut pending)?;
        *count += 1;
        done.insert(msg.partition(), msg.offset() + 1);
        if ends.get(&msg.partition()).is_some_and(|end| msg.offset() + 1 >= *end) {
            ends.remove(&msg.partition());
        }
    }
    Ok(())
}

/// How many times one message is tried before redrive stops with an error.
const PRODUCE_TRIES: usize = 8;

/// Produces until everything is acknowledged, backing off between tries (0.2 s doubling to
/// 10 s); after [`PRODUCE_TRIES`] failed tries (about 23 s of waiting, plus each try's own
/// delivery timeout) it stops with an error that names the topic. What was re-published before is
/// committed, so running redrive again continues from the failed message.
fn produce_all(producer: &FutureProducer, topic: &str, pending: &mut Vec<Outgoing>) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    for attempt in 1..=PRODUCE_TRIES {
        futures::executor::block_on(kafka::produce_once(producer, topic, pending));
        if pending.is_empty() {
            return Ok(());
        }
        if attempt < PRODUCE_TRIES {
            std::thread::sleep(backoff.next_delay());
        }
    }
    anyhow::bail!(
        "could not re-publish to {topic} after {PRODUCE_TRIES} tries; what was re-published before is committed"
    )
}
