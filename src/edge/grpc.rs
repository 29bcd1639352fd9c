//! OTLP/gRPC: the `Export` method of the logs, metrics and trace services.
//!
//! The message is taken as raw bytes (a pass-through codec), checked by the same code as HTTP
//! and published unchanged: the edge never re-encodes a payload. gRPC's own message compression
//! (gzip, zstd, deflate) is undone by tonic within `max_body_bytes`; what is published is the
//! protobuf message itself, recorded as `identity`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes};
use http::StatusCode;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::server::{Grpc, UnaryService};
use tonic::Status;

use super::failure::Failure;
use super::{answered, Edge, Incoming};
use crate::budget::Permit;
use crate::otlp::{Compression, ContentType, Signal};
use crate::telemetry::edge::BytesReceived;
use crate::telemetry::labels::{BytesStage, Transport};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Passes message bytes through untouched, both ways.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The tower service for the gRPC port.
#[derive(Clone)]
pub struct GrpcService {
    edge: Arc<Edge>,
}

impl GrpcService {
    pub fn new(edge: Arc<Edge>) -> GrpcService {
        GrpcService { edge }
    }
}

struct Export {
    edge: Arc<Edge>,
    signal: Signal,
}

impl UnaryService<Bytes> for Export {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (edge, signal) = (self.edge.clone(), self.signal);
        Box::pin(async move {
            let accepted = request
                .extensions()
                .get::<Accepted>()
                .cloned()
                .expect("GrpcService::call authenticated the request");
            let tenant = accepted.principal.tenant.clone();
            let result = accept(&edge, signal, &accepted, request).await;
            let status = match &result {
                Ok(_) => StatusCode::OK,
                Err(f) => f.status(),
            };
            answered(
                &accepted.request_id,
                signal.grpc_route(),
                Transport::Grpc,
                Some(&tenant),
                Some(ContentType::Protobuf),
                status,
                result.as_ref().err(),
                accepted.started,
            );
            accepted.handled.store(true, std::sync::atomic::Ordering::Relaxed);
            match result {
                // An empty Export*ServiceResponse encodes to zero bytes.
                Ok(_) => Ok(tonic::Response::new(Bytes::new())),
                Err(f) => Err(Status::new(f.grpc_code(), f.to_string())),
            }
        })
    }
}

async fn accept(
    edge: &Edge,
    signal: Signal,
    accepted: &Accepted,
    request: tonic::Request<Bytes>,
) -> Result<u64, Failure> {
    let raw = request.into_inner();
    let mut permit = edge.budget.permit();
    permit.grow(raw.len()).map_err(|_| edge.overloaded())?;
    BytesReceived {
        stage: BytesStage::Wire,
        bytes: raw.len(),
    }
    .emit();
    edge.ingest(Incoming {
        signal,
        transport: "grpc",
        content_type: ContentType::Protobuf,
        compression: Compression::Identity,
        principal: accepted.principal.clone(),
        request_id: accepted.request_id.clone(),
        received_at_ns: crate::util::now_ms() as u64 * 1_000_000,
        raw,
        permit,
    })
    .await
}

/// A request body whose bytes are charged to the in-flight budget as they arrive, like the
/// HTTP path's: tonic buffers a whole message before the handler sees it, so this is what keeps
/// concurrent gRPC uploads within `edge.max_inflight_bytes`. The charge is released when tonic
/// drops the body, once the message is read.
struct Budgeted<B> {
    inner: B,
    permit: Permit,
}

impl<B> http_body::Body for Budgeted<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            if self.permit.grow(data.len()).is_err() {
                let overloaded = super::failure::Backoff::Overloaded { retry_after_s: 1 };
                return Poll::Ready(Some(Err(Box::new(Status::unavailable(overloaded.to_string())))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl<B> tower::Service<http::Request<B>> for GrpcService
where
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let signal = Signal::ALL.into_iter().find(|s| s.grpc_path() == req.uri().path());
        let edge = self.edge.clone();
        Box::pin(async move {
            let Some(signal) = signal else {
                return Ok(Status::unimplemented(format!("no such method: {}", req.uri().path())).into_http());
            };
            let started = Instant::now();
            let request_id = uuid::Uuid::new_v4().simple().to_string();
            // Authenticate from the headers before tonic reads a byte of the body: a client
            // without a key never gets to spend the in-flight budget.
            let authorization = req.headers().get("authorization").map(|v| v.to_str().unwrap_or(""));
            let principal = match edge.authenticate(authorization) {
                Ok(p) => p,
                Err(f) => return Ok(refuse(signal.grpc_route(), &request_id, None, &f, started)),
            };
            let tenant = principal.tenant.clone();
            let handled = Arc::new(std::sync::atomic::AtomicBool::new(false));
            req.extensions_mut().insert(Accepted {
                principal,
                request_id: request_id.clone(),
                started,
                handled: handled.clone(),
            });
            let mut accept = EnabledCompressionEncodings::default();
            for enc in [
                CompressionEncoding::Gzip,
                CompressionEncoding::Zstd,
                CompressionEncoding::Deflate,
            ] {
                accept.enable(enc);
            }
            let req = req.map(|inner| Budgeted {
                inner,
                permit: edge.budget.permit(),
            });
            // The message is what gets published, so it is held to the body limit (after gRPC's
            // own decompression, which tonic bounds by the same number).
            let max = edge.config.edge.max_body_bytes;
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(max), None);
            let response = grpc.unary(Export { edge, signal }, req).await;
            // Failures tonic raised before the handler ran (message too large, budget spent
            // mid-body, unsupported grpc-encoding) still get their log line and metrics.
            if !handled.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(f) = tonic_failure(&response) {
                    answered(
                        &request_id,
                        signal.grpc_route(),
                        Transport::Grpc,
                        Some(&tenant),
                        Some(ContentType::Protobuf),
                        f.status(),
                        Some(&f),
                        started,
                    );
                }
            }
            Ok(response)
        })
    }
}

/// What the transport layer learned before the handler runs.
#[derive(Clone)]
struct Accepted {
    principal: crate::keys::Principal,
    request_id: String,
    started: Instant,
    /// Set once the handler ran (it records its own outcome).
    handled: Arc<std::sync::atomic::AtomicBool>,
}

fn refuse(
    route: &'static str,
    request_id: &str,
    tenant: Option<&str>,
    f: &Failure,
    started: Instant,
) -> http::Response<tonic::body::Body> {
    answered(
        request_id,
        route,
        Transport::Grpc,
        tenant,
        Some(ContentType::Protobuf),
        f.status(),
        Some(f),
        started,
    );
    Status::new(f.grpc_code(), f.to_string()).into_http()
}

/// The failure behind a trailers-only error response from tonic, if it is one.
fn tonic_failure(response: &http::Response<tonic::body::Body>) -> Option<Failure> {
    let status = Status::from_header_map(response.headers())?;
    use super::failure::{Backoff, Reject};
    Some(match status.code() {
        tonic::Code::Ok => return None,
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => Reject::BodyTooLarge { limit: 0 }.into(),
        tonic::Code::Unavailable => Backoff::Overloaded { retry_after_s: 1 }.into(),
        tonic::Code::Unimplemented => Reject::UnsupportedEncoding(status.message().to_string()).into(),
        _ => Reject::InvalidPayload(status.message().to_string()).into(),
    })
}
