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

pub mod failure;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod payload;
pub mod publish;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EdgeConfig};
use crate::envelope::{Compression, ContentType, Signal};
use crate::keys::{KeyFileError, KeyStore, Principal};
use crate::{admin, metrics, server, tls};
use failure::Failure;
use limits::{Budget, Permit, RateLimiter};
use publish::{Envelope, Publisher};

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
}

/// One request on its way in, transport already handled.
pub struct Incoming {
    pub signal: Signal,
    pub transport: &'static str,
    pub content_type: ContentType,
    pub compression: Compression,
    pub principal: Principal,
    pub request_id: String,
    pub received_at_ms: i64,
    pub raw: Bytes,
    pub permit: Permit,
}

/// State shared by both transports.
pub struct Edge {
    pub config: Config,
    pub keys: Arc<KeyStore>,
    pub publisher: Arc<Publisher>,
    pub budget: Budget,
    pub limiter: RateLimiter,
    draining: AtomicBool,
}

impl Edge {
    pub fn new(config: Config) -> Result<Edge, StartError> {
        let keys = Arc::new(KeyStore::open(&config.edge.keys_path)?);
        let publisher = Arc::new(Publisher::new(&config)?);
        Ok(Edge {
            budget: Budget::new(config.edge.max_inflight_bytes, config.edge.retry_after_s),
            limiter: RateLimiter::new(config.edge.rate_limit_events_per_s, config.edge.rate_limit_bytes_per_s),
            keys,
            publisher,
            config,
            draining: AtomicBool::new(false),
        })
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
        // The decompressed copy is charged to its own permit and freed right after the check, so
        // requests waiting for Kafka hold only their raw bytes.
        let check = move |raw: &[u8]| -> Result<u64, Failure> {
            let mut scratch = budget.permit();
            let body = payload::decompress(compression, raw, limit, &mut scratch)?;
            ::metrics::counter!(metrics::EDGE_RECEIVED_BYTES, "stage" => "decompressed").increment(body.len() as u64);
            Ok(payload::count_records(signal, content_type, &body)?)
        };
        // Inflating can take milliseconds even for a small body: keep it off the async workers.
        let records = if compression != Compression::Identity || req.raw.len() > 256 * 1024 {
            let raw = req.raw.clone();
            match tokio::task::spawn_blocking(move || check(&raw)).await {
                Ok(records) => records?,
                Err(_) => {
                    return Err(failure::Backoff::Overloaded {
                        retry_after_s: self.config.edge.retry_after_s,
                    }
                    .into())
                }
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
            principal: &req.principal,
            content_type,
            compression,
            received_at_ms: req.received_at_ms,
            request_id: &req.request_id,
            transport: req.transport,
            records,
        };
        self.publisher.publish(&env, &req.raw).await?;
        Ok(records)
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Runs the edge until `shutdown` fires, then drains: `/readyz` turns false, the OTLP ports stop
/// accepting, in-flight requests finish, and the producer flushes.
pub async fn run(listeners: Listeners, config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let prometheus = metrics::install();
    metrics::describe_edge();
    let tls = match (&config.edge.tls_cert_path, &config.edge.tls_key_path) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    metrics::set_tenant_label(config.metrics.tenant_label);
    let edge = Arc::new(Edge::new(config)?);
    ::metrics::gauge!(metrics::EDGE_KEYS_LOADED).set(edge.keys.current().len() as f64);
    metrics::describe_tenants(edge.keys.current().tenants());
    if edge.keys.current().is_empty() {
        tracing::warn!(path = %edge.config.edge.keys_path.display(), "the key file has no keys: every request will get 401 until `cowork-ingest keys create` adds one");
    }
    edge.publisher.probe().await;

    let background = CancellationToken::new();
    tokio::spawn(edge.keys.clone().watch(
        Duration::from_millis(edge.config.edge.keys_reload_ms),
        background.clone(),
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
