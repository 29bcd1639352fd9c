//! The dead-letter topic: payloads the consumer cannot store, kept byte for byte with their
//! original headers and a reason, and `redrive`, which publishes them back after a fix.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::payload::DeadLetter;
use crate::config::Config;
use crate::edge::publish::client_config;

/// Headers a dead letter carries besides the original ones.
pub mod header {
    /// Why: one of `crate::metrics::DEAD_LETTER_CLASSES`.
    pub const CLASS: &str = "cowork-dlq-class";
    /// The error, as a sentence.
    pub const REASON: &str = "cowork-dlq-reason";
    /// Where the payload was read from.
    pub const TOPIC: &str = "cowork-dlq-topic";
    pub const PARTITION: &str = "cowork-dlq-partition";
    pub const OFFSET: &str = "cowork-dlq-offset";
    /// Unix milliseconds when it was dead-lettered.
    pub const AT_MS: &str = "cowork-dlq-at-ms";
    pub const PREFIX: &str = "cowork-dlq-";
}

/// The idempotent producer for dead letters and redrives: a payload is acknowledged by every
/// in-sync replica before the offset that held it moves on.
pub fn producer(config: &Config) -> rdkafka::error::KafkaResult<FutureProducer> {
    let mut c = client_config(config);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .set("reconnect.backoff.max.ms", "1000")
        .set(
            "message.max.bytes",
            config
                .producer_message_max_bytes()
                .unwrap_or(config.edge.max_body_bytes)
                .to_string(),
        );
    for (k, v) in &config.kafka.producer {
        c.set(k, v);
    }
    c.create()
}

/// Longest `cowork-dlq-reason`, in characters.
const MAX_REASON_CHARS: usize = 2048;

/// A message's headers without any `cowork-dlq-*` ones: what the edge wrote.
fn original_headers(msg: &impl Message) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = msg.headers() {
        for h in original.iter().filter(|h| !h.key.starts_with(header::PREFIX)) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers
}

/// A dead letter waiting to be produced.
pub struct Pending {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: OwnedHeaders,
}

impl Pending {
    /// The message as read, its original headers, and the reason.
    pub fn new(msg: &impl Message, why: &DeadLetter) -> Pending {
        let mut headers = original_headers(msg);
        let at = crate::edge::now_ms().to_string();
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        // A reason can quote a whole server error: keep the header small.
        let reason = match why.reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((cut, _)) => &why.reason[..cut],
            None => why.reason.as_str(),
        };
        for (key, value) in [
            (header::CLASS, why.class),
            (header::REASON, reason),
            (header::TOPIC, msg.topic()),
            (header::PARTITION, partition.as_str()),
            (header::OFFSET, offset.as_str()),
            (header::AT_MS, at.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        Pending {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }
}

/// Produces every pending message to `topic` once, concurrently; keeps the ones that failed in
/// `pending` for the caller to retry (the consumer waits between tries while still polling Kafka,
/// so that a broken dead-letter topic cannot get it evicted from its group).
pub async fn produce_once(producer: &FutureProducer, topic: &str, pending: &mut Vec<Pending>) {
    let sends = pending.iter().map(|p| {
        let mut record = FutureRecord::to(topic).payload(&p.payload).headers(p.headers.clone());
        if let Some(k) = &p.key {
            record = record.key(k);
        }
        producer.send(record, Duration::from_secs(5))
    });
    let results = futures::future::join_all(sends).await;
    let mut failed = Vec::new();
    for (p, r) in pending.drain(..).zip(results) {
        if let Err((e, _)) = r {
            tracing::error!(topic, error = %e, "producing to the dead-letter topic failed; retrying");
            failed.push(p);
        }
    }
    *pending = failed;
}

/// [`produce_once`] until everything is acknowledged, with backoff; false if `stop` fired first.
async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    pending: &mut Vec<Pending>,
    stop: &CancellationToken,
) -> bool {
    let mut backoff = Duration::from_millis(200);
    loop {
        produce_once(producer, topic, pending).await;
        if pending.is_empty() {
            return true;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Publishes dead letters back to the topic they came from (without the `cowork-dlq-*`
/// headers), from the redrive group's committed position up to the end of the dead-letter
/// topic as it was when redrive started. Returns how many were re-published.
pub async fn redrive(config: &Config, limit: Option<u64>) -> anyhow::Result<u64> {
    let dlq = &config.consumer.dlq_topic;
    let mut c = client_config(config);
    c.set("group.id", format!("{}-redrive", config.consumer.group_id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = c.create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(dlq), timeout)?;
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
    let committed = consumer.committed_offsets(wanted, timeout)?;
    let mut assign = TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(dlq, *p, timeout)?;
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
    let producer = producer(config)?;
    let mut done = std::collections::BTreeMap::new();
    let mut count = 0u64;
    let stop = CancellationToken::new();
    while !ends.is_empty() && limit.is_none_or(|l| count < l) {
        let Some(msg) = consumer.poll(timeout) else {
            anyhow::bail!(
                "no message from {dlq} within {timeout:?} while {} partition(s) had more",
                ends.len()
            );
        };
        let msg: OwnedMessage = msg?.detach();
        let target = super::payload::header_str(&msg, header::TOPIC)
            .unwrap_or(&config.kafka.logs_topic)
            .to_string();
        let headers = original_headers(&msg);
        let mut pending = vec![Pending {
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            headers,
        }];
        if !produce_all(&producer, &target, &mut pending, &stop).await {
            anyhow::bail!("could not re-publish to {target}");
        }
        count += 1;
        done.insert(msg.partition(), msg.offset() + 1);
        if ends.get(&msg.partition()).is_some_and(|end| msg.offset() + 1 >= *end) {
            ends.remove(&msg.partition());
        }
    }
    if !done.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for (p, next) in done {
            tpl.add_partition_offset(dlq, p, Offset::Offset(next))?;
        }
        consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync)?;
    }
    Ok(count)
}
