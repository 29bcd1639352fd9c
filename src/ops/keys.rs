//! `cowork-ingest keys create | list | revoke`: the key file, as a person reads it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::keys::{self, Kind, Role};

/// Creates a key; its secret is printed once, on stdout's last line.
pub fn create(
    path: &Path,
    tenant: &str,
    role: Role,
    kind: Kind,
    expires: Option<time::OffsetDateTime>,
    attributes: &[(String, String)],
) -> anyhow::Result<()> {
    let new = keys::create(path, tenant, role, kind, expires, attributes)?;
    let attributes = if new.entry.attributes.is_empty() {
        String::new()
    } else {
        format!(", attributes {}", show_attributes(&new.entry.attributes))
    };
    eprintln!(
        "created key {} for tenant {} (role {:?}, kind {:?}{attributes}) in {}; the secret below is shown only once",
        new.entry.id,
        new.entry.tenant,
        new.entry.role,
        new.entry.kind,
        path.display()
    );
    println!("{}", new.token);
    Ok(())
}

/// A key's attributes as a person reads them, `cost_center=CC-1,team=payments` (the form of
/// `OTEL_RESOURCE_ATTRIBUTES`), or `-`.
fn show_attributes(attributes: &BTreeMap<String, String>) -> String {
    if attributes.is_empty() {
        return "-".into();
    }
    let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// Lists keys, never their secrets.
pub fn list(path: &Path) -> anyhow::Result<()> {
    println!(
        "{:<16}  {:<20}  {:<6}  {:<8}  {:<20}  {:<20}  {:<7}  attributes",
        "id", "tenant", "role", "kind", "created", "expires", "status"
    );
    let now = time::OffsetDateTime::now_utc();
    for k in keys::list(path)? {
        let fmt = |t: Option<time::OffsetDateTime>| {
            t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| "-".into())
        };
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        };
        println!(
            "{:<16}  {:<20}  {:<6}  {:<8}  {:<20}  {:<20}  {status:<7}  {}",
            k.id,
            k.tenant,
            format!("{:?}", k.role).to_lowercase(),
            format!("{:?}", k.kind).to_lowercase(),
            fmt(Some(k.created_at)),
            fmt(k.expires_at),
            show_attributes(&k.attributes)
        );
    }
    Ok(())
}

/// Revokes a key by id.
pub fn revoke(path: &Path, id: &str) -> anyhow::Result<()> {
    let k = keys::revoke(path, id)?;
    eprintln!("revoked key {} (tenant {})", k.id, k.tenant);
    Ok(())
}
