//! The consumer: a Kafka consumer group that turns raw OTLP payloads into ClickHouse rows.
//!
//! ```text
//!  Kafka ─► headers ─► decompress ─► fast decode ─► normalize ─► RowBinary per table ─┐
//!            │ bad        │ bad          │ bad                                       │ batch closes on
//!            ▼            ▼              ▼                                           ▼ rows, bytes or age
//!                  dead-letter topic (with reason) ◄── bisect ◄─ rejected ── one INSERT per table
//!                                                                              │ ok      │ unavailable
//!                                                                 store offsets ◄┘        └► pause, back off, retry
//! ```
//!
//! Offsets move only past messages whose rows ClickHouse acknowledged, or that the dead-letter
//! topic acknowledged. Everything else is read again after a crash, a rebalance or a restart,
//! and the tables' deduplication on `event_id` makes that replay exact.

mod dead_letter;
mod group;
mod payload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use dead_letter::{header as dead_letter_header, redrive};
pub use payload::{envelope, DeadLetter, Decoder, Envelope, Stats};

use crate::config::Config;
use crate::edge::publish::client_config;
use crate::metrics as m;
use crate::rows::{Mark, Rows, Table};
use crate::schema::{self, SchemaError};
use crate::store::{Store, StoreError};
use crate::{admin, server};
use dead_letter::Pending;
use group::{GroupContext, Ownership};

/// How long shutdown waits for Kafka to confirm the commit and the group leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// A message whose rows are in the batch, and where they start in each table's buffer.
struct Held {
    msg: OwnedMessage,
    start: Mark,
}

/// Rows and offsets since the last flush.
#[derive(Default)]
struct Batch {
    rows: Rows,
    held: Vec<Held>,
    dead: Vec<Pending>,
    /// Per partition, the offset after the last message taken.
    next_offsets: BTreeMap<i32, i64>,
    /// Per tenant.
    stats: BTreeMap<String, Stats>,
    dead_count: u64,
    inserted_count: u64,
    newest_received_ns: u64,
    wire_bytes: usize,
    opened: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }
}

pub struct Consumer {
    config: Config,
    kafka: StreamConsumer<GroupContext>,
    owned: Arc<Ownership>,
    store: Store,
    producer: FutureProducer,
    decoder: Decoder,
    batch: Batch,
    /// Messages that arrived while consumption was paused, taken after the flush.
    stash: Vec<OwnedMessage>,
    paused: bool,
    ready: Arc<AtomicBool>,
}

impl Consumer {
    /// Checks the schema, then joins the consumer group.
    pub async fn new(config: Config) -> Result<Consumer, StartError> {
        let store = Store::new(&config.clickhouse);
        schema::check(&store).await?;
        let mut c = client_config(&config);
        c.set("group.id", &config.consumer.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "queued.max.messages.kbytes",
                crate::config::DEFAULT_CONSUMER_QUEUE_KBYTES,
            )
            .set("reconnect.backoff.max.ms", "1000");
        for (k, v) in &config.kafka.consumer {
            c.set(k, v);
        }
        let owned = Arc::new(Ownership::default());
        let kafka: StreamConsumer<GroupContext> = c.create_with_context(GroupContext {
            topic: config.kafka.logs_topic.clone(),
            owned: owned.clone(),
        })?;
        kafka.subscribe(&[&config.kafka.logs_topic])?;
        Ok(Consumer {
            owned,
            producer: dead_letter::producer(&config)?,
            decoder: Decoder::new(config.edge.max_decompressed_bytes),
            store,
            kafka,
            config,
            batch: Batch::default(),
            stash: Vec::new(),
            paused: false,
            ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Consumes until `shutdown`, then flushes the last batch and commits.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.ready.store(true, Ordering::Relaxed);
        let max_age = Duration::from_millis(self.config.consumer.batch_max_age_ms);
        loop {
            let deadline = self.batch.opened.map(|t| tokio::time::Instant::from_std(t + max_age));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if !self.flush(&shutdown).await { break; }
                }
                received = self.kafka.recv() => match received {
                    Ok(msg) => {
                        let msg = msg.detach();
                        self.take(msg);
                        if self.is_full() && !self.flush(&shutdown).await {
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
        self.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: flushing the last batch");
        let grace = CancellationToken::new();
        let timer = grace.clone();
        let flush_for = Duration::from_millis(self.config.consumer.shutdown_flush_ms);
        tokio::spawn(async move {
            tokio::time::sleep(flush_for).await;
            timer.cancel();
        });
        for msg in std::mem::take(&mut self.stash) {
            self.take(msg);
        }
        if self.flush(&grace).await {
            if let Err(e) = self.kafka.commit_consumer_state(CommitMode::Async) {
                tracing::debug!(error = %e, "final commit had nothing to commit or failed");
            }
        } else {
            tracing::warn!("the last batch was not stored; its messages will be read again");
        }
        // Closing commits the stored offsets and leaves the group. With Kafka unreachable that
        // can block for minutes: wait a bounded time, then exit anyway (what was not committed
        // is read again, and deduplicated).
        let (done, closed) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            drop(self);
            let _ = done.send(());
        });
        if tokio::time::timeout(CLOSE_TIMEOUT, closed).await.is_err() {
            tracing::warn!("Kafka did not confirm the consumer's close within {CLOSE_TIMEOUT:?}; exiting anyway");
        }
        tracing::info!("consumer stopped");
    }

    fn is_full(&self) -> bool {
        let b = &self.batch;
        b.rows.events() >= self.config.consumer.batch_max_rows
            || b.rows.bytes() + b.wire_bytes >= self.config.consumer.batch_max_bytes
    }

    /// Adds one message to the batch: its rows, or a dead letter.
    fn take(&mut self, msg: OwnedMessage) {
        let body = msg.payload().unwrap_or_default();
        ::metrics::counter!(m::CONSUMER_BYTES).increment(body.len() as u64);
        let batch = &mut self.batch;
        batch.opened.get_or_insert_with(Instant::now);
        batch.wire_bytes += body.len();
        batch.next_offsets.insert(msg.partition(), msg.offset() + 1);
        let start = batch.rows.mark();
        let result = envelope(&msg).and_then(|env| {
            let policy = self.config.content.policy(env.tenant);
            let stats = self
                .decoder
                .encode(&env, body, msg.partition(), msg.offset(), policy, &mut batch.rows)?;
            Ok((stats, env))
        });
        let keep = match result {
            Ok((stats, env)) => {
                batch.newest_received_ns = batch.newest_received_ns.max(env.received_at_ns);
                let keep = stats.total() > 0;
                match batch.stats.get_mut(env.tenant) {
                    Some(s) => s.add(&stats),
                    None => {
                        batch.stats.insert(env.tenant.to_string(), stats);
                    }
                }
                keep
            }
            Err(why) => {
                dead_letter(batch, &msg, why);
                false
            }
        };
        if keep {
            batch.held.push(Held { msg, start });
        }
    }

    /// Stores the batch: dead letters first, then one insert per table, then offsets. Returns
    /// false if `stop` fired before everything was stored; offsets then stay where they were.
    async fn flush(&mut self, stop: &CancellationToken) -> bool {
        if self.batch.is_empty() {
            self.batch.opened = None;
            return true;
        }
        if !self.insert_batch(stop).await {
            return false;
        }
        let dlq = self.config.consumer.dlq_topic.clone();
        let mut backoff = Duration::from_millis(self.config.consumer.retry_min_ms);
        loop {
            dead_letter::produce_once(&self.producer, &dlq, &mut self.batch.dead).await;
            if self.batch.dead.is_empty() {
                break;
            }
            if !self.wait(backoff, stop).await {
                return false;
            }
            backoff = (backoff * 2).min(Duration::from_millis(self.config.consumer.retry_max_ms));
        }
        let batch = std::mem::take(&mut self.batch);
        let mut tpl = TopicPartitionList::new();
        let owned = self.owned.assigned();
        for (partition, next) in &batch.next_offsets {
            // A partition revoked while the batch was open is read again by its new owner (the
            // tables deduplicate); storing its stale offset could move the group backwards.
            if owned.contains(partition) {
                let _ = tpl.add_partition_offset(&self.config.kafka.logs_topic, *partition, Offset::Offset(*next));
            }
        }
        if let Err(e) = self.kafka.store_offsets(&tpl) {
            // A partition was revoked while the batch was open: its new owner reads these
            // messages again, and the tables' deduplication keeps the result exact.
            tracing::info!(error = %e, "offsets not stored for revoked partitions");
        }
        if self.paused {
            if let Ok(assignment) = self.kafka.assignment() {
                let _ = self.kafka.resume(&assignment);
            }
            self.paused = false;
            self.ready.store(true, Ordering::Relaxed);
            ::metrics::gauge!(m::CONSUMER_PAUSED).set(0.0);
            ::metrics::gauge!(m::CONSUMER_PAUSED_PARTITIONS).set(0.0);
            tracing::info!("ClickHouse took the batch; consumption resumed");
        }
        record_batch(&batch);
        for msg in std::mem::take(&mut self.stash) {
            self.take(msg);
        }
        true
    }

    /// Inserts every held message's rows. Transient failures are retried with backoff while
    /// consumption is paused; a rejected batch is bisected by message, and messages rejected
    /// alone are dead-lettered with the server's reason.
    async fn insert_batch(&mut self, stop: &CancellationToken) -> bool {
        if self.batch.held.is_empty() {
            return true;
        }
        // The batch stays intact until every row is stored: a shutdown in the middle of the
        // retries leaves it whole, and its offsets unstored.
        let held = std::mem::take(&mut self.batch.held);
        let end = self.batch.rows.mark();
        let data: [Bytes; 6] = std::array::from_fn(|i| Bytes::copy_from_slice(&self.batch.rows.bufs[i]));
        let start_of = |i: usize| if i < held.len() { held[i].start } else { end };
        let mut ranges = vec![(0, held.len())];
        let mut rejected = Vec::new();
        let mut backoff = Duration::from_millis(self.config.consumer.retry_min_ms);
        while let Some((lo, hi)) = ranges.pop() {
            let (from, to) = (start_of(lo), start_of(hi));
            match self.insert_range(&data, from, to).await {
                Ok(()) => backoff = Duration::from_millis(self.config.consumer.retry_min_ms),
                Err(StoreError::Retry(e)) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "insert failed; pausing and retrying");
                    if !self.wait(backoff, stop).await {
                        self.batch.held = held;
                        return false;
                    }
                    backoff = (backoff * 2).min(Duration::from_millis(self.config.consumer.retry_max_ms));
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
        self.batch.inserted_count = (held.len() - rejected.len()) as u64;
        ::metrics::histogram!(m::CONSUMER_BATCH_BYTES).record(end.bytes.iter().sum::<usize>() as f64);
        for (i, reason) in rejected {
            let msg = &held[i].msg;
            tracing::warn!(partition = msg.partition(), offset = msg.offset(), error = %reason, "ClickHouse rejected a payload; dead-lettering it");
            let why = DeadLetter {
                class: "clickhouse_rejected",
                reason,
            };
            dead_letter(&mut self.batch, msg, why);
        }
        self.batch.rows.clear();
        true
    }

    /// One INSERT per table for the rows between two marks.
    async fn insert_range(&self, data: &[Bytes; 6], from: Mark, to: Mark) -> Result<(), StoreError> {
        for table in Table::ALL {
            let i = table as usize;
            if to.rows[i] == from.rows[i] {
                continue;
            }
            let started = Instant::now();
            let result = self
                .store
                .insert(table.name(), table.columns(), data[i].slice(from.bytes[i]..to.bytes[i]))
                .await;
            match &result {
                Ok(()) => ::metrics::histogram!(m::CONSUMER_INSERT_DURATION, "table" => table.name())
                    .record(started.elapsed().as_secs_f64()),
                Err(e) => ::metrics::counter!(m::CONSUMER_INSERT_ERRORS, "table" => table.name(), "class" => e.class())
                    .increment(1),
            }
            result?;
        }
        Ok(())
    }

    /// Waits `delay` with consumption paused, still polling Kafka so that the group keeps this
    /// member. Returns false if `stop` fired.
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

    fn pause(&mut self) {
        if let Ok(assignment) = self.kafka.assignment() {
            let _ = self.kafka.pause(&assignment);
            ::metrics::gauge!(m::CONSUMER_PAUSED_PARTITIONS).set(assignment.count() as f64);
        }
        if !self.paused {
            self.paused = true;
            self.ready.store(false, Ordering::Relaxed);
            ::metrics::gauge!(m::CONSUMER_PAUSED).set(1.0);
        }
    }
}

fn dead_letter(batch: &mut Batch, msg: &OwnedMessage, why: DeadLetter) {
    tracing::warn!(partition = msg.partition(), offset = msg.offset(), class = why.class, reason = %why.reason, "dead-lettering a payload");
    ::metrics::counter!(m::CONSUMER_DEAD_LETTERS, "class" => why.class).increment(1);
    batch.dead.push(Pending::new(msg, &why));
    batch.dead_count += 1;
}

fn record_batch(batch: &Batch) {
    let mut s = Stats::default();
    for (tenant, t) in &batch.stats {
        for (i, label) in m::EVENT_LABELS.iter().enumerate() {
            if t.events[i] > 0 {
                ::metrics::counter!(m::CONSUMER_EVENTS, "event" => *label, "tenant" => m::tenant(tenant))
                    .increment(t.events[i]);
            }
        }
        s.add(t);
    }
    for (i, source) in ["observed", "event_timestamp", "received", "clamped"]
        .iter()
        .enumerate()
    {
        if s.time_fallbacks[i] > 0 {
            ::metrics::counter!(m::CONSUMER_TIME_FALLBACKS, "source" => *source).increment(s.time_fallbacks[i]);
        }
    }
    ::metrics::counter!(m::CONSUMER_COERCION_FAILURES).increment(s.coercion_failures);
    ::metrics::counter!(m::CONSUMER_MESSAGES, "outcome" => "dead_lettered").increment(batch.dead_count);
    ::metrics::counter!(m::CONSUMER_MESSAGES, "outcome" => "inserted").increment(batch.inserted_count);
    ::metrics::histogram!(m::CONSUMER_BATCH_ROWS).record(s.total() as f64);
    if batch.inserted_count > 0 {
        ::metrics::gauge!(m::CONSUMER_LAST_INSERT).set(crate::edge::now_ms() as f64 / 1e3);
    }
    if batch.newest_received_ns > 0 {
        ::metrics::gauge!(m::CONSUMER_COMMITTED_RECEIVED_AT).set(batch.newest_received_ns as f64 / 1e9);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs `consume`: admin port, retention, and the consumer, until `shutdown`.
pub async fn run(config: Config, admin_listener: TcpListener, shutdown: CancellationToken) -> Result<(), StartError> {
    let prometheus = m::install();
    m::describe_consumer();
    m::set_tenant_label(config.metrics.tenant_label);
    let consumer = Consumer::new(config.clone()).await?;
    let ready = consumer.ready.clone();
    let stop_lag = Arc::new(AtomicBool::new(false));
    group::watch_lag(&config, consumer.owned.clone(), stop_lag.clone())?;
    let (owned, topic) = (consumer.owned.clone(), config.kafka.logs_topic.clone());
    let lag: admin::ExtraFn = Arc::new(move || m::render_lag(&topic, &owned.lag()));
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(server::serve(
        admin_listener,
        None,
        admin::router(prometheus, Arc::new(move || ready.load(Ordering::Relaxed)), Some(lag)),
        admin_stop.clone(),
        Duration::from_secs(5),
        crate::config::ADMIN_MAX_CONNECTIONS,
    ));
    let retention = tokio::spawn(retention_loop(config.clone(), shutdown.clone()));
    tracing::info!(topic = %config.kafka.logs_topic, group = %config.consumer.group_id, database = %config.clickhouse.database, "consumer started");
    consumer.run(shutdown).await;
    stop_lag.store(true, Ordering::Relaxed);
    retention.abort();
    admin_stop.cancel();
    let _ = admin.await;
    Ok(())
}

/// Drops expired partitions now and every `retention_check_ms`.
async fn retention_loop(config: Config, shutdown: CancellationToken) {
    if config.clickhouse.retention_days.values().all(|d| *d == 0) {
        return;
    }
    let store = Store::new(&config.clickhouse);
    let every = Duration::from_millis(config.clickhouse.retention_check_ms.max(1000));
    loop {
        let today = time::OffsetDateTime::now_utc().date();
        if let Err(e) = schema::apply_retention(&store, &config.clickhouse.retention_days, today).await {
            tracing::warn!(error = %e, "retention failed; trying again later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
