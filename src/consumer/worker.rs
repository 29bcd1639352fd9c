//! The worker loop, a pipeline two batches deep: while one batch is being stored by a task of its
//! own, the loop keeps taking messages and decoding them into the next.
//!
//! ```text
//!  Kafka ─► take: decode into the filling batch ──(due: full or old)──► hand over ─► storing task
//!                      ▲  (full while one is in flight: wait)             (one at a time)   │ rows, rollup
//!                      └──────────── store its offsets, reuse its buffers ◄──── stored ◄────┘ marks, dead letters
//! ```
//!
//! A batch is stored in order: rows first ([`super::insert`]), then rollup marks, then dead
//! letters; then, back in the loop, its offsets. Offsets move only past messages whose rows
//! ClickHouse acknowledged, or that the dead-letter topic acknowledged (rdkafka's at-least-once
//! rule, kept here), and batch after batch: the next is handed over only once the one before it
//! is stored, so at most two batches are in memory.
//!
//! Consumption pauses (the member keeps polling, so it stays in its group, and keeps what arrives
//! anyway in a stash, in order) while the batch in flight waits to retry, and when the filling
//! batch cannot take more for longer than [`STALL_PATIENCE`]; it resumes once both are over.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::batch::{Batch, Held};
use super::dead_letter::{self, DeadLetter};
use super::group::{GroupContext, Ownership};
use super::insert::{self, Pause};
use super::message::{envelope, Decoder};
use super::StartError;
use crate::clickhouse::store::Store;
use crate::clickhouse::{rollups, schema};
use crate::config::{Config, ConsumerConfig};
use crate::kafka::{self, Group};
use crate::otlp::Signal;
use crate::telemetry::consumer::{BatchStored, BytesConsumed, Paused};
use crate::telemetry::labels::DeadLetterClass;
use crate::util::Backoff;

/// How long startup waits for a broker to accept or refuse SASL credentials.
const CREDENTIALS_CHECK: Duration = Duration::from_secs(10);

/// How long shutdown waits for Kafka to confirm the commit and the group leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the loop waits for the batch in flight without polling Kafka, when the filling batch
/// cannot take more (librdkafka's prefetch queue fills meanwhile, and stops fetching). Past this,
/// consumption pauses and the loop polls again: a member that does not poll for
/// `max.poll.interval.ms` (5 minutes) is evicted from its group. An insert normally takes well
/// under it; one that takes longer means ClickHouse does not keep up, which `cowork_consumer_paused`
/// then shows.
const STALL_PATIENCE: Duration = Duration::from_secs(5);

/// The Kafka side of the worker: the group member, messages that arrived while consumption was
/// paused, and whether it is.
struct Intake {
    kafka: kafka::Bounded<StreamConsumer<GroupContext>>,
    /// Messages that arrived while the filling batch could not take them (fetched before a pause
    /// took effect, or from a newly assigned partition), in order: taken before any newer one.
    stash: VecDeque<OwnedMessage>,
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
}

/// What stores a batch: ClickHouse, the dead-letter producer, and the retry policy. Shared by the
/// tasks that store the batches in flight.
struct Sink {
    store: Store,
    producer: FutureProducer,
    dlq_topic: String,
    retry_min: Duration,
    retry_max: Duration,
    insert_concurrency: usize,
}

/// The in-flight batch's waits between retries: consumption pauses while it waits (the loop
/// watches `retrying`), and `stop` (the shutdown grace running out) cuts a wait short.
struct Retrying {
    stop: CancellationToken,
    retrying: watch::Sender<bool>,
}

impl Pause for Retrying {
    async fn wait(&mut self, delay: Duration) -> bool {
        self.retrying.send_replace(true);
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

impl Sink {
    fn backoff(&self) -> Backoff {
        Backoff::new(self.retry_min, self.retry_max)
    }

    /// Stores `batch`: rows first, then rollup marks, then dead letters. Returns it (its rows
    /// emptied, their buffers kept for a later batch) and whether all of it was stored; if not
    /// (`stop` fired first), its offsets must stay where they were.
    async fn store(&self, mut batch: Batch, mut pause: Retrying) -> (Batch, bool) {
        let stored = self.insert(&mut batch, &mut pause).await
            && self.mark_rollups(&batch, &mut pause).await
            && self.dead_letters(&mut batch, &mut pause).await;
        (batch, stored)
    }

    /// Inserts every held message's rows, then queues the messages ClickHouse rejected alone as
    /// dead letters, with the server's reason. The inserts read the batch's buffers in place.
    async fn insert(&self, batch: &mut Batch, pause: &mut Retrying) -> bool {
        if batch.held.is_empty() {
            return true;
        }
        let bounds = batch.bounds();
        let bytes = batch.rows.bytes();
        let (rows, data) = insert::share(std::mem::take(&mut batch.rows));
        let outcome = insert::insert_messages(
            &self.store,
            &data,
            &bounds,
            self.insert_concurrency,
            self.backoff(),
            pause,
        )
        .await;
        batch.rows = insert::reclaim(rows, data);
        let Some(rejected) = outcome else {
            return false;
        };
        let mut held = std::mem::take(&mut batch.held);
        batch.inserted_count = (held.len() - rejected.len()) as u64;
        batch.inserted_bytes = bytes;
        for (i, reason) in rejected {
            let msg = &held[i].msg;
            tracing::warn!(partition = msg.partition(), offset = msg.offset(), error = %reason, "ClickHouse rejected a payload; dead-lettering it");
            batch.dead_letter(msg, DeadLetter::new(DeadLetterClass::ClickhouseRejected, reason));
        }
        held.clear();
        batch.held = held;
        true
    }

    /// Marks the (tenant, day)s the batch wrote to for the rollup refresher, retrying while
    /// ClickHouse is unavailable. Before the offsets are stored: a crash after the rows landed
    /// but before the mark replays the batch, which marks them again.
    async fn mark_rollups(&self, batch: &Batch, pause: &mut Retrying) -> bool {
        let touched: Vec<(&str, u16)> = batch
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
                    if !pause.wait(backoff.next_delay()).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Produces the batch's dead letters until the dead-letter topic acknowledged every one.
    async fn dead_letters(&self, batch: &mut Batch, pause: &mut Retrying) -> bool {
        let mut backoff = self.backoff();
        loop {
            kafka::produce_once(&self.producer, &self.dlq_topic, &mut batch.dead).await;
            if batch.dead.is_empty() {
                return true;
            }
            if !pause.wait(backoff.next_delay()).await {
                return false;
            }
        }
    }
}

/// The batch being stored, by its own task.
struct InFlight {
    task: JoinHandle<(Batch, bool)>,
    /// True once the task waited to retry.
    retrying: watch::Receiver<bool>,
}

/// One member of the consumer group, from Kafka to ClickHouse.
pub struct Consumer {
    config: Config,
    intake: Intake,
    pub(super) owned: Arc<Ownership>,
    sink: Arc<Sink>,
    decoder: Decoder,
    /// The batch taking messages.
    batch: Batch,
    /// The last stored batch, emptied: its buffers become the next filling batch's.
    spare: Option<Batch>,
    in_flight: Option<InFlight>,
    /// Since when the filling batch cannot take more while one is in flight.
    stalled_since: Option<Instant>,
    /// The in-flight batch's retry waits stop when this fires: never while consuming; at
    /// shutdown, once `shutdown_flush_ms` has passed.
    grace: CancellationToken,
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
        let c = &config.consumer;
        let sink = Sink {
            store,
            producer: dead_letter::producer(&config)?,
            dlq_topic: c.dlq_topic.clone(),
            retry_min: Duration::from_millis(c.retry_min_ms),
            retry_max: Duration::from_millis(c.retry_max_ms),
            insert_concurrency: c.insert_concurrency,
        };
        Ok(Consumer {
            owned,
            sink: Arc::new(sink),
            decoder: Decoder::new(config.edge.max_decompressed_bytes, config.attribution.clone()),
            intake: Intake {
                kafka,
                stash: VecDeque::new(),
                paused: false,
                ready: Arc::new(AtomicBool::new(false)),
            },
            config,
            batch: Batch::default(),
            spare: None,
            in_flight: None,
            stalled_since: None,
            grace: CancellationToken::new(),
        })
    }

    /// True while the consumer takes messages (false while paused or stopping): `/readyz`.
    pub(super) fn ready(&self) -> Arc<AtomicBool> {
        self.intake.ready.clone()
    }

    fn limits(&self) -> &ConsumerConfig {
        &self.config.consumer
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.limits().batch_max_age_ms)
    }

    /// Whether the filling batch takes another message now: always with nothing in flight; with
    /// a batch in flight, only when pipelined and not full.
    fn can_take(&self) -> bool {
        self.in_flight.is_none() || (self.limits().pipelined && !self.batch.is_full(self.limits()))
    }

    /// Consumes until `shutdown`, then stores the batch in flight and the last one, and commits.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.intake.ready.store(true, Ordering::Relaxed);
        loop {
            if !self.advance() {
                break;
            }
            let can_take = self.can_take();
            let age_deadline = match self.in_flight {
                None => self.batch.opened.map(|t| t + self.max_age()),
                Some(_) => None,
            };
            let stall_deadline = match self.stalled_since {
                Some(t) if !self.intake.paused => Some(t + STALL_PATIENCE),
                _ => None,
            };
            let poll = can_take || self.intake.paused;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                news = in_flight_news(&mut self.in_flight) => match news {
                    News::RetryStarted => {}
                    News::Ended(done) => {
                        self.in_flight = None;
                        if !self.stored(*done) {
                            break;
                        }
                    }
                },
                _ = sleep_until(stall_deadline), if stall_deadline.is_some() => self.intake.pause(),
                _ = sleep_until(age_deadline), if age_deadline.is_some() => {}
                received = self.intake.kafka.recv(), if poll => match received {
                    Ok(msg) => {
                        let msg = msg.detach();
                        if self.intake.paused {
                            // A newly assigned partition is not paused yet.
                            self.intake.pause();
                        }
                        if can_take && self.intake.stash.is_empty() {
                            self.take(msg);
                        } else {
                            self.intake.stash.push_back(msg);
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
        tracing::info!("shutting down: storing the batch in flight, then the last one");
        let timer = self.grace.clone();
        let flush_for = Duration::from_millis(self.limits().shutdown_flush_ms);
        tokio::spawn(async move {
            tokio::time::sleep(flush_for).await;
            timer.cancel();
        });
        let mut stored = match self.in_flight.take() {
            Some(f) => {
                let done = self.wait_polling(f.task).await;
                self.stored(done)
            }
            None => true,
        };
        if stored {
            while let Some(msg) = self.intake.stash.pop_front() {
                self.take(msg);
            }
            if !self.batch.is_empty() {
                let task = self.hand_over().task;
                let done = self.wait_polling(task).await;
                stored = self.stored(done);
            }
        }
        if stored {
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

    /// Moves the pipeline on after anything happened: hands the filling batch over when it is due
    /// and nothing is in flight, takes stashed messages while the filling batch can, and pauses
    /// or resumes consumption. Returns false if a batch cannot be stored (never while consuming).
    fn advance(&mut self) -> bool {
        loop {
            if self.in_flight.is_none() && self.batch.is_due(self.limits(), self.max_age()) {
                let f = self.hand_over();
                self.in_flight = Some(f);
            }
            while self.can_take() {
                match self.intake.stash.pop_front() {
                    Some(msg) => self.take(msg),
                    None => break,
                }
            }
            if self.in_flight.is_some() || !self.batch.is_due(self.limits(), self.max_age()) {
                break;
            }
        }
        let stalled = !self.can_take();
        match (stalled, self.stalled_since) {
            (true, None) => self.stalled_since = Some(Instant::now()),
            (false, Some(_)) => self.stalled_since = None,
            _ => {}
        }
        let retrying = self.in_flight.as_ref().is_some_and(|f| *f.retrying.borrow());
        if retrying && !self.intake.paused {
            self.intake.pause();
        } else if !retrying && !stalled && self.intake.paused {
            self.intake.resume();
        }
        true
    }

    /// Hands the filling batch to a task that stores it; the next one fills the last stored
    /// batch's buffers.
    fn hand_over(&mut self) -> InFlight {
        let next = self.spare.take().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        let (tx, rx) = watch::channel(false);
        let pause = Retrying {
            stop: self.grace.clone(),
            retrying: tx,
        };
        let sink = self.sink.clone();
        InFlight {
            task: tokio::spawn(async move { sink.store(batch, pause).await }),
            retrying: rx,
        }
    }

    /// After a batch's task ended: stores its offsets if all of it was stored. Returns whether
    /// it was.
    fn stored(&mut self, done: Result<(Batch, bool), JoinError>) -> bool {
        let (batch, stored) = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        if !stored {
            return false;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in batch.offsets_to_store(&self.owned.assigned()) {
            let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(next));
        }
        if let Err(e) = self.intake.kafka.store_offsets(&tpl) {
            // A partition was revoked while the batch was open: its new owner reads these
            // messages again, and the tables' deduplication keeps the result exact.
            tracing::info!(error = %e, "offsets not stored for revoked partitions");
        }
        BatchStored {
            stats: &batch.stats,
            inserted: batch.inserted_count,
            dead_lettered: batch.dead_count,
            bytes: batch.inserted_bytes,
            newest_received_ns: batch.newest_received_ns,
        }
        .emit();
        let recycled = batch.recycled();
        if self.batch.is_empty() {
            // Nothing was taken meanwhile (not pipelined, or idle): fill these buffers next, and
            // keep no third set.
            self.batch = recycled;
        } else {
            self.spare = Some(recycled);
        }
        true
    }

    /// Waits for a batch's task at shutdown, still polling Kafka (so that the group keeps this
    /// member); what arrives meanwhile is stashed, and consumption paused.
    async fn wait_polling(&mut self, mut task: JoinHandle<(Batch, bool)>) -> Result<(Batch, bool), JoinError> {
        loop {
            tokio::select! {
                done = &mut task => return done,
                received = self.intake.kafka.recv() => {
                    if let Ok(msg) = received {
                        self.intake.stash.push_back(msg.detach());
                        self.intake.pause();
                    }
                }
            }
        }
    }

    /// Adds one message to the filling batch: its rows, or a dead letter.
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
}

/// What the batch in flight has to say.
enum News {
    /// It started waiting to retry (consumption pauses).
    RetryStarted,
    /// Its task ended: the batch, and whether all of it was stored.
    Ended(Box<Result<(Batch, bool), JoinError>>),
}

/// The next news of the batch in flight (never, with nothing in flight): it starts waiting to
/// retry (once), or its task ends.
async fn in_flight_news(in_flight: &mut Option<InFlight>) -> News {
    let Some(f) = in_flight else {
        return std::future::pending().await;
    };
    let retry = async {
        if !*f.retrying.borrow() && f.retrying.changed().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        biased;
        done = &mut f.task => News::Ended(Box::new(done)),
        _ = retry => News::RetryStarted,
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
