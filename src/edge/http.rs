//! OTLP/HTTP: routes, content negotiation, streaming body limits and OTLP responses.
//!
//! Responses follow the OTLP/HTTP spec: a success is an empty `Export*ServiceResponse` and an
//! error is a `google.rpc.Status`, both in the request's encoding. 429 and 503 carry
//! `Retry-After`; 401 carries `WWW-Authenticate`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use prost::Message;

use super::failure::{Failure, Reject};
use super::{answered, Edge, Incoming};
use crate::otlp::{Compression, ContentType, Signal};
use crate::telemetry::edge::BytesReceived;
use crate::telemetry::labels::{BytesStage, Transport};

/// How much of an oversize body (or of one refused for a spent budget) is read and discarded
/// before answering 413 (503), in body limits.
const DRAIN_FACTOR: usize = 4;

/// `google.rpc.Status`, the OTLP error body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The OTLP/HTTP router. Each signal answers on `/v1/<signal>` and, for admins who configured
/// that path elsewhere, on `/api/v1/hooks/cowork/otlp/v1/<signal>`.
pub fn router(edge: Arc<Edge>) -> Router {
    let mut router = Router::new();
    for signal in Signal::ALL {
        for route in signal.http_paths() {
            router = router.route(
                route,
                post(move |State(edge): State<Arc<Edge>>, req: Request| async move {
                    handle(edge, signal, route, req).await
                }),
            );
        }
    }
    router.with_state(edge)
}

fn content_type(req: &Request) -> Result<ContentType, Reject> {
    let raw = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<not text>"))
        .unwrap_or("");
    let mime = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(ContentType::Protobuf),
        "application/json" => Ok(ContentType::Json),
        _ => Err(Reject::UnsupportedMediaType(raw.to_string())),
    }
}

fn compression(req: &Request) -> Result<Compression, Reject> {
    if req.headers().get_all(header::CONTENT_ENCODING).iter().count() > 1 {
        return Err(Reject::UnsupportedEncoding("several Content-Encoding headers".into()));
    }
    match req.headers().get(header::CONTENT_ENCODING) {
        None => Ok(Compression::Identity),
        Some(v) => {
            let text = v.to_str().unwrap_or("<not text>");
            Compression::parse(text).ok_or_else(|| Reject::UnsupportedEncoding(text.to_string()))
        }
    }
}

async fn handle(edge: Arc<Edge>, signal: Signal, route: &'static str, req: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    // Parsed once: `accept` refuses an unsupported type (after authentication), and the answer
    // is written in the request's encoding, JSON when it has none we know.
    let content_type = content_type(&req);
    let encoding = content_type.as_ref().ok().copied();
    let mut tenant = None;
    let result = accept(&edge, signal, &request_id, &mut tenant, content_type, req).await;
    let ct = encoding.unwrap_or(ContentType::Json);
    let (status, response) = match &result {
        Ok(_) => (StatusCode::OK, success(ct)),
        Err(f) => (f.status(), failure(ct, f)),
    };
    answered(
        &request_id,
        route,
        Transport::Http,
        tenant.as_deref(),
        encoding,
        status,
        result.as_ref().err(),
        started,
    );
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn accept(
    edge: &Edge,
    signal: Signal,
    request_id: &str,
    tenant: &mut Option<String>,
    content_type: Result<ContentType, Reject>,
    req: Request,
) -> Result<u64, Failure> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let principal = edge.authenticate(authorization)?;
    *tenant = Some(principal.tenant.to_string());
    let content_type = content_type?;
    let compression = compression(&req)?;
    let limit = edge.config.edge.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A body over the limit is read and discarded (up to DRAIN_FACTOR times the limit) before
    // the 413, so that the client, still writing, gets to read the answer instead of a broken
    // pipe, and does not retry blindly. Anything larger is cut off at once.
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR) as u64;
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(Reject::BodyTooLarge { limit }.into());
    }
    // Read the body frame by frame: the limit holds for chunked bodies with no Content-Length,
    // and every byte is charged to the in-flight budget before it is kept.
    let mut permit = edge.budget.permit();
    // Trust Content-Length only for a first, small reservation: a client that declares 4 MiB and
    // trickles bytes holds no more than it sent.
    let mut buf: Vec<u8> = Vec::with_capacity(declared.map_or(16 * 1024, |n| n as usize).min(64 * 1024));
    // When the budget is spent, the body is read and discarded like an oversize one, and the
    // answer is 503 with Retry-After: a client still writing would otherwise see the connection
    // close under it instead of the answer that tells it when to retry.
    let mut refused: Option<Failure> = None;
    if permit.grow(buf.capacity()).is_err() {
        refused = Some(edge.overloaded());
        buf = Vec::new();
    }
    let timeout_ms = edge.config.edge.body_timeout_ms;
    let read = async {
        let mut body: Body = req.into_body();
        let mut discarded = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Reject::InvalidPayload(format!("error reading the request body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if refused.is_some() || discarded > 0 || buf.len() + data.len() > limit {
                discarded += data.len() as u64;
                if discarded > drain_cap {
                    break;
                }
                continue;
            }
            if buf.len() + data.len() > buf.capacity() {
                let target = (buf.capacity() * 2).max(buf.len() + data.len()).min(limit);
                if permit.grow(target - buf.capacity()).is_err() {
                    refused = Some(edge.overloaded());
                    // Give back what this request held while the rest of it is discarded.
                    discarded += (buf.len() + data.len()) as u64;
                    buf = Vec::new();
                    permit = edge.budget.permit();
                    continue;
                }
                // Exact: the budget is charged for what is allocated, not for what a doubling
                // buffer might round up to.
                buf.reserve_exact(target - buf.len());
            }
            buf.extend_from_slice(&data);
        }
        if let Some(overloaded) = refused {
            return Err(overloaded);
        }
        if discarded > 0 {
            return Err(Failure::from(Reject::BodyTooLarge { limit }));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_millis(timeout_ms), read)
        .await
        .map_err(|_| Reject::BodyTimeout { ms: timeout_ms })??;
    BytesReceived {
        stage: BytesStage::Wire,
        bytes: buf.len(),
    }
    .emit();
    let incoming = Incoming {
        signal,
        transport: "http",
        content_type,
        compression,
        principal,
        request_id: request_id.to_string(),
        received_at_ns: crate::util::now_ms() as u64 * 1_000_000,
        raw: bytes::Bytes::from(buf),
        permit,
    };
    edge.ingest(incoming).await
}

/// An empty `Export*ServiceResponse`: no partial success to report.
fn success(ct: ContentType) -> Response {
    let body = match ct {
        ContentType::Protobuf => Body::empty(),
        ContentType::Json => Body::from("{}"),
    };
    ([(header::CONTENT_TYPE, ct.mime())], body).into_response()
}

/// A `google.rpc.Status` in the request's encoding, with the headers the status calls for.
pub fn failure(ct: ContentType, f: &Failure) -> Response {
    let status = RpcStatus {
        code: f.grpc_code() as i32,
        message: f.to_string(),
    };
    let body = match ct {
        ContentType::Protobuf => status.encode_to_vec(),
        ContentType::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (f.status(), [(header::CONTENT_TYPE, ct.mime())], body).into_response();
    if let Some(s) = f.retry_after_s() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if f.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="cowork-ingest", Basic realm="cowork-ingest""#),
        );
    }
    response
}
