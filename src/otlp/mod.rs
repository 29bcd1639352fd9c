//! What OTLP is, shared by the edge, the consumer and the load generator: the signals and
//! their routes, content types and compressions, the borrowed protobuf [`wire`] reader, request
//! [`validate`]ion, bounded [`compression`], and the fast [`decode`]rs with the owned reference
//! decode they are held to. Nothing here knows about Kafka, ClickHouse or HTTP answers.

pub mod compression;
pub mod decode;
pub mod validate;
pub mod wire;

/// Deepest nesting of `AnyValue`s accepted, by the protobuf and the JSON readers alike (prost's
/// own recursion limit is 100).
pub const MAX_DEPTH: u32 = 64;

/// The three OTLP signals the edge accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Signal {
    #[default]
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

    /// Parses [`Signal::as_str`]'s names.
    pub fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContentType {
    #[default]
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
    /// Parses a MIME type as the edge records it in the envelope; `None` for anything else.
    pub fn from_mime(mime: &str) -> Option<ContentType> {
        match mime {
            "application/x-protobuf" => Some(ContentType::Protobuf),
            "application/json" => Some(ContentType::Json),
            _ => None,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
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
