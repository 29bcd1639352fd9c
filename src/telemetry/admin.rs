//! The admin port: `/healthz` (the process is up), `/readyz` (it can do its job: for the edge,
//! Kafka is reachable and it is not draining) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;

pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;
/// Metrics rendered outside the recorder (series that must be able to disappear), appended to
/// `/metrics`.
pub type ExtraFn = Arc<dyn Fn() -> String + Send + Sync>;

pub fn router(prometheus: PrometheusHandle, ready: ReadyFn, extra: Option<ExtraFn>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let mut text = prometheus.render();
                if let Some(extra) = &extra {
                    text.push_str(&extra());
                }
                async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response() }
            }),
        )
}
