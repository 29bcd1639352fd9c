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
//! # Layout
//!
//! The tree follows the arrows. Three layers, each using only the ones below it:
//!
//! - **Services and tools**: [`edge`] serves OTLP and publishes; [`consumer`] runs the group:
//!   batches, inserts, offsets, retries and dead letters; [`ops`] holds the operator commands
//!   (`status`, `topics`, `loadgen`, `redrive`, `keys`, `migrate`, `forget`). The edge and the
//!   consumer never use each other, and neither uses an operator command. `main.rs` parses the
//!   command line and calls them.
//! - **Shared parts**: [`kafka`] builds every Kafka client and names the topics;
//!   [`clickhouse`] owns the table catalogue, RowBinary rows, the client, migrations,
//!   retention and erasure; [`transform`] normalizes events and applies the content policy;
//!   [`telemetry`] names every metric, holds every label vocabulary, and emits each
//!   observable event as one log line plus its counters; [`keys`] manages and checks API
//!   keys; [`net`] is the accept loop and TLS; [`config`] is the one configuration.
//! - **Leaves**: [`otlp`] is what OTLP is (signals, encodings, the borrowed wire reader,
//!   validation, bounded decompression, the fast decoders); [`envelope`] is the Kafka message
//!   contract between edge and consumer (header names, writer and reader); [`budget`] is the
//!   byte budget; [`util`] is the clock, backoff and serde helpers.
//!
//! The services and shared parts need the `service` feature (on by default). Without it the
//! crate is its leaves alone, with few dependencies: the fuzz targets (`fuzz/`) build that.
#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]
#![deny(unused_must_use)]

pub mod budget;
#[cfg(feature = "service")]
pub mod clickhouse;
#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod consumer;
#[cfg(feature = "service")]
pub mod edge;
pub mod envelope;
#[cfg(test)]
mod fixtures;
#[cfg(feature = "service")]
pub mod kafka;
#[cfg(feature = "service")]
pub mod keys;
#[cfg(feature = "service")]
pub mod net;
#[cfg(feature = "service")]
pub mod ops;
pub mod otlp;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(feature = "service")]
pub mod transform;
pub mod util;
