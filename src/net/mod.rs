//! Network plumbing every service shares: the bounded accept loop with graceful shutdown
//! ([`server`]) and TLS ([`tls`]).

pub mod server;
pub mod tls;
