//! Real clients: the OpenTelemetry JS SDK exporters (the library family Claude Code uses) over
//! http/protobuf and http/json, with and without gzip; and TLS for both OTLP ports.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use cowork_ingest::envelope::header;

fn exporter_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/otel-client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_otel_js_exporter_succeeds_over_every_http_encoding() {
    let dir = exporter_dir();
    assert!(
        dir.join("node_modules/@opentelemetry/exporter-logs-otlp-proto")
            .exists(),
        "the JS exporter is not installed: run scripts/test (it runs `npm ci` in tools/otel-client)"
    );
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let edge = start_edge(&brokers, &[]).await;
    let mut expected_events = 0;
    for (protocol, compression) in [("proto", "none"), ("json", "none"), ("proto", "gzip"), ("json", "gzip")] {
        let expected = edge.dir.path().join(format!("exp-{protocol}-{compression}.json"));
        let out = tokio::process::Command::new("node")
            .current_dir(&dir)
            .args([
                "gen.mjs",
                "--url",
                &edge.url("/v1/logs"),
                "--protocol",
                protocol,
                "--compression",
                compression,
            ])
            .args([
                "--seed",
                "5",
                "--sessions",
                "6",
                "--header",
                &format!("Authorization=Bearer {}", edge.keys.ingest),
            ])
            .args(["--expected", expected.to_str().unwrap()])
            .output()
            .await
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{protocol}/{compression}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("failed exports: 0"), "{stdout}");
        let exp: serde_json::Value = serde_json::from_slice(&std::fs::read(&expected).unwrap()).unwrap();
        expected_events += exp["events"].as_u64().unwrap();
    }
    assert!(expected_events > 0);
    // Every record the exporters sent is in Kafka, recorded with the encoding it came in.
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        got = consume_all(&brokers, "cowork-otlp-logs", usize::MAX, Duration::from_secs(2));
        let records: u64 = got
            .iter()
            .map(|m| m.headers[header::RECORDS].parse::<u64>().unwrap())
            .sum();
        if records >= expected_events {
            break;
        }
    }
    let records: u64 = got
        .iter()
        .map(|m| m.headers[header::RECORDS].parse::<u64>().unwrap())
        .sum();
    assert_eq!(records, expected_events);
    let kinds: std::collections::HashSet<(String, String)> = got
        .iter()
        .map(|m| {
            (
                m.headers[header::CONTENT_TYPE].clone(),
                m.headers[header::CONTENT_ENCODING].clone(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 4, "all four encodings arrived: {kinds:?}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_and_grpc() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let keys = make_keys(&dir.path().join("keys.toml"));
    let config = config(
        &brokers,
        dir.path(),
        &[
            &format!("edge.tls_cert_path={}", cert_path.display()),
            &format!("edge.tls_key_path={}", key_path.display()),
        ],
    );
    let edge = start_edge_with(config, keys, dir).await;

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(format!("https://localhost:{}/v1/logs", edge.http.port()))
        .header("authorization", edge.bearer())
        .header("content-type", "application/json")
        .body(json_logs("tls", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP on a TLS port does not get through.
    let plain = reqwest::Client::new()
        .post(edge.url("/v1/logs"))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert.cert.pem()))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", edge.grpc.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let msg = ExportLogsServiceRequest::decode(&corpus("proto-none")[0].body[..]).unwrap();
    let mut req = tonic::Request::new(msg);
    req.metadata_mut()
        .insert("authorization", edge.bearer().parse().unwrap());
    LogsServiceClient::new(channel)
        .export(req)
        .await
        .expect("gRPC over TLS succeeds");
    let got = consume_all(&brokers, "cowork-otlp-logs", 2, Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    edge.stop().await;
}
