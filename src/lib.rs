//! cowork-ingest: take in an organization's Claude Cowork and Claude Code telemetry.
//!
//! ```text
//!   Claude Code / Cowork clients (OTLP http/protobuf, http/json, gRPC)
//!        │
//!        ▼
//!   edge ──────────────► Kafka: cowork-otlp-logs (+ -metrics, -traces)
//!   auth, limits,         raw payloads, unchanged, with headers saying
//!   200 only once         tenant, key, content type, encoding, receive time
//!   Kafka has it          │
//!                         ▼
//!                    consumer group: decode, normalize, batch ──► dead-letter topic
//!                         │ offsets stored only after the insert succeeded
//!                         ▼
//!                    ClickHouse: events, typed tables per event kind, session and cost views
//! ```
//!
//! Modules follow the arrows: [`edge`] serves OTLP and publishes, [`envelope`] is the contract
//! between edge and consumer on Kafka, [`keys`] manages and checks API keys, [`config`] is the
//! one configuration, [`metrics`] names every metric, [`server`] and [`admin`] are the HTTP
//! plumbing every service shares, and [`dev_broker`] is the in-memory Kafka for local runs.
//! For the consumer: [`wire`] reads protobuf in place, [`decode`] turns payloads into borrowed
//! views (fast paths, plus the owned reference decode tests hold them to), [`normalize`]
//! knows every spelling of every attribute, [`rows`] encodes RowBinary rows, [`store`] talks to
//! ClickHouse, [`schema`] owns migrations, retention and erasure, and [`consumer`] runs the
//! group: batches, offsets, retries and dead letters.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod decode;
pub mod dev_broker;
pub mod edge;
pub mod envelope;
#[cfg(test)]
mod fixtures;
pub mod keys;
pub mod loadgen;
pub mod metrics;
pub mod normalize;
pub mod rows;
pub mod schema;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod topics;
pub mod wire;
