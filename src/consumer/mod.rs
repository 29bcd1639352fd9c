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
//!
//! By job: [`message`] turns one Kafka message into rows, `batch` keeps the rows and offsets
//! of a run of messages, `insert` is the retry and bisection policy (unit-tested against a fake
//! store), `worker` is the loop (two batches deep: one filling while the one before it is
//! stored), `dead_letter` the dead letters, and `group` the partitions this member owns and their
//! lag, `refresher` the rollups. This module wires them to the admin port,
//! retention and the refresher.

mod batch;
mod dead_letter;
mod group;
mod insert;
pub mod message;
mod refresher;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::envelope::Envelope;
pub use dead_letter::DeadLetter;
pub use message::Decoder;
pub use worker::Consumer;

use crate::clickhouse::{retention, schema::SchemaError};
use crate::config::Config;
use crate::net::server;
use crate::telemetry::{self as m, admin};

/// Why the consumer could not start: fix the setup (schema, Kafka settings) and start again.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Credentials(#[from] crate::kafka::CredentialsError),
}

/// Runs `consume`: admin port, retention, and the consumer, until `shutdown`.
pub async fn run(config: Config, admin_listener: TcpListener, shutdown: CancellationToken) -> Result<(), StartError> {
    let prometheus = m::install();
    m::describe_consumer();
    m::set_tenant_label(config.metrics.tenant_label);
    let consumer = Consumer::new(config.clone()).await?;
    let ready = consumer.ready();
    let stop_lag = Arc::new(AtomicBool::new(false));
    group::watch_lag(&config, consumer.owned.clone(), stop_lag.clone())?;
    let owned = consumer.owned.clone();
    let extra: admin::ExtraFn = Arc::new(move || m::render_lag(&owned.lag()) + &m::render_budgets());
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(server::serve(
        admin_listener,
        None,
        admin::router(prometheus, Arc::new(move || ready.load(Ordering::Relaxed)), Some(extra)),
        admin_stop.clone(),
        Duration::from_secs(5),
        crate::config::ADMIN_MAX_CONNECTIONS,
    ));
    let retention = tokio::spawn(retention::run(config.clickhouse.clone(), shutdown.clone()));
    let refresher = tokio::spawn(refresher::run(config.clickhouse.clone(), shutdown.clone()));
    tracing::info!(topics = ?worker::topics(&config), group = %config.consumer.group_id, database = %config.clickhouse.database, "consumer started");
    consumer.run(shutdown).await;
    stop_lag.store(true, Ordering::Relaxed);
    retention.abort();
    refresher.abort();
    admin_stop.cancel();
    let _ = admin.await;
    Ok(())
}
