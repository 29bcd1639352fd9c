//! Operator commands: what a person runs against a pipeline, as opposed to the services that
//! are the pipeline. `main.rs` calls them; no service does.
//!
//! - [`status`]: the on-call view from both services' metrics;
//! - [`topics`]: `topics check [--create]`;
//! - [`loadgen`]: synthetic Claude Code and Cowork traffic;
//! - [`redrive`]: dead letters back to their topic;
//! - [`keys`]: create, list and revoke API keys;
//! - [`database`]: `migrate` and `forget`;
//! - [`readers`]: per-tenant read-only ClickHouse users (`readers create | list | revoke | sync`).

pub mod database;
pub mod keys;
pub mod loadgen;
pub mod readers;
pub mod redrive;
pub mod status;
pub mod topics;
