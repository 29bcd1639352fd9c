//! The edge against a real Kafka-protocol broker over TCP (librdkafka's mock cluster), with
//! real HTTP and gRPC clients and the real OpenTelemetry JS exporter.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use cowork_ingest::envelope::header;
use prost::Message;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(
    edge: &TestEdge,
    path: &str,
    auth: Option<&str>,
    ct: &str,
    enc: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = client().post(edge.url(path)).header("content-type", ct).body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(e) = enc {
        req = req.header("content-encoding", e);
    }
    req.send().await.unwrap()
}

/// A JSON logs request to `/v1/logs` with the given `Authorization`.
async fn post_json(edge: &TestEdge, auth: &str, body: Vec<u8>) -> reqwest::Response {
    post(edge, "/v1/logs", Some(auth), "application/json", None, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_body_arrives_in_kafka_byte_for_byte_with_headers() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let mut sent = Vec::new();
    for folder in CORPUS_FOLDERS {
        for b in corpus(folder) {
            let r = post(
                &edge,
                "/v1/logs",
                Some(&edge.bearer()),
                &b.content_type,
                b.content_encoding.as_deref(),
                b.body.clone(),
            )
            .await;
            assert_eq!(r.status(), 200, "{}: {}", b.name, r.text().await.unwrap());
            let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
            // A success is an empty ExportLogsServiceResponse in the request's encoding.
            assert_eq!(r.headers()["content-type"], b.content_type.as_str());
            let body = r.bytes().await.unwrap();
            if b.content_type.contains("json") {
                assert_eq!(&body[..], b"{}");
            } else {
                assert!(body.is_empty());
            }
            sent.push((b, request_id));
        }
    }
    let got = consume_all(&brokers, "cowork-otlp-logs", sent.len(), Duration::from_secs(20));
    assert_eq!(got.len(), sent.len(), "exactly one Kafka message per accepted request");
    let by_id: HashMap<&str, &Received> = got
        .iter()
        .map(|m| (m.headers[header::REQUEST_ID].as_str(), m))
        .collect();
    let mut partitions = HashSet::new();
    for (b, id) in &sent {
        let m = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{} not in Kafka", b.name));
        assert!(
            m.payload == b.body,
            "{}: payload differs from what the client sent",
            b.name
        );
        assert_eq!(m.headers[header::TENANT], "acme");
        assert_eq!(m.headers[header::KEY_ID], edge.keys.ingest_id);
        assert_eq!(m.headers[header::CONTENT_TYPE], b.content_type);
        assert_eq!(
            m.headers[header::CONTENT_ENCODING],
            b.content_encoding.as_deref().unwrap_or("identity")
        );
        assert_eq!(m.headers[header::SIGNAL], "logs");
        assert_eq!(m.headers[header::TRANSPORT], "http");
        assert!(m.headers[header::RECORDS].parse::<u64>().unwrap() > 0);
        let received: i64 = m.headers[header::RECEIVED_AT_MS].parse().unwrap();
        assert!((cowork_ingest::util::now_ms() - received).abs() < 120_000);
        partitions.insert(m.partition);
    }
    assert_eq!(
        partitions.len() as i32,
        PARTITIONS,
        "one tenant's requests spread over every partition"
    );
    // The record counts the edge saw match the corpus: 1,232 events per encoding.
    let records: u64 = got
        .iter()
        .map(|m| m.headers[header::RECORDS].parse::<u64>().unwrap())
        .sum();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    assert_eq!(records, 4 * expected["events"].as_u64().unwrap());
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_comes_from_the_key_never_from_the_payload() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let brokers = edge.config.kafka.brokers.clone();
    // The payload claims to be acme's, with a tenant attribute; the key is globex's.
    let body = String::from_utf8(json_logs("spoof", 1)).unwrap().replace(
        r#""attributes":[{"key":"service.name""#,
        r#""attributes":[{"key":"tenant","value":{"stringValue":"acme"}},{"key":"cowork-tenant","value":{"stringValue":"acme"}},{"key":"service.name""#,
    );
    assert!(body.contains("\"tenant\""));
    let r = post_json(&edge, &format!("Bearer {}", edge.keys.other_tenant), body.into_bytes()).await;
    assert_eq!(r.status(), 200);
    let got = consume_all(&brokers, "cowork-otlp-logs", 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers[header::TENANT], "globex");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let k = &edge.keys;
    let basic = |key: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("cowork:{key}"))
        )
    };
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no key", None, 401),
        ("garbage key", Some("Bearer garbage".into()), 401),
        (
            "well-formed unknown key",
            Some(format!("Bearer cwi_0123456789abcdef_{}", "0".repeat(64))),
            401,
        ),
        ("revoked key", Some(format!("Bearer {}", k.revoked)), 401),
        ("expired key", Some(format!("Bearer {}", k.expired)), 401),
        ("personal key", Some(format!("Bearer {}", k.personal)), 403),
        ("read role", Some(format!("Bearer {}", k.read)), 403),
        ("valid Bearer", Some(format!("Bearer {}", k.ingest)), 200),
        ("valid Basic", Some(basic(&k.ingest)), 200),
    ];
    for (name, auth, want) in cases {
        for (path, ct) in [
            ("/v1/logs", "application/json"),
            ("/api/v1/hooks/cowork/otlp/v1/logs", "application/x-protobuf"),
        ] {
            let body = if ct.contains("json") {
                json_logs(name, 1)
            } else {
                let b = &corpus("proto-none")[0];
                b.body.clone()
            };
            let r = post(&edge, path, auth.as_deref(), ct, None, body).await;
            assert_eq!(r.status().as_u16(), want, "{name} on {path}");
            if want == 401 {
                assert!(
                    r.headers().contains_key("www-authenticate"),
                    "{name}: 401 needs WWW-Authenticate"
                );
            }
            if want != 200 {
                // The error is a google.rpc.Status in the request's encoding.
                let body = r.bytes().await.unwrap();
                let code = if ct.contains("json") {
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["code"]
                        .as_i64()
                        .unwrap() as i32
                } else {
                    cowork_ingest::edge::RpcStatus::decode(&body[..]).unwrap().code
                };
                let expect = if want == 401 {
                    tonic::Code::Unauthenticated
                } else {
                    tonic::Code::PermissionDenied
                };
                assert_eq!(code, expect as i32, "{name}");
            }
        }
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_matrix() {
    let (_cluster, edge) =
        start_with_broker(&["edge.max_body_bytes=1048576", "edge.max_decompressed_bytes=4194304"]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let auth = edge.bearer();
    let valid = json_logs("bad-input", 3);
    let gz = gzip(&valid);
    let bomb = gzip(&vec![b' '; 64 << 20]);
    assert!(bomb.len() < 1 << 20, "the bomb itself is under the body limit");
    let oversize = gzip(&[0u8; 1])
        .into_iter()
        .chain(std::iter::repeat_n(0u8, 2 << 20))
        .collect::<Vec<u8>>();
    /// What is sent (name, content type, encoding, body) and answered (status, text in the answer).
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong content type",
            "text/plain",
            None,
            valid.clone(),
            415,
            "content type",
        ),
        (
            "unknown encoding",
            "application/json",
            Some("br"),
            valid.clone(),
            415,
            "encoding",
        ),
        (
            "truncated gzip",
            "application/json",
            Some("gzip"),
            gz[..gz.len() / 2].to_vec(),
            400,
            "truncated",
        ),
        (
            "gzip bomb",
            "application/json",
            Some("gzip"),
            bomb,
            413,
            "inflates past",
        ),
        (
            "oversize body",
            "application/x-protobuf",
            None,
            oversize,
            413,
            "exceeds",
        ),
        (
            "garbage protobuf",
            "application/x-protobuf",
            None,
            b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec(),
            400,
            "ExportLogsServiceRequest",
        ),
        (
            "malformed JSON",
            "application/json",
            None,
            b"{\"resourceLogs\": [".to_vec(),
            400,
            "OTLP/JSON",
        ),
        (
            "JSON of the wrong shape",
            "application/json",
            None,
            b"{\"resourceLogs\": {}}".to_vec(),
            400,
            "expected an array for resourceLogs",
        ),
        (
            "empty valid protobuf request",
            "application/x-protobuf",
            None,
            Vec::new(),
            200,
            "",
        ),
        (
            "empty valid JSON request",
            "application/json",
            None,
            b"{}".to_vec(),
            200,
            "",
        ),
        (
            "empty scopes",
            "application/json",
            None,
            br#"{"resourceLogs":[{"scopeLogs":[]}]}"#.to_vec(),
            200,
            "",
        ),
        ("valid gzip", "application/json", Some("gzip"), gz.clone(), 200, ""),
    ];
    for (name, ct, enc, body, want, says) in cases {
        let r = post(&edge, "/v1/logs", Some(&auth), ct, enc, body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, want, "{name}: {text}");
        assert!(text.contains(says), "{name}: error should say {says:?}, got {text}");
    }
    // A chunked body without Content-Length is held to the same limit while streaming.
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let r = client()
        .post(edge.url("/v1/logs"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413, "chunked oversize body");
    }
    // Only the valid, non-empty gzip request was published.
    let got = consume_all(&brokers, "cowork-otlp-logs", 2, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "nothing but the one valid non-empty request is published");
    assert_eq!(got[0].payload, gz);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_traces_routes_publish_to_their_own_topics() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let metrics_body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"claude_code.cost.usage","sum":{"dataPoints":[{"asDouble":0.5}]}}]}]}]}"#;
    let traces_body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s"}]}]}]}"#;
    for (path, body) in [
        ("/v1/metrics", &metrics_body[..]),
        ("/v1/traces", &traces_body[..]),
        ("/api/v1/hooks/cowork/otlp/v1/metrics", &metrics_body[..]),
    ] {
        let r = post(
            &edge,
            path,
            Some(&edge.bearer()),
            "application/json",
            None,
            body.to_vec(),
        )
        .await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let m = consume_all(&brokers, "cowork-otlp-metrics", 2, Duration::from_secs(10));
    assert_eq!(m.len(), 2);
    assert!(m
        .iter()
        .all(|x| x.headers[header::SIGNAL] == "metrics" && x.payload == metrics_body));
    let t = consume_all(&brokers, "cowork-otlp-traces", 1, Duration::from_secs(10));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].payload, traces_body);
    // Logs posted to the metrics route are not a valid metrics request... but an empty one is.
    let r = post(
        &edge,
        "/v1/metrics",
        Some(&edge.bearer()),
        "application/x-protobuf",
        None,
        b"\xff".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 400);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_succeed_on_the_grpc_port() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use tonic::codec::CompressionEncoding;

    let (_cluster, edge) = start_with_broker(&[]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", edge.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let corpus_bodies = corpus("proto-none");
    fn with_auth<T>(msg: T, key: &str) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        req
    }
    let mut logs = LogsServiceClient::new(channel.clone());
    let mut gz_logs = LogsServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    let mut sent = Vec::new();
    for (i, b) in corpus_bodies.iter().take(6).enumerate() {
        let msg = ExportLogsServiceRequest::decode(&b.body[..]).unwrap();
        sent.push(msg.encode_to_vec());
        let client = if i % 2 == 0 { &mut logs } else { &mut gz_logs };
        client
            .export(with_auth(msg, &edge.keys.ingest))
            .await
            .expect("gRPC export succeeds");
    }
    let err = logs
        .export(with_auth(
            ExportLogsServiceRequest::decode(&corpus_bodies[0].body[..]).unwrap(),
            &edge.keys.revoked,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = logs
        .export(with_auth(
            ExportLogsServiceRequest::decode(&corpus_bodies[0].body[..]).unwrap(),
            &edge.keys.read,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    MetricsServiceClient::new(channel.clone())
        .export(with_auth(ExportMetricsServiceRequest::default(), &edge.keys.ingest))
        .await
        .expect("an empty metrics export succeeds");
    TraceServiceClient::new(channel.clone())
        .export(with_auth(ExportTraceServiceRequest::default(), &edge.keys.ingest))
        .await
        .expect("an empty trace export succeeds");

    let got = consume_all(&brokers, "cowork-otlp-logs", sent.len(), Duration::from_secs(15));
    assert_eq!(got.len(), sent.len());
    let payloads: HashSet<Vec<u8>> = got.iter().map(|m| m.payload.clone()).collect();
    for s in &sent {
        assert!(payloads.contains(s), "the protobuf message is published as sent");
    }
    assert!(got
        .iter()
        .all(|m| m.headers[header::TRANSPORT] == "grpc" && m.headers[header::TENANT] == "acme"));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_attributes_travel_as_a_header_over_http_and_grpc_and_a_key_without_sends_none() {
    use cowork_ingest::envelope;
    use cowork_ingest::keys::{self, Kind, Role};
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let plain = make_keys(&path);
    let attributes = [("team", "payments"), ("cost_center", "CC-1")].map(|(k, v)| (k.to_string(), v.to_string()));
    let attributed = keys::create(&path, "acme", Role::Ingest, Kind::Org, None, &attributes).unwrap();
    let edge = start_edge_with(config(&brokers, dir.path(), &[]), plain, dir).await;
    let bearer = format!("Bearer {}", attributed.token);

    // HTTP: logs from both keys, and traces from the attributed one.
    assert_eq!(post_json(&edge, &bearer, json_logs("attr", 2)).await.status(), 200);
    assert_eq!(
        post_json(&edge, &edge.bearer(), json_logs("plain", 2)).await.status(),
        200
    );
    let traces_body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s"}]}]}]}"#;
    let r = post(
        &edge,
        "/v1/traces",
        Some(&bearer),
        "application/json",
        None,
        traces_body.to_vec(),
    )
    .await;
    assert_eq!(r.status(), 200);
    // gRPC: logs from both keys.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", edge.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let body = &corpus("proto-none")[0].body;
    for auth in [bearer.clone(), edge.bearer()] {
        let mut req = tonic::Request::new(ExportLogsServiceRequest::decode(&body[..]).unwrap());
        req.metadata_mut().insert("authorization", auth.parse().unwrap());
        LogsServiceClient::new(channel.clone())
            .export(req)
            .await
            .expect("gRPC export succeeds");
    }

    let expected = r#"{"cost_center":"CC-1","team":"payments"}"#;
    let logs = consume_all(&brokers, "cowork-otlp-logs", 4, Duration::from_secs(15));
    assert_eq!(logs.len(), 4);
    let mut seen = Vec::new();
    for m in &logs {
        let transport = m.headers[header::TRANSPORT].as_str();
        if m.headers[header::KEY_ID] == attributed.entry.id {
            assert_eq!(
                m.headers.get(header::KEY_ATTRIBUTES).map(String::as_str),
                Some(expected),
                "{transport}"
            );
            assert_eq!(
                envelope::key_attributes(&m.headers[header::KEY_ATTRIBUTES]).unwrap(),
                vec![
                    ("cost_center".to_string(), "CC-1".to_string()),
                    ("team".to_string(), "payments".to_string())
                ]
            );
            seen.push(("attributed", transport));
        } else {
            assert_eq!(m.headers[header::KEY_ID], edge.keys.ingest_id);
            assert!(
                !m.headers.contains_key(header::KEY_ATTRIBUTES),
                "a key without attributes sends no header ({transport})"
            );
            seen.push(("plain", transport));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("attributed", "grpc"),
            ("attributed", "http"),
            ("plain", "grpc"),
            ("plain", "http")
        ]
    );
    let traces = consume_all(&brokers, "cowork-otlp-traces", 1, Duration::from_secs(10));
    assert_eq!(traces.len(), 1);
    assert_eq!(
        traces[0].headers[header::KEY_ATTRIBUTES],
        expected,
        "every signal carries it"
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_and_every_acknowledged_request_survives() {
    let (cluster, edge) = start_with_broker(&["edge.publish_timeout_ms=1500"]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let mut acked = Vec::new();
    let send = |tag: String| {
        let (url, auth) = (edge.url("/v1/logs"), edge.bearer());
        async move {
            let body = json_logs(&tag, 2);
            let r = client()
                .post(url)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry, body)
        }
    };
    for i in 0..5 {
        let (status, _, body) = send(format!("before-{i}")).await;
        assert_eq!(status, 200);
        acked.push(body);
    }
    cluster.broker_down(1).unwrap();
    let mut unavailable = 0;
    for i in 0..30 {
        let (status, retry, body) = send(format!("down-{i}")).await;
        match status {
            200 => acked.push(body),
            503 => {
                unavailable += 1;
                let retry = retry.expect("503 carries Retry-After");
                assert!((1..=2).contains(&retry), "Retry-After {retry} stays short");
            }
            other => panic!("unexpected status {other} while the broker is down"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        unavailable >= 25,
        "the edge answers 503 while Kafka is down ({unavailable}/30)"
    );
    let admin = format!("http://{}/readyz", edge.admin);
    assert_eq!(
        client().get(&admin).send().await.unwrap().status(),
        503,
        "/readyz is false while Kafka is unreachable"
    );
    cluster.broker_up(1).unwrap();
    wait_ready(edge.admin, Duration::from_secs(30)).await;
    // Like a real exporter, retry on 503 after Retry-After: the producer may need a moment to
    // recover its idempotence state after the messages that timed out.
    for i in 0..5 {
        let mut tries = 0;
        loop {
            let (status, retry, body) = send(format!("after-{i}")).await;
            if status == 200 {
                acked.push(body);
                break;
            }
            assert_eq!(status, 503);
            tries += 1;
            assert!(tries < 20, "the edge did not recover after broker_up");
            tokio::time::sleep(Duration::from_secs(retry.unwrap())).await;
        }
    }
    let got = consume_all(&brokers, "cowork-otlp-logs", acked.len(), Duration::from_secs(30));
    let payloads: HashSet<&Vec<u8>> = got.iter().map(|m| &m.payload).collect();
    for body in &acked {
        assert!(payloads.contains(body), "an acknowledged request is missing from Kafka");
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_a_short_retry_after() {
    let (_cluster, edge) = start_with_broker(&["edge.rate_limit_events_per_s=10"]).await;
    let first = post_json(&edge, &edge.bearer(), json_logs("rl", 30)).await;
    assert_eq!(first.status(), 200, "a quiet key may send one large batch");
    let second = post_json(&edge, &edge.bearer(), json_logs("rl", 1)).await;
    assert_eq!(second.status(), 429);
    let retry: u64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    // Another key has its own bucket.
    let other = post_json(&edge, &format!("Bearer {}", edge.keys.other_tenant), json_logs("rl", 1)).await;
    assert_eq!(other.status(), 200);
    edge.stop().await;
}

/// Posts a small request until it gets `want` (for at most 5 s); returns the last status.
async fn status_within(edge: &TestEdge, auth: &str, want: u16) -> u16 {
    let mut status = 0;
    for _ in 0..50 {
        let body = json_logs("reload", 1);
        status = post_json(edge, auth, body).await.status().as_u16();
        if status == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_file_changes_apply_without_a_restart() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let path = edge.config.edge.keys_path.clone();
    let new = cowork_ingest::keys::create(
        &path,
        "initech",
        cowork_ingest::keys::Role::Ingest,
        cowork_ingest::keys::Kind::Org,
        None,
        &[],
    )
    .unwrap();
    let auth = format!("Bearer {}", new.token);
    let status = status_within(&edge, &auth, 200).await;
    assert_eq!(status, 200, "a new key works without a restart");
    cowork_ingest::keys::revoke(&path, &new.entry.id).unwrap();
    let status = status_within(&edge, &auth, 401).await;
    assert_eq!(status, 401, "a revoked key stops working without a restart");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_port_serves_health_readiness_and_metrics() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let _ = post_json(&edge, &edge.bearer(), json_logs("m", 2)).await;
    let _ = post(&edge, "/v1/logs", None, "application/json", None, json_logs("m", 2)).await;
    let c = client();
    assert_eq!(
        c.get(format!("http://{}/healthz", edge.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("http://{}/readyz", edge.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = c
        .get(format!("http://{}/metrics", edge.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "cowork_edge_requests_total",
        "cowork_edge_received_bytes_total",
        "cowork_edge_request_duration_seconds_bucket",
        "cowork_edge_auth_failures_total{reason=\"missing_key\"}",
        "cowork_edge_rate_limited_total",
        "cowork_edge_rejections_total",
        "cowork_edge_published_records_total{signal=\"logs\",tenant=\"acme\"}",
        "cowork_edge_kafka_produce_duration_seconds_bucket",
        "cowork_edge_kafka_produce_errors_total",
        "cowork_edge_kafka_ready 1",
        "cowork_edge_inflight_bytes",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    // Unknown routes are 404, but no OTLP signal route ever is.
    assert_eq!(c.post(edge.url("/v1/profiles")).send().await.unwrap().status(), 404);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let (_cluster, edge) = start_with_broker(&[]).await;
    let brokers = edge.config.kafka.brokers.clone();
    let body = json_logs("drain", 5);
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    let request = tokio::spawn(
        client()
            .post(edge.url("/v1/logs"))
            .header("authorization", edge.bearer())
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(rx))
            .send(),
    );
    tx.unbounded_send(Ok(body[..10].to_vec())).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    edge.shutdown.cancel(); // SIGTERM arrives mid-request
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.unbounded_send(Ok(body[10..].to_vec())).unwrap();
    drop(tx);
    let r = request.await.unwrap().unwrap();
    assert_eq!(r.status(), 200, "the in-flight request completes");
    let _ = edge.task.await;
    let got = consume_all(&brokers, "cowork-otlp-logs", 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_grpc_uploads_stay_within_the_inflight_budget() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    let mib = 1 << 20;
    let (_cluster, edge) = start_with_broker(&[
        &format!("edge.max_body_bytes={}", 2 * mib),
        &format!("edge.max_decompressed_bytes={}", 2 * mib),
        &format!("edge.max_inflight_bytes={}", 4 * mib),
    ])
    .await;
    // One 1.5 MiB message holds 1.5 MiB as received plus 1.5 MiB as the published copy: the
    // 4 MiB budget has room for one at a time.
    let big = "x".repeat(3 * mib / 2);
    let msg = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(big)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", edge.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (channel, msg, key) = (channel.clone(), msg.clone(), edge.keys.ingest.clone());
        tasks.push(tokio::spawn(async move {
            let mut req = tonic::Request::new(msg);
            req.metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
            LogsServiceClient::new(channel)
                .max_encoding_message_size(4 << 20)
                .export(req)
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(results.iter().any(Result::is_ok), "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(tonic::Code::Unavailable))),
        "over-budget uploads get the retryable UNAVAILABLE: {results:?}"
    );
    // Every byte went back to the budget: a lone upload of the same size succeeds again.
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", edge.bearer().parse().unwrap());
    LogsServiceClient::new(channel)
        .max_encoding_message_size(4 << 20)
        .export(req)
        .await
        .expect("budget was released");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_time_out_and_ambiguous_encodings_are_refused() {
    let (_cluster, edge) = start_with_broker(&["edge.body_timeout_ms=500"]).await;
    // A client that sends a little and then stalls gets 408, not a connection held forever.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
    tx.unbounded_send(Ok(b"{\"resourceLogs\":".to_vec())).unwrap();
    let r = client()
        .post(edge.url("/v1/logs"))
        .header("authorization", edge.bearer())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(rx))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
    drop(tx);
    // Two Content-Encoding headers: which one applies is unknowable, so 415.
    let r = client()
        .post(edge.url("/v1/logs"))
        .header("authorization", edge.bearer())
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .header("content-encoding", "gzip")
        .body(json_logs("two-encodings", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_instead_of_failing() {
    let (_cluster, edge) = start_with_broker(&["edge.max_connections=2"]).await;
    // Two idle connections hold both slots.
    let a = tokio::net::TcpStream::connect(edge.http).await.unwrap();
    let b = tokio::net::TcpStream::connect(edge.http).await.unwrap();
    let third = tokio::spawn(
        reqwest::Client::new()
            .post(edge.url("/v1/logs"))
            .header("authorization", edge.bearer())
            .header("content-type", "application/json")
            .body(json_logs("capped", 1))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection waits for a slot");
    drop(a);
    let r = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 200, "and is served once one closes");
    drop(b);
    edge.stop().await;
}
