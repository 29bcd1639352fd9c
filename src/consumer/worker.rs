//! The worker loop: take messages into the batch, flush it when it is full or old, and keep
//! polling Kafka while a flush waits, so that the group keeps this member.
//!
//! A flush stores the batch in order: rows first ([`super::insert`]), then dead letters, then
//! offsets. Offsets move only past messages whose rows ClickHouse acknowledged, or that the
//! dead-letter topic acknowledged (rdkafka's at-least-once rule, kept next to the loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::batch::{Batch, Held};
use super::dead_letter::{self, DeadLetter};
use super::group::{GroupContext, Ownership};
use super::insert::{self, Pause};
use super::message::{envelope, Decoder};
use super::StartError;
use crate::clickhouse::store::Store;
use crate::clickhouse::{rollups, schema, Table};
use crate::config::Config;
use crate::kafka::{self, Group};
use crate::otlp::Signal;
use crate::telemetry::consumer::{BatchStored, BytesConsumed, Paused};
use crate::telemetry::labels::DeadLetterClass;
use crate::util::Backoff;

/// How long startup waits for a broker to accept or refuse SASL credentials.
const CREDENTIALS_CHECK: Duration = Duration::from_secs(10);

/// How long shutdown waits for Kafka to confirm the commit and the group leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The Kafka side of the worker: the group member, messages that arrived while consumption was
/// paused, and whether it is.
struct Intake {
    kafka: kafka::Bounded<StreamConsumer<GroupContext>>,
    /// Messages that arrived while consumption was paused, taken after the flush.
    stash: Vec<OwnedMessage>,
    paused: bool,
    ready: Arc<AtomicBool>,
}

impl Intake {
    fn pause(&mut self) {
        let partitions = match self.kafka.assignment() {
            Ok(assignment) => {
                let _ = self.kafka.pause(&assignment);
                assignment.count()
            }
            Err(_) => 0,
        };
        Paused {
            partitions: Some(partitions),
        }
        .emit();
        if !self.paused {
            self.paused = true;
            self.ready.store(false, Ordering::Relaxed);
        }
    }

    fn resume(&mut self) {
        if !self.paused {
            return;
        }
        if let Ok(assignment) = self.kafka.assignment() {
            let _ = self.kafka.resume(&assignment);
        }
        self.paused = false;
        self.ready.store(true, Ordering::Relaxed);
        Paused { partitions: None }.emit();
    }

    /// Waits `delay` with consumption paused, still polling Kafka. Returns false if `stop` fired.
    async fn wait(&mut self, delay: Duration, stop: &CancellationToken) -> bool {
        self.pause();
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = &mut sleep => return true,
                received = self.kafka.recv() => {
                    if let Ok(msg) = received {
                        // Fetched before the pause took effect (or from a newly assigned
                        // partition): keep it for after the flush.
                        self.stash.push(msg.detach());
                        self.pause();
                    }
                }
            }
        }
    }
}

/// [`Intake::wait`] until `stop`, as the insert policy's [`Pause`].
struct Waiting<'a> {
    intake: &'a mut Intake,
    stop: &'a CancellationToken,
}

impl Pause for Waiting<'_> {
    async fn wait(&mut self, delay: Duration) -> bool {
        self.intake.wait(delay, self.stop).await
    }
}

/// One member of the consumer group, from Kafka to ClickHouse.
pub struct Consumer {
    config: Config,
    intake: Intake,
    pub(super) owned: Arc<Ownership>,
    store: Store,
    producer: FutureProducer,
    decoder: Decoder,
    batch: Batch,
}

impl Consumer {
    /// Checks the schema, then joins the consumer group.
    pub async fn new(config: Config) -> Result<Consumer, StartError> {
        let mut store = Store::new(&config.clickhouse);
        schema::check(&store).await?;
        if schema::Target::detect(&store)
            .await
            .map_err(schema::SchemaError::from)?
            .features
            .partitions_per_insert_limit
        {
            // A backfill's batch spans more than the default 100 day partitions; the limit would
            // reject it and dead-letter good payloads.
            store = store.with_setting("max_partitions_per_insert_block", "0");
        }
        let check = config.clone();
        tokio::task::spawn_blocking(move || kafka::check_credentials(&check, &check.kafka.consumer, CREDENTIALS_CHECK))
            .await
            .expect("the credentials check does not panic")?;
        let owned = Arc::new(Ownership::default());
        let topics = topics(&config);
        let kafka: StreamConsumer<GroupContext> =
            kafka::group_consumer(&config, Group::Main).create_with_context(GroupContext {
                topics: topics.clone(),
                owned: owned.clone(),
            })?;
        kafka.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
        let kafka = kafka::Bounded::new(kafka, CLOSE_TIMEOUT);
        Ok(Consumer {
            owned,
            producer: dead_letter::producer(&config)?,
            decoder: Decoder::new(config.edge.max_decompressed_bytes, config.attribution.clone()),
            store,
            intake: Intake {
                kafka,
                stash: Vec::new(),
                paused: false,
                ready: Arc::new(AtomicBool::new(false)),
            },
            config,
            batch: Batch::default(),
        })
    }

    /// True while the consumer takes messages (false while paused or stopping): `/readyz`.
    pub(super) fn ready(&self) -> Arc<AtomicBool> {
        self.intake.ready.clone()
    }

    /// Consumes until `shutdown`, then flushes the last batch and commits.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.intake.ready.store(true, Ordering::Relaxed);
        let max_age = Duration::from_millis(self.config.consumer.batch_max_age_ms);
        loop {
            let deadline = self.batch.opened.map(|t| tokio::time::Instant::from_std(t + max_age));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if !self.flush(&shutdown).await { break; }
                }
                received = self.intake.kafka.recv() => match received {
                    Ok(msg) => {
                        let msg = msg.detach();
                        self.take(msg);
                        if self.batch.is_full(&self.config.consumer) && !self.flush(&shutdown).await {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        self.intake.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: flushing the last batch");
        let grace = CancellationToken::new();
        let timer = grace.clone();
        let flush_for = Duration::from_millis(self.config.consumer.shutdown_flush_ms);
        tokio::spawn(async move {
            tokio::time::sleep(flush_for).await;
            timer.cancel();
        });
        for msg in std::mem::take(&mut self.intake.stash) {
            self.take(msg);
        }
        if self.flush(&grace).await {
            if let Err(e) = self.intake.kafka.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(error = %e, "final commit had nothing to commit or failed");
            }
        } else {
            tracing::warn!("the last batch was not stored; its messages will be read again");
        }
        // Closing commits the stored offsets and leaves the group. With Kafka unreachable that
        // can block for minutes: the client's drop is bounded (kafka::Bounded, CLOSE_TIMEOUT),
        // then the consumer exits anyway (what was not committed is read again, and
        // deduplicated). It runs off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
        tracing::info!("consumer stopped");
    }

    /// Adds one message to the batch: its rows, or a dead letter.
    fn take(&mut self, msg: OwnedMessage) {
        BytesConsumed {
            bytes: msg.payload().map_or(0, <[u8]>::len),
        }
        .emit();
        let batch = &mut self.batch;
        batch.open_for(&msg);
        let start = batch.rows.mark();
        let body = msg.payload().unwrap_or_default();
        // The topic says which signal a message holds (the header says it too, and is trusted
        // only on a topic that is not one of the three raw topics, such as a redrive's source).
        let topic_signal = Signal::ALL
            .into_iter()
            .find(|s| kafka::topic_for(*s, &self.config.kafka) == msg.topic());
        let result = envelope(&msg).and_then(|mut env| {
            env.signal = topic_signal.unwrap_or(env.signal);
            let policy = self.config.content.policy(env.tenant);
            let stats = self
                .decoder
                .rows_into(&env, body, msg.partition(), msg.offset(), policy, &mut batch.rows)?;
            Ok((stats, env))
        });
        let keep = match result {
            Ok((stats, env)) => {
                batch.count(env.tenant, env.signal, &stats, env.received_at_ns);
                stats.total() > 0
            }
            Err(why) => {
                batch.dead_letter(&msg, why);
                false
            }
        };
        if keep {
            batch.held.push(Held { msg, start });
        }
    }

    fn backoff(&self) -> Backoff {
        let c = &self.config.consumer;
        Backoff::new(
            Duration::from_millis(c.retry_min_ms),
            Duration::from_millis(c.retry_max_ms),
        )
    }

    /// Stores the batch: rows first, then dead letters, then offsets. Returns false if `stop`
    /// fired before everything was stored; offsets then stay where they were.
    async fn flush(&mut self, stop: &CancellationToken) -> bool {
        if self.batch.is_empty() {
            self.batch.opened = None;
            return true;
        }
        if !self.insert_batch(stop).await {
            return false;
        }
        if !self.mark_rollups(stop).await {
            return false;
        }
        let dlq = self.config.consumer.dlq_topic.clone();
        let mut backoff = self.backoff();
        loop {
            kafka::produce_once(&self.producer, &dlq, &mut self.batch.dead).await;
            if self.batch.dead.is_empty() {
                break;
            }
            if !self.intake.wait(backoff.next_delay(), stop).await {
                return false;
            }
        }
        let batch = std::mem::take(&mut self.batch);
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in batch.offsets_to_store(&self.owned.assigned()) {
            let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(next));
        }
        if let Err(e) = self.intake.kafka.store_offsets(&tpl) {
            // A partition was revoked while the batch was open: its new owner reads these
            // messages again, and the tables' deduplication keeps the result exact.
            tracing::info!(error = %e, "offsets not stored for revoked partitions");
        }
        self.intake.resume();
        BatchStored {
            stats: &batch.stats,
            inserted: batch.inserted_count,
            dead_lettered: batch.dead_count,
            bytes: batch.inserted_bytes,
            newest_received_ns: batch.newest_received_ns,
        }
        .emit();
        for msg in std::mem::take(&mut self.intake.stash) {
            self.take(msg);
        }
        true
    }

    /// Marks the (tenant, day)s the batch wrote to for the rollup refresher, retrying while
    /// ClickHouse is unavailable. Before the offsets are stored: a crash after the rows landed
    /// but before the mark replays the batch, which marks them again.
    async fn mark_rollups(&mut self, stop: &CancellationToken) -> bool {
        let touched: Vec<(&str, u16)> = self
            .batch
            .stats
            .iter()
            .flat_map(|(tenant, s)| s.days.iter().map(move |d| (tenant.as_str(), *d)))
            .collect();
        let mut backoff = self.backoff();
        loop {
            match rollups::mark(&self.store, &touched).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, "marking the rollups to refresh failed; retrying");
                    if !self.intake.wait(backoff.next_delay(), stop).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Inserts every held message's rows, then dead-letters the messages ClickHouse rejected
    /// alone, with the server's reason. Returns false if `stop` fired first; the batch then stays
    /// intact and its offsets unstored.
    async fn insert_batch(&mut self, stop: &CancellationToken) -> bool {
        if self.batch.held.is_empty() {
            return true;
        }
        // Copied, so that a shutdown in the middle of the retries leaves the batch whole.
        let data: [Bytes; Table::COUNT] = Table::ALL.map(|t| Bytes::copy_from_slice(self.batch.rows.buf(t)));
        let bounds = self.batch.bounds();
        let backoff = self.backoff();
        let mut waiting = Waiting {
            intake: &mut self.intake,
            stop,
        };
        let Some(rejected) = insert::insert_messages(&self.store, &data, &bounds, backoff, &mut waiting).await else {
            return false;
        };
        let held = std::mem::take(&mut self.batch.held);
        self.batch.inserted_count = (held.len() - rejected.len()) as u64;
        self.batch.inserted_bytes = self.batch.rows.bytes();
        self.batch.rows.clear();
        for (i, reason) in rejected {
            let msg = &held[i].msg;
            tracing::warn!(partition = msg.partition(), offset = msg.offset(), error = %reason, "ClickHouse rejected a payload; dead-lettering it");
            self.batch
                .dead_letter(msg, DeadLetter::new(DeadLetterClass::ClickhouseRejected, reason));
        }
        true
    }
}

/// The topics a consumer reads: every signal's raw topic. One group reads them all, with the same
/// guarantees: offsets stored only after ClickHouse has the rows.
pub(super) fn topics(config: &Config) -> Vec<String> {
    Signal::ALL
        .into_iter()
        .map(|s| kafka::topic_for(s, &config.kafka).to_string())
        .collect()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
