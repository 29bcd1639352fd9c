//! The edge: an OTLP endpoint (HTTP on 4318, gRPC on 4317) that authenticates organizations,
//! bounds what it accepts and publishes raw payloads to Kafka.
//!
//! ```text
//!  HTTP /v1/{logs,metrics,traces} ─┐
//!  gRPC {Logs,Metrics,Trace}Service ┴─► auth ─► read within limits ─► decompress + validate
//!                                        │401/403       │413/503            │400/413
//!                                        ▼              ▼                   ▼
//!                                             rate limit ─► publish ─► delivery report ─► 200
//!                                               │429          │503 (queue full, broker down)
//! ```
//!
//! Both transports share [`Edge::ingest`], so limits, auth and publishing cannot drift apart.

mod failure;
mod grpc;
mod http;
mod publish;
mod rate_limit;

pub use http::RpcStatus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::budget::{Budget, Permit};
use crate::config::{Config, EdgeConfig};
use crate::envelope::Envelope;
use crate::keys::{KeyFileError, KeyStore, Principal};
use crate::net::{server, tls};
use crate::otlp::compression::{self, CompressionError};
use crate::otlp::{validate, Compression, ContentType, Signal};
use crate::telemetry::{self, admin};
use failure::{Backoff, Failure, Reject};
use publish::Publisher;
use rate_limit::RateLimiter;

/// How long startup waits for a broker to accept or refuse SASL credentials.
const CREDENTIALS_CHECK: Duration = Duration::from_secs(10);

/// How long shutdown waits for in-flight requests, then for the producer to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The listening sockets, bound by the caller (port 0 in tests).
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &EdgeConfig) -> std::io::Result<Listeners> {
        Ok(Listeners {
            http: TcpListener::bind(config.http_listen).await?,
            grpc: TcpListener::bind(config.grpc_listen).await?,
            admin: TcpListener::bind(config.admin_listen).await?,
        })
    }
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Credentials(#[from] crate::kafka::CredentialsError),
}

/// One request on its way in, transport already handled.
struct Incoming {
    pub signal: Signal,
    pub transport: &'static str,
    pub content_type: ContentType,
    pub compression: Compression,
    pub principal: Principal,
    pub request_id: String,
    pub received_at_ns: u64,
    pub raw: Bytes,
    /// Held, not read: the request's bytes stay charged to the budget until it is answered.
    #[allow(dead_code)]
    pub permit: Permit,
}

/// State shared by both transports.
struct Edge {
    config: Config,
    keys: Arc<KeyStore>,
    publisher: Arc<Publisher>,
    budget: Budget,
    limiter: RateLimiter,
    draining: AtomicBool,
}

impl Edge {
    pub fn new(config: Config) -> Result<Edge, StartError> {
        let keys = Arc::new(KeyStore::open(&config.edge.keys_path)?);
        let publisher = Arc::new(Publisher::new(&config)?);
        Ok(Edge {
            budget: Budget::new(config.edge.max_inflight_bytes, Some(telemetry::EDGE_INFLIGHT_BYTES)),
            limiter: RateLimiter::new(config.edge.rate_limit_events_per_s, config.edge.rate_limit_bytes_per_s),
            keys,
            publisher,
            config,
            draining: AtomicBool::new(false),
        })
    }

    /// The answer when the in-flight byte budget is spent: 503, try again shortly.
    fn overloaded(&self) -> Failure {
        Backoff::Overloaded {
            retry_after_s: self.config.edge.retry_after_s,
        }
        .into()
    }

    /// Ready for traffic: Kafka reachable and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.publisher.is_ready() && !self.draining.load(Ordering::Relaxed)
    }

    /// Authenticates an `Authorization` value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Failure> {
        let now = time::OffsetDateTime::now_utc();
        Ok(self.keys.current().authenticate(authorization, now)?)
    }

    /// Decompresses and validates, applies the rate limit, and publishes. Returns the number of
    /// records published (0 for an empty request, which publishes nothing).
    pub async fn ingest(&self, req: Incoming) -> Result<u64, Failure> {
        let limit = self.config.edge.max_decompressed_bytes;
        let (signal, content_type, compression) = (req.signal, req.content_type, req.compression);
        let budget = self.budget.clone();
        let retry_after_s = self.config.edge.retry_after_s;
        // The decompressed copy is charged to its own permit and freed right after the check, so
        // requests waiting for Kafka hold only their raw bytes.
        let check = move |raw: &[u8]| -> Result<u64, Failure> {
            let mut scratch = budget.permit();
            let body = compression::decompress(compression, raw, limit, &mut scratch).map_err(|e| match e {
                CompressionError::TooLarge { limit } => Failure::from(Reject::DecompressedTooLarge { limit }),
                CompressionError::Corrupt { encoding, detail } => Reject::BadCompression { encoding, detail }.into(),
                CompressionError::Budget => Backoff::Overloaded { retry_after_s }.into(),
            })?;
            telemetry::edge::BytesReceived {
                stage: telemetry::labels::BytesStage::Decompressed,
                bytes: body.len(),
            }
            .emit();
            validate::count_records(signal, content_type, &body).map_err(|e| Failure::from(Reject::InvalidPayload(e.0)))
        };
        // Inflating can take milliseconds even for a small body: keep it off the async workers.
        let records = if compression != Compression::Identity || req.raw.len() > 256 * 1024 {
            let raw = req.raw.clone();
            match tokio::task::spawn_blocking(move || check(&raw)).await {
                Ok(records) => records?,
                Err(_) => return Err(self.overloaded()),
            }
        } else {
            check(&req.raw)?
        };
        if records == 0 {
            return Ok(0);
        }
        self.limiter
            .charge(&req.principal.key_id, records, req.raw.len() as u64)?;
        let env = Envelope {
            signal,
            tenant: &req.principal.tenant,
            key_id: &req.principal.key_id,
            content_type,
            compression,
            received_at_ns: req.received_at_ns,
            request_id: &req.request_id,
            transport: req.transport,
            records,
            key_attributes: &req.principal.key_attributes,
        };
        self.publisher.publish(&env, &req.raw).await?;
        Ok(records)
    }
}

/// One request answered, on either transport: its metrics, and its log line if it was refused.
#[allow(clippy::too_many_arguments)]
fn answered(
    request_id: &str,
    route: &'static str,
    transport: telemetry::labels::Transport,
    tenant: Option<&str>,
    encoding: Option<ContentType>,
    status: ::http::StatusCode,
    failure: Option<&Failure>,
    started: std::time::Instant,
) {
    telemetry::edge::RequestAnswered {
        request_id,
        route,
        transport,
        tenant,
        encoding,
        status: status.as_u16(),
        rejection: failure.map(Failure::rejection),
        started,
    }
    .emit();
}

/// Runs the edge until `shutdown` fires, then drains: `/readyz` turns false, the OTLP ports stop
/// accepting, in-flight requests finish, and the producer flushes.
pub async fn run(listeners: Listeners, config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let prometheus = telemetry::install();
    telemetry::describe_edge();
    let tls = match (&config.edge.tls_cert_path, &config.edge.tls_key_path) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    telemetry::set_tenant_label(config.metrics.tenant_label);
    let check = config.clone();
    tokio::task::spawn_blocking(move || {
        crate::kafka::check_credentials(&check, &check.kafka.producer, CREDENTIALS_CHECK)
    })
    .await
    .expect("the credentials check does not panic")?;
    let edge = Arc::new(Edge::new(config)?);
    telemetry::edge::KeysLoaded::from(&*edge.keys.current()).emit();
    if edge.keys.current().is_empty() {
        tracing::warn!(path = %edge.config.edge.keys_path.display(), "the key file has no keys: every request will get 401 until `cowork-ingest keys create` adds one");
    }
    edge.publisher.probe().await;

    let background = CancellationToken::new();
    tokio::spawn(edge.keys.clone().watch(
        Duration::from_millis(edge.config.edge.keys_reload_ms),
        background.clone(),
        |keys| telemetry::edge::KeysLoaded::from(keys).emit(),
    ));
    tokio::spawn(edge.publisher.clone().watch(background.clone()));

    let admin_stop = CancellationToken::new();
    let ready_edge = edge.clone();
    let admin = tokio::spawn(server::serve(
        listeners.admin,
        None,
        admin::router(prometheus, Arc::new(move || ready_edge.is_ready()), None),
        admin_stop.clone(),
        DRAIN_TIMEOUT,
        crate::config::ADMIN_MAX_CONNECTIONS,
    ));
    tracing::info!(
        http = %listeners.http.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        grpc = %listeners.grpc.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = tls.is_some(),
        "edge listening"
    );
    let otlp_stop = CancellationToken::new();
    let http = tokio::spawn(server::serve(
        listeners.http,
        tls.clone(),
        http::router(edge.clone()),
        otlp_stop.clone(),
        DRAIN_TIMEOUT,
        edge.config.edge.max_connections,
    ));
    let grpc = tokio::spawn(server::serve(
        listeners.grpc,
        tls,
        grpc::GrpcService::new(edge.clone()),
        otlp_stop.clone(),
        DRAIN_TIMEOUT,
        edge.config.edge.max_connections,
    ));

    shutdown.cancelled().await;
    tracing::info!("shutting down: draining in-flight requests");
    edge.draining.store(true, Ordering::Relaxed);
    otlp_stop.cancel();
    let _ = http.await;
    let _ = grpc.await;
    edge.publisher.flush(DRAIN_TIMEOUT).await;
    background.cancel();
    admin_stop.cancel();
    let _ = admin.await;
    tracing::info!("edge stopped");
    Ok(())
}
