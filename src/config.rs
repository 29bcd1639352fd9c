//! One configuration for every entry point.
//!
//! Sources, later ones winning:
//! 1. the built-in defaults below (each a named constant that says where its number comes from);
//! 2. a TOML file given with `--config`;
//! 3. environment variables `COWORK__<SECTION>__<FIELD>` (for example
//!    `COWORK__EDGE__MAX_BODY_BYTES=8388608`), plus the conventional `KAFKA_BROKERS`;
//! 4. `--set section.field=value` flags.
//!
//! Every section denies unknown keys: a misspelt key is a startup error that names the key.
//! Cross-field checks run in [`Config::validate`] and fail with a sentence a person can act on.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::clickhouse::{
    ClickHouseConfig, DEFAULT_CLICKHOUSE_DATABASE, DEFAULT_CLICKHOUSE_URL, DEFAULT_INSERT_TIMEOUT_MS,
    DEFAULT_RETENTION_CHECK_MS,
};
pub use crate::transform::attribution::Attribution;
pub use crate::transform::content::{ContentAction, ContentPolicy};
use crate::util::text;

/// OTLP/HTTP's registered port.
pub const DEFAULT_HTTP_LISTEN: &str = "0.0.0.0:4318";
/// OTLP/gRPC's registered port.
pub const DEFAULT_GRPC_LISTEN: &str = "0.0.0.0:4317";
/// Admin port of the edge: `/healthz`, `/readyz`, `/metrics` (9464 is the OTel Prometheus port).
pub const DEFAULT_EDGE_ADMIN_LISTEN: &str = "0.0.0.0:9464";
/// Largest body accepted as sent (compressed). The JS exporter sends at most 512 records per
/// batch; with prompt content captured a batch stays well under 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Largest body after decompression. A full exporter batch (512 records) with content capture at
/// its 60 KB-per-attribute limit approaches 30 MB, so 32 MiB holds it; a bomb stops here. (The
/// corpus's gzip bodies inflate 11x as protobuf and 21x as JSON, so a body near the 4 MiB wire
/// limit can only be protobuf.)
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;
/// Bytes all requests together may hold at once (raw and decompressed). Bounds the edge's memory:
/// past it, requests get 503 with Retry-After instead of being buffered.
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 256 * 1024 * 1024;
/// How long a request waits for Kafka's delivery report before answering 503. Under the JS
/// exporter's default 10 s timeout, so the client sees our answer, not its own timeout.
pub const DEFAULT_PUBLISH_TIMEOUT_MS: u64 = 8_000;
/// Open connections per OTLP port. Thousands of clients share keep-alive connections through
/// their exporters; past this, new connections wait in the kernel's accept queue.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Open connections on the admin port (Prometheus and probes).
pub const ADMIN_MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a whole body once its headers arrived (408 after).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Retry-After on 429/503. The JS exporter drops a batch whose Retry-After exceeds its timeout,
/// so this stays short.
pub const DEFAULT_RETRY_AFTER_S: u64 = 1;
/// Hard ceiling for any Retry-After the edge sends (see above).
pub const MAX_RETRY_AFTER_S: u64 = 2;
/// Key file written by `cowork-ingest keys` and watched by the edge.
pub const DEFAULT_KEYS_PATH: &str = "keys.toml";
/// How often the edge checks the key file for changes.
pub const DEFAULT_KEYS_RELOAD_MS: u64 = 2_000;
/// How often the edge asks Kafka for metadata to decide `/readyz`.
pub const DEFAULT_KAFKA_PROBE_MS: u64 = 2_000;
/// Room reserved in a Kafka message for headers and record-batch framing.
pub const KAFKA_MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;
/// Local Kafka, as `scripts/up` and most docs assume.
pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_LOGS_TOPIC: &str = "cowork-otlp-logs";
pub const DEFAULT_METRICS_TOPIC: &str = "cowork-otlp-metrics";
pub const DEFAULT_TRACES_TOPIC: &str = "cowork-otlp-traces";
/// Partitions the dev broker gives each topic: enough to show spreading and consumer scaling.
pub const DEFAULT_DEV_PARTITIONS: i32 = 6;
/// Consumer group of `cowork-ingest consume`; more processes in the group share partitions.
pub const DEFAULT_CONSUMER_GROUP: &str = "cowork-ingest";
/// Where undecodable payloads go, with their reason.
pub const DEFAULT_DLQ_TOPIC: &str = "cowork-otlp-logs-dlq";
/// Admin port of the consumer (`/healthz`, `/readyz`, `/metrics`).
pub const DEFAULT_CONSUMER_ADMIN_LISTEN: &str = "0.0.0.0:9465";
/// A batch closes at this many events. ClickHouse wants few, large inserts: tens of thousands
/// of rows per insert keeps parts few ("too many parts" is the classic failure).
pub const DEFAULT_BATCH_MAX_ROWS: usize = 50_000;
/// A batch closes when its encoded rows reach this size; bounds the consumer's memory.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 64 * 1024 * 1024;
/// A batch closes this long after its first message: about one insert per second per consumer.
pub const DEFAULT_BATCH_MAX_AGE_MS: u64 = 1_000;
/// Default `consumer.insert_concurrency`.
pub const DEFAULT_INSERT_CONCURRENCY: usize = 8;
/// First and longest wait between retries of a failed insert.
pub const DEFAULT_RETRY_MIN_MS: u64 = 200;
pub const DEFAULT_RETRY_MAX_MS: u64 = 30_000;
/// librdkafka's prefetch queue per consumer (`queued.max.messages.kbytes`): with the batch
/// limits, it bounds the consumer's memory however large the lag.
pub const DEFAULT_CONSUMER_QUEUE_KBYTES: &str = "65536";
/// How often the consumer reads its lag from Kafka (on its own schedule, so a stalled consumer
/// still shows growing lag).
pub const DEFAULT_LAG_REFRESH_MS: u64 = 5_000;
/// How long a stopping consumer keeps trying to store its last batch (ClickHouse down): the
/// rest is read again by whoever owns the partitions next.
pub const DEFAULT_SHUTDOWN_FLUSH_MS: u64 = 30_000;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub edge: EdgeConfig,
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub consumer: ConsumerConfig,
    pub content: ContentConfig,
    /// `[attribution]`: the attribute keys the team, department and cost center are read from.
    pub attribution: Attribution,
    pub metrics: MetricsConfig,
}

/// `[metrics]`: what the Prometheus endpoints expose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Label ingest counters with the tenant (bounded by the key file). Default true.
    pub tenant_label: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { tenant_label: true }
    }
}

/// `[consumer]`: the Kafka consumer group that writes to ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// Consumer group. Default `cowork-ingest`.
    #[serde(deserialize_with = "text::string")]
    pub group_id: String,
    /// Dead-letter topic. Default `cowork-otlp-logs-dlq`.
    #[serde(deserialize_with = "text::string")]
    pub dlq_topic: String,
    /// Admin listen address (`/healthz`, `/readyz`, `/metrics`). Default `0.0.0.0:9465`.
    pub admin_listen: SocketAddr,
    /// A batch closes at this many records (events, metric points, spans). Default 50000.
    pub batch_max_rows: usize,
    /// A batch closes at this many encoded bytes. Default 64 MiB.
    pub batch_max_bytes: usize,
    /// A batch closes this long after its first message. Default 1000 ms.
    pub batch_max_age_ms: u64,
    /// First wait before retrying a failed insert; doubles up to `retry_max_ms`. Default 200 ms.
    pub retry_min_ms: u64,
    /// Longest wait between insert retries. Default 30000 ms.
    pub retry_max_ms: u64,
    /// How often consumer lag is read from Kafka, whatever the consumer is doing. Default 5000 ms.
    pub lag_refresh_ms: u64,
    /// On shutdown, how long to keep trying to store the last batch before leaving it to be read
    /// again. Default 30000 ms.
    pub shutdown_flush_ms: u64,
    /// Decode the next batch while the current one is being stored (at most one in flight and one
    /// filling: memory up to about 2 x `batch_max_bytes`, plus librdkafka's prefetch). False:
    /// decoding and inserting take turns (about 1 x). Default true.
    pub pipelined: bool,
    /// Of a batch's tables, how many are inserted at once (one INSERT each); 1: one after
    /// another. Default 8.
    pub insert_concurrency: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: DEFAULT_CONSUMER_GROUP.into(),
            dlq_topic: DEFAULT_DLQ_TOPIC.into(),
            admin_listen: DEFAULT_CONSUMER_ADMIN_LISTEN.parse().expect("valid default"),
            batch_max_rows: DEFAULT_BATCH_MAX_ROWS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_max_age_ms: DEFAULT_BATCH_MAX_AGE_MS,
            retry_min_ms: DEFAULT_RETRY_MIN_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            lag_refresh_ms: DEFAULT_LAG_REFRESH_MS,
            shutdown_flush_ms: DEFAULT_SHUTDOWN_FLUSH_MS,
            pipelined: true,
            insert_concurrency: DEFAULT_INSERT_CONCURRENCY,
        }
    }
}

/// `[content]`: content policy, by default and per tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentConfig {
    /// Applies to tenants not listed below. Default: keep everything.
    pub default: ContentPolicy,
    /// `[content.tenants.<tenant>]`: a whole policy per tenant (unset kinds keep).
    pub tenants: BTreeMap<String, ContentPolicy>,
}

impl ContentConfig {
    pub fn policy(&self, tenant: &str) -> &ContentPolicy {
        self.tenants.get(tenant).unwrap_or(&self.default)
    }
}

/// `[edge]`: the OTLP endpoint.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// OTLP/HTTP listen address. Default `0.0.0.0:4318`.
    pub http_listen: SocketAddr,
    /// OTLP/gRPC listen address. Default `0.0.0.0:4317`.
    pub grpc_listen: SocketAddr,
    /// Admin listen address (`/healthz`, `/readyz`, `/metrics`). Default `0.0.0.0:9464`.
    pub admin_listen: SocketAddr,
    /// PEM certificate chain. With `tls_key_path`, both OTLP ports serve TLS. Default none.
    pub tls_cert_path: Option<PathBuf>,
    /// PEM private key for `tls_cert_path`. Default none.
    pub tls_key_path: Option<PathBuf>,
    /// Largest request body as sent. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Largest request body after decompression. Default 32 MiB.
    pub max_decompressed_bytes: usize,
    /// Bytes all in-flight requests may hold together. Default 256 MiB.
    pub max_inflight_bytes: usize,
    /// Wait for Kafka's delivery report before answering 503. Default 8000 ms.
    pub publish_timeout_ms: u64,
    /// Open connections per OTLP port; more wait in the accept queue. Default 10000.
    pub max_connections: usize,
    /// Time allowed to receive a whole body; slower uploads get 408. Default 30000 ms.
    pub body_timeout_ms: u64,
    /// Retry-After seconds sent with 503 (capped at 2). Default 1.
    pub retry_after_s: u64,
    /// Per-key limit in log records (for metrics: metrics; for traces: spans) per second; 0 = off. Default 0.
    pub rate_limit_events_per_s: u64,
    /// Per-key limit in body bytes (as sent) per second; 0 = off. Default 0.
    pub rate_limit_bytes_per_s: u64,
    /// Key file (see `cowork-ingest keys`). Default `keys.toml`.
    pub keys_path: PathBuf,
    /// How often to check the key file for changes. Default 2000 ms.
    pub keys_reload_ms: u64,
    /// How often to probe Kafka for `/readyz`. Default 2000 ms.
    pub kafka_probe_ms: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            http_listen: DEFAULT_HTTP_LISTEN.parse().expect("valid default"),
            grpc_listen: DEFAULT_GRPC_LISTEN.parse().expect("valid default"),
            admin_listen: DEFAULT_EDGE_ADMIN_LISTEN.parse().expect("valid default"),
            tls_cert_path: None,
            tls_key_path: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            publish_timeout_ms: DEFAULT_PUBLISH_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            retry_after_s: DEFAULT_RETRY_AFTER_S,
            rate_limit_events_per_s: 0,
            rate_limit_bytes_per_s: 0,
            keys_path: DEFAULT_KEYS_PATH.into(),
            keys_reload_ms: DEFAULT_KEYS_RELOAD_MS,
            kafka_probe_ms: DEFAULT_KAFKA_PROBE_MS,
        }
    }
}

// Written by hand so that nothing secret-looking can reach a log line through `{:?}`.
impl fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("http_listen", &self.http_listen)
            .field("grpc_listen", &self.grpc_listen)
            .field("admin_listen", &self.admin_listen)
            .field("tls", &self.tls_cert_path.is_some())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_decompressed_bytes", &self.max_decompressed_bytes)
            .field("max_inflight_bytes", &self.max_inflight_bytes)
            .field("publish_timeout_ms", &self.publish_timeout_ms)
            .field("rate_limit_events_per_s", &self.rate_limit_events_per_s)
            .field("rate_limit_bytes_per_s", &self.rate_limit_bytes_per_s)
            .field("keys_path", &self.keys_path)
            .finish_non_exhaustive()
    }
}

/// `[kafka]`: brokers, topics and librdkafka pass-through settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`. Default `127.0.0.1:9092`; `KAFKA_BROKERS` overrides it.
    #[serde(deserialize_with = "text::string")]
    pub brokers: String,
    /// Topic for raw OTLP logs payloads. Default `cowork-otlp-logs`.
    #[serde(deserialize_with = "text::string")]
    pub logs_topic: String,
    /// Topic for raw OTLP metrics payloads. Default `cowork-otlp-metrics`.
    #[serde(deserialize_with = "text::string")]
    pub metrics_topic: String,
    /// Topic for raw OTLP traces payloads. Default `cowork-otlp-traces`.
    #[serde(deserialize_with = "text::string")]
    pub traces_topic: String,
    /// Extra librdkafka settings for every client, e.g. `"security.protocol" = "SASL_SSL"`,
    /// `"sasl.mechanism"`, `"sasl.username"`, `"sasl.password"`, `"ssl.ca.location"`.
    /// Their values are never logged.
    #[serde(deserialize_with = "text::map")]
    pub client: BTreeMap<String, String>,
    /// Extra librdkafka settings for every producer: the edge's, the consumer's dead-letter
    /// producer and `redrive`'s. They win over the pipeline's own, except `acks=all` and
    /// `enable.idempotence=true`, which cannot be changed. `message.max.bytes` defaults to the
    /// edge's body limit plus 64 KiB of headroom.
    #[serde(deserialize_with = "text::map")]
    pub producer: BTreeMap<String, String>,
    /// Extra librdkafka settings for the consumer group member only (not the lag watcher or
    /// `redrive`). `queued.max.messages.kbytes` defaults to
    /// 65536 (64 MiB of prefetch).
    #[serde(deserialize_with = "text::map")]
    pub consumer: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: DEFAULT_KAFKA_BROKERS.into(),
            logs_topic: DEFAULT_LOGS_TOPIC.into(),
            metrics_topic: DEFAULT_METRICS_TOPIC.into(),
            traces_topic: DEFAULT_TRACES_TOPIC.into(),
            client: BTreeMap::new(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("logs_topic", &self.logs_topic)
            .field("metrics_topic", &self.metrics_topic)
            .field("traces_topic", &self.traces_topic)
            .field("client_keys", &self.client.keys().collect::<Vec<_>>())
            .field("producer_keys", &self.producer.keys().collect::<Vec<_>>())
            .field("consumer_keys", &self.consumer.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A configuration that cannot be used, with a sentence saying why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid override `{0}`: expected section.field=value")]
    Override(String),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `path`, then the process environment, then `overrides`
    /// (`section.field=value`), and validates the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(path, &env, overrides)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_from(
        path: Option<&Path>,
        env: &[(String, String)],
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let (mut doc, origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let doc: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_path_buf(),
                    message: e.message().to_string(),
                })?;
                (doc, p.to_path_buf())
            }
            None => (toml::Table::new(), PathBuf::from("<defaults>")),
        };
        for (name, value) in env {
            if name == "KAFKA_BROKERS" && !value.is_empty() {
                set_path(&mut doc, &["kafka", "brokers"], toml::Value::String(value.clone()));
            } else if let Some(rest) = name.strip_prefix("COWORK__") {
                let parts: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                set_path(&mut doc, &parts, parse_scalar(value));
            }
        }
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| ConfigError::Override(o.clone()))?;
            let parts: Vec<&str> = key.trim().split('.').collect();
            if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::Override(o.clone()));
            }
            set_path(&mut doc, &parts, parse_scalar(value.trim()));
        }
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: origin,
                message: e.message().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, each failing with a sentence a person can act on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.edge;
        if e.max_body_bytes == 0 || e.max_decompressed_bytes < e.max_body_bytes {
            return Err(ConfigError::Invalid(format!(
                "edge.max_decompressed_bytes ({}) must be at least edge.max_body_bytes ({}), which must be > 0",
                e.max_decompressed_bytes, e.max_body_bytes
            )));
        }
        if e.max_inflight_bytes < e.max_body_bytes + e.max_decompressed_bytes {
            return Err(ConfigError::Invalid(format!(
                "edge.max_inflight_bytes ({}) must hold at least one whole request: edge.max_body_bytes + edge.max_decompressed_bytes = {}",
                e.max_inflight_bytes,
                e.max_body_bytes + e.max_decompressed_bytes
            )));
        }
        if e.tls_cert_path.is_some() != e.tls_key_path.is_some() {
            return Err(ConfigError::Invalid(
                "edge.tls_cert_path and edge.tls_key_path must be set together".into(),
            ));
        }
        if e.retry_after_s == 0 || e.retry_after_s > MAX_RETRY_AFTER_S {
            return Err(ConfigError::Invalid(format!(
                "edge.retry_after_s must be between 1 and {MAX_RETRY_AFTER_S}: the JS exporter drops a batch whose Retry-After exceeds its timeout"
            )));
        }
        let max_message = self.producer_message_max_bytes()?;
        if e.max_body_bytes + KAFKA_MESSAGE_OVERHEAD_BYTES > max_message {
            return Err(ConfigError::Invalid(format!(
                "edge.max_body_bytes ({}) plus {} bytes of headers does not fit in the producer's message.max.bytes ({}): raise kafka.producer.\"message.max.bytes\" (and the topic's max.message.bytes) or lower edge.max_body_bytes",
                e.max_body_bytes, KAFKA_MESSAGE_OVERHEAD_BYTES, max_message
            )));
        }
        for (key, required) in [("acks", "all"), ("enable.idempotence", "true")] {
            let set = self.kafka.producer.get(key).or(self.kafka.client.get(key));
            if set.is_some_and(|v| v != required && !(key == "acks" && v == "-1")) {
                return Err(ConfigError::Invalid(format!(
                    "kafka \"{key}\" must stay {required}: the edge answers 200 only for payloads every in-sync replica has"
                )));
            }
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(ConfigError::Invalid("kafka.brokers is empty".into()));
        }
        for key in ["enable.auto.offset.store", "isolation.level"] {
            if self.kafka.consumer.contains_key(key) || self.kafka.client.contains_key(key) {
                return Err(ConfigError::Invalid(format!(
                    "kafka \"{key}\" cannot be set: the consumer stores offsets only after ClickHouse has the rows"
                )));
            }
        }
        let c = &self.consumer;
        if c.insert_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "consumer.insert_concurrency must be > 0 (1 inserts a batch's tables one after another)".into(),
            ));
        }
        if c.batch_max_rows == 0 || c.batch_max_bytes == 0 || c.batch_max_age_ms == 0 {
            return Err(ConfigError::Invalid(
                "consumer.batch_max_rows, batch_max_bytes and batch_max_age_ms must all be > 0".into(),
            ));
        }
        if c.retry_min_ms == 0 || c.retry_max_ms < c.retry_min_ms {
            return Err(ConfigError::Invalid(
                "consumer.retry_min_ms must be > 0 and at most consumer.retry_max_ms".into(),
            ));
        }
        let db = &self.clickhouse.database;
        if db.is_empty() || !db.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            return Err(ConfigError::Invalid(format!(
                "clickhouse.database `{db}` must be letters, digits and underscores"
            )));
        }
        Ok(())
    }

    /// The producer's `message.max.bytes`: as configured, else body limit plus headroom.
    pub fn producer_message_max_bytes(&self) -> Result<usize, ConfigError> {
        let set = self
            .kafka
            .producer
            .get("message.max.bytes")
            .or(self.kafka.client.get("message.max.bytes"));
        match set {
            Some(v) => v.parse().map_err(|_| {
                ConfigError::Invalid(format!("kafka.producer.\"message.max.bytes\" is not a number: {v}"))
            }),
            None => Ok(self.edge.max_body_bytes + KAFKA_MESSAGE_OVERHEAD_BYTES),
        }
    }
}

fn set_path(doc: &mut toml::Table, path: &[&str], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.to_string(), value);
}

/// An override's value: a TOML scalar (number, bool) when it parses as one, else a string.
fn parse_scalar(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
            Some(toml::Value::String(s)) => toml::Value::String(s),
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)], sets: &[&str]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).unwrap();
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::load_from(Some(&path), &env, &sets)
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load_from(None, &[], &[]).unwrap();
        assert_eq!(c.edge.http_listen.port(), 4318);
        assert_eq!(c.edge.grpc_listen.port(), 4317);
        assert_eq!(c.kafka.logs_topic, "cowork-otlp-logs");
        assert_eq!(c.edge.rate_limit_events_per_s, 0, "rate limit is off by default");
    }

    #[test]
    fn numbers_and_booleans_in_text_fields_stay_text() {
        let c = load(
            "",
            &[
                ("COWORK__CLICKHOUSE__PASSWORD", "1234"),
                ("COWORK__CONSUMER__GROUP_ID", "true"),
            ],
            &["kafka.consumer.fetch=1048576"],
        )
        .unwrap();
        assert_eq!(c.clickhouse.password, "1234");
        assert_eq!(c.consumer.group_id, "true");
        assert_eq!(c.kafka.consumer["fetch"], "1048576");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("[edge]\nmax_body_byte = 5\n", &[], &[]).unwrap_err().to_string();
        assert!(err.contains("max_body_byte"), "{err}");
        let err = load("[edgy]\n", &[], &[]).unwrap_err().to_string();
        assert!(err.contains("edgy"), "{err}");
        let err = load("", &[("COWORK__EDGE__NOPE", "1")], &[]).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn env_and_flags_override_file() {
        let c = load(
            "[edge]\nmax_body_bytes = 1000000\n[kafka]\nbrokers = \"file:1\"\n",
            &[
                ("COWORK__EDGE__MAX_BODY_BYTES", "2000000"),
                ("KAFKA_BROKERS", "env:9092"),
            ],
            &["edge.publish_timeout_ms=1234"],
        )
        .unwrap();
        assert_eq!(c.edge.max_body_bytes, 2_000_000);
        assert_eq!(c.kafka.brokers, "env:9092");
        assert_eq!(c.edge.publish_timeout_ms, 1234);
        let c = load(
            "",
            &[("COWORK__EDGE__MAX_BODY_BYTES", "2000000")],
            &["edge.max_body_bytes=3000000"],
        )
        .unwrap();
        assert_eq!(c.edge.max_body_bytes, 3_000_000);
    }

    #[test]
    fn body_limit_must_fit_the_producer_message_size() {
        let err = load("[kafka.producer]\n\"message.max.bytes\" = \"1000000\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("message.max.bytes"), "{err}");
    }

    #[test]
    fn delivery_guarantees_cannot_be_overridden() {
        let err = load("[kafka.producer]\nacks = \"1\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("acks"), "{err}");
        let err = load("[kafka.client]\n\"enable.idempotence\" = \"false\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("enable.idempotence"), "{err}");
        assert!(load("[kafka.producer]\nacks = \"-1\"\n", &[], &[]).is_ok());
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let c = load("[kafka.client]\n\"sasl.password\" = \"hunter2\"\n", &[], &[]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.password"));
    }
}
