//! What travels on Kafka between the edge and the consumer: one message per accepted request,
//! its body exactly as the client sent it, and headers that say everything the consumer must
//! know to decode it. The consumer never has to guess.

use crate::config::KafkaConfig;

/// Kafka header names. Values are UTF-8 text.
pub mod header {
    /// Tenant that owns the payload, taken from the API key (never from the payload).
    pub const TENANT: &str = "cowork-tenant";
    /// Id of the API key that sent it (the public half, never the secret).
    pub const KEY_ID: &str = "cowork-key-id";
    /// `application/x-protobuf` or `application/json`.
    pub const CONTENT_TYPE: &str = "cowork-content-type";
    /// `identity`, `gzip`, `deflate` or `zstd`: how the body is compressed as stored.
    pub const CONTENT_ENCODING: &str = "cowork-content-encoding";
    /// Receive time at the edge, Unix milliseconds.
    pub const RECEIVED_AT_MS: &str = "cowork-received-at-ms";
    /// Request id, also returned to the client as `x-request-id`.
    pub const REQUEST_ID: &str = "cowork-request-id";
    /// `logs`, `metrics` or `traces`.
    pub const SIGNAL: &str = "cowork-signal";
    /// `http` or `grpc`.
    pub const TRANSPORT: &str = "cowork-transport";
    /// Number of log records (for metrics: metrics; for traces: spans) the edge counted.
    pub const RECORDS: &str = "cowork-records";
}

/// The three OTLP signals the edge accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Metrics, Signal::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    /// The topic this signal's raw payloads go to.
    pub fn topic(self, kafka: &KafkaConfig) -> &str {
        match self {
            Signal::Logs => &kafka.logs_topic,
            Signal::Metrics => &kafka.metrics_topic,
            Signal::Traces => &kafka.traces_topic,
        }
    }

    /// The HTTP paths this signal answers on: the OTLP one, and the hooks path admins may
    /// already use elsewhere.
    pub fn http_paths(self) -> [&'static str; 2] {
        match self {
            Signal::Logs => ["/v1/logs", "/api/v1/hooks/cowork/otlp/v1/logs"],
            Signal::Metrics => ["/v1/metrics", "/api/v1/hooks/cowork/otlp/v1/metrics"],
            Signal::Traces => ["/v1/traces", "/api/v1/hooks/cowork/otlp/v1/traces"],
        }
    }

    /// The `route` label of this signal's gRPC method.
    pub fn grpc_route(self) -> &'static str {
        match self {
            Signal::Logs => "grpc:logs",
            Signal::Metrics => "grpc:metrics",
            Signal::Traces => "grpc:traces",
        }
    }

    /// The gRPC method path of this signal's `Export`.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        }
    }
}

/// Content type of a payload, as the edge records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Protobuf,
    Json,
}

impl ContentType {
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Protobuf => "application/x-protobuf",
            ContentType::Json => "application/json",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ContentType::Protobuf => "protobuf",
            ContentType::Json => "json",
        }
    }
}

/// Compression of a payload, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Identity => "identity",
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a `Content-Encoding` value; `None` for anything unsupported.
    pub fn parse(value: &str) -> Option<Compression> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Compression::Identity),
            "gzip" | "x-gzip" => Some(Compression::Gzip),
            "deflate" => Some(Compression::Deflate),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}
