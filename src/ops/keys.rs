//! `cowork-ingest keys create | list | revoke`: the key file, as a person reads it.

use std::path::Path;

use crate::keys::{self, Kind, Role};

/// Creates a key; its secret is printed once, on stdout's last line.
pub fn create(
    path: &Path,
    tenant: &str,
    role: Role,
    kind: Kind,
    expires: Option<time::OffsetDateTime>,
) -> anyhow::Result<()> {
    let new = keys::create(path, tenant, role, kind, expires)?;
    eprintln!(
        "created key {} for tenant {} (role {:?}, kind {:?}) in {}; the secret below is shown only once",
        new.entry.id,
        new.entry.tenant,
        new.entry.role,
        new.entry.kind,
        path.display()
    );
    println!("{}", new.token);
    Ok(())
}

/// Lists keys, never their secrets.
pub fn list(path: &Path) -> anyhow::Result<()> {
    println!(
        "{:<16}  {:<20}  {:<6}  {:<8}  {:<20}  {:<20}  status",
        "id", "tenant", "role", "kind", "created", "expires"
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
            "{:<16}  {:<20}  {:<6}  {:<8}  {:<20}  {:<20}  {status}",
            k.id,
            k.tenant,
            format!("{:?}", k.role).to_lowercase(),
            format!("{:?}", k.kind).to_lowercase(),
            fmt(Some(k.created_at)),
            fmt(k.expires_at)
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
