//! TLS for the OTLP ports (rustls with the ring provider), from PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.into(),
        source,
    })
}

/// A TLS acceptor that offers HTTP/2 and HTTP/1.1 by ALPN (gRPC needs h2).
pub fn acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem {
        path: path.into(),
        message,
    };
    let certs = rustls_pemfile::certs(&mut &read(cert_path)?[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err(cert_path, "no certificate found".into()));
    }
    let key = rustls_pemfile::private_key(&mut &read(key_path)?[..])
        .map_err(|e| pem_err(key_path, e.to_string()))?
        .ok_or_else(|| pem_err(key_path, "no private key found".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
