//! Organization API keys: the key file, the `keys` commands and request authentication.
//!
//! A key reads `cwi_<id>_<secret>`: a 16-hex-digit public id and a 64-hex-digit secret. The key
//! file stores the id and a SHA-256 of the secret, never the secret. A secret has 256 bits of
//! entropy, so a fast hash compared in constant time is enough; a slow KDF per request would
//! only cost CPU. The file is TOML, one `[[keys]]` table per key, and the edge reloads it when it
//! changes.
//!
//! A key may carry default attributes (`keys create --attr team=payments`). The edge sends them
//! with every payload the key sends ([`crate::envelope::header::KEY_ATTRIBUTES`]), and the
//! consumer applies them where the telemetry has no such attribute: the only way to attribute
//! Cowork, which cannot set resource attributes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const PREFIX: &str = "cwi_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// Longest tenant name and attribute name, in characters: room for a slug, short enough for a
/// metric label and a sort key.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest attribute value, in characters: a team or cost-center name, not a document.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 256;
/// Most attributes one key may carry. Team, department and cost center need three; 16 keeps the
/// header under 20 KB at worst (16 x (64 + 4 x 256 bytes, escaped)), well inside the 64 KiB of
/// headers every message is sized for.
pub const MAX_ATTRIBUTES: usize = 16;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send telemetry to the edge.
    Ingest,
    /// Read-only tooling; the edge refuses it with 403.
    Read,
}

/// Who a key belongs to. Only organization keys may ingest: a personal key would let one
/// person's client write as the whole organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Org,
    Personal,
}

/// One entry of the key file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub id: String,
    pub tenant: String,
    pub role: Role,
    pub kind: Kind,
    /// Hex SHA-256 of the secret half.
    pub secret_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    /// Default attributes (`--attr`), applied where the payload has none of that name. Key files
    /// written before attributes existed have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

/// Key file problems.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no key with id {0}")]
    NotFound(String),
    #[error("tenant must be 1-64 characters of [A-Za-z0-9._-], got {0:?}")]
    BadTenant(String),
    #[error("attribute {given:?}: {problem}")]
    BadAttribute { given: String, problem: String },
}

/// Why a request was not authenticated (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

/// Why an authenticated key may not ingest (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Role,
    PersonalKey,
}

/// The result of authentication, grouped by what the edge answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unauthenticated: {}", .0.as_str())]
    Unauthenticated(Unauthenticated),
    #[error("forbidden: {}", .0.as_str())]
    Forbidden(Forbidden),
}

impl Unauthenticated {
    pub const ALL: [Unauthenticated; 5] = [
        Unauthenticated::Missing,
        Unauthenticated::Malformed,
        Unauthenticated::Unknown,
        Unauthenticated::Revoked,
        Unauthenticated::Expired,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Unauthenticated::Missing => "missing_key",
            Unauthenticated::Malformed => "malformed_key",
            Unauthenticated::Unknown => "unknown_key",
            Unauthenticated::Revoked => "revoked_key",
            Unauthenticated::Expired => "expired_key",
        }
    }
}

impl Forbidden {
    pub const ALL: [Forbidden; 2] = [Forbidden::Role, Forbidden::PersonalKey];
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Role => "role_not_ingest",
            Forbidden::PersonalKey => "personal_key",
        }
    }
}

impl AuthError {
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Unauthenticated(u) => u.as_str(),
            AuthError::Forbidden(f) => f.as_str(),
        }
    }
}

/// An authenticated sender. The tenant comes from here, never from the payload.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Arc<str>,
    pub key_id: Arc<str>,
    /// The key's attributes as the [`crate::envelope::header::KEY_ATTRIBUTES`] value, encoded
    /// once when the key file is loaded; "" when the key has none.
    pub key_attributes: Arc<str>,
}

/// A new key, as `keys create` returns it. The secret exists only here.
pub struct NewKey {
    pub entry: KeyEntry,
    pub token: String,
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `cwi_<id>_<secret>` into its halves.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_ok(id, ID_HEX) && hex_ok(secret, SECRET_HEX)).then_some((id, secret))
}

/// Extracts the key from an `Authorization` value: `Bearer <key>` or `Basic base64(user:key)`.
pub fn token_from_authorization(value: &str) -> Result<String, Unauthenticated> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Unauthenticated::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(rest.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| Unauthenticated::Malformed)?;
        let text = String::from_utf8(raw).map_err(|_| Unauthenticated::Malformed)?;
        // The key is the password; a Basic token without a colon carries the key alone.
        Ok(match text.split_once(':') {
            Some((_, password)) => password.to_string(),
            None => text,
        })
    } else {
        Err(Unauthenticated::Malformed)
    }
}

/// The set of keys the edge checks requests against.
#[derive(Debug, Default)]
pub struct KeySet {
    by_id: HashMap<String, LoadedKey>,
}

/// A key as the edge holds it: the entry, and the principal it authenticates as, built once per
/// load so that a request only clones three `Arc`s.
#[derive(Debug)]
struct LoadedKey {
    entry: KeyEntry,
    principal: Principal,
}

impl From<KeyEntry> for LoadedKey {
    fn from(entry: KeyEntry) -> LoadedKey {
        let principal = Principal {
            tenant: entry.tenant.as_str().into(),
            key_id: entry.id.as_str().into(),
            key_attributes: crate::envelope::encode_key_attributes(&entry.attributes).into(),
        };
        LoadedKey { entry, principal }
    }
}

impl KeySet {
    /// Authenticates an `Authorization` header value at time `now`.
    pub fn authenticate(&self, authorization: Option<&str>, now: OffsetDateTime) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Unauthenticated(Unauthenticated::Missing))?;
        let token = token_from_authorization(value).map_err(AuthError::Unauthenticated)?;
        let (id, secret) = split_token(&token).ok_or(AuthError::Unauthenticated(Unauthenticated::Malformed))?;
        let presented = Sha256::digest(secret.as_bytes());
        let LoadedKey { entry, principal } = self
            .by_id
            .get(id)
            .ok_or(AuthError::Unauthenticated(Unauthenticated::Unknown))?;
        let stored = hex::decode(&entry.secret_sha256).unwrap_or_default();
        if stored.len() != presented.len() || !bool::from(presented.as_slice().ct_eq(&stored)) {
            return Err(AuthError::Unauthenticated(Unauthenticated::Unknown));
        }
        if entry.revoked_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Unauthenticated(Unauthenticated::Revoked));
        }
        if entry.expires_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Unauthenticated(Unauthenticated::Expired));
        }
        if entry.kind != Kind::Org {
            return Err(AuthError::Forbidden(Forbidden::PersonalKey));
        }
        if entry.role != Role::Ingest {
            return Err(AuthError::Forbidden(Forbidden::Role));
        }
        Ok(principal.clone())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The tenants that own a key, each once.
    pub fn tenants(&self) -> std::collections::BTreeSet<&str> {
        self.by_id.values().map(|k| k.entry.tenant.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Reads the key file; a missing file is an empty set.
fn read_file(path: &Path) -> Result<KeyFile, KeyFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| KeyFileError::Parse {
            path: path.into(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(source) => Err(KeyFileError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Writes the key file atomically (write to a temporary file, then rename), mode 0600.
fn write_file(path: &Path, file: &KeyFile) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.into(),
        source,
    };
    let text = format!(
        "# Managed by `cowork-ingest keys`. Holds SHA-256 hashes of key secrets, never the secrets.\n{}",
        toml::to_string_pretty(file).expect("key file serializes")
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Loads the key file into a [`KeySet`].
pub fn load(path: &Path) -> Result<KeySet, KeyFileError> {
    let file = read_file(path)?;
    Ok(KeySet {
        by_id: file.keys.into_iter().map(|k| (k.id.clone(), k.into())).collect(),
    })
}

/// Whether `name` is 1-[`MAX_NAME_CHARS`] characters of `[A-Za-z0-9._-]`: the rule for tenants and
/// attribute names.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What is wrong with attribute `name` = `value`, if anything.
fn attribute_problem(name: &str, value: &str) -> Option<String> {
    if !is_name(name) {
        Some(format!(
            "the name must be 1-{MAX_NAME_CHARS} characters of [A-Za-z0-9._-], got {name:?}"
        ))
    } else if value.is_empty() {
        Some("the value is empty".into())
    } else if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
        Some(format!(
            "the value must be at most {MAX_ATTRIBUTE_VALUE_CHARS} characters, got {}",
            value.chars().count()
        ))
    } else if value.chars().any(char::is_control) {
        Some("the value must not contain control characters".into())
    } else {
        None
    }
}

/// Parses one `--attr NAME=VALUE` (the value may itself contain `=`). The name is 1-64
/// characters of `[A-Za-z0-9._-]`; the value is 1-256 characters, no control characters.
pub fn parse_attribute(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))?;
    match attribute_problem(name, value) {
        Some(problem) => Err(problem),
        None => Ok((name.into(), value.into())),
    }
}

/// The attributes of a new key: each valid, each name once, at most [`MAX_ATTRIBUTES`].
fn attribute_map(attributes: &[(String, String)]) -> Result<BTreeMap<String, String>, KeyFileError> {
    let bad = |name: &str, value: &str, problem: String| KeyFileError::BadAttribute {
        given: format!("{name}={value}"),
        problem,
    };
    if attributes.len() > MAX_ATTRIBUTES {
        let (name, value) = &attributes[MAX_ATTRIBUTES];
        return Err(bad(
            name,
            value,
            format!("a key has at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    let mut map = BTreeMap::new();
    for (name, value) in attributes {
        if let Some(problem) = attribute_problem(name, value) {
            return Err(bad(name, value, problem));
        }
        if map.insert(name.clone(), value.clone()).is_some() {
            return Err(bad(name, value, format!("{name} is given more than once")));
        }
    }
    Ok(map)
}

/// `keys create`: adds a key with its default attributes and returns it with its secret.
pub fn create(
    path: &Path,
    tenant: &str,
    role: Role,
    kind: Kind,
    expires_at: Option<OffsetDateTime>,
    attributes: &[(String, String)],
) -> Result<NewKey, KeyFileError> {
    if !is_name(tenant) {
        return Err(KeyFileError::BadTenant(tenant.into()));
    }
    let attributes = attribute_map(attributes)?;
    let mut file = read_file(path)?;
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    let entry = KeyEntry {
        id: id.clone(),
        tenant: tenant.into(),
        role,
        kind,
        secret_sha256: sha256_hex(&secret),
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 ns is valid"),
        expires_at,
        revoked_at: None,
        attributes,
    };
    file.keys.push(entry.clone());
    write_file(path, &file)?;
    Ok(NewKey {
        entry,
        token: format!("{PREFIX}{id}_{secret}"),
    })
}

/// `keys list`: every key, without secrets.
pub fn list(path: &Path) -> Result<Vec<KeyEntry>, KeyFileError> {
    Ok(read_file(path)?.keys)
}

/// `keys revoke`: marks a key revoked from now on. Revoking twice keeps the first time.
pub fn revoke(path: &Path, id: &str) -> Result<KeyEntry, KeyFileError> {
    let mut file = read_file(path)?;
    let entry = file
        .keys
        .iter_mut()
        .find(|k| k.id == id)
        .ok_or_else(|| KeyFileError::NotFound(id.into()))?;
    entry
        .revoked_at
        .get_or_insert(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 ns is valid"));
    let out = entry.clone();
    write_file(path, &file)?;
    Ok(out)
}

/// Parses `--expires`: `YYYY-MM-DD` (the key expires at 00:00 UTC that day) or RFC 3339.
pub fn parse_expiry(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("expected YYYY-MM-DD or an RFC 3339 time, got {text:?}"))?;
    Ok(date.midnight().assume_utc())
}

/// The edge's live view of the key file, swapped atomically when the file changes.
pub struct KeyStore {
    path: PathBuf,
    current: ArcSwap<KeySet>,
    seen: std::sync::Mutex<Option<FileStamp>>,
}

/// What tells a changed key file apart: modification time, size and inode. Size and inode catch
/// a rewrite within one timestamp tick or by a tool that keeps the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

impl KeyStore {
    pub fn open(path: &Path) -> Result<KeyStore, KeyFileError> {
        let store = KeyStore {
            path: path.into(),
            current: ArcSwap::from_pointee(KeySet::default()),
            seen: std::sync::Mutex::new(None),
        };
        store.current.store(Arc::new(load(path)?));
        *store.seen.lock().expect("not poisoned") = stamp(path);
        Ok(store)
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Reloads the file if it changed. A file that fails to parse, or that disappeared, leaves
    /// the previous keys in force: answering 401 to every client would make them drop data.
    pub fn reload_if_changed(&self) -> Result<bool, KeyFileError> {
        let now = stamp(&self.path);
        let mut seen = self.seen.lock().expect("not poisoned");
        if now == *seen {
            return Ok(false);
        }
        if now.is_none() {
            *seen = None;
            return Err(KeyFileError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "the key file disappeared"),
            });
        }
        let set = load(&self.path)?;
        *seen = now;
        self.current.store(Arc::new(set));
        Ok(true)
    }

    /// Polls the file every `every` until `shutdown`; `on_reload` sees every new key set.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
        on_reload: impl Fn(&KeySet),
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.reload_if_changed() {
                Ok(true) => {
                    let keys = self.current();
                    tracing::info!(path = %self.path.display(), keys = keys.len(), "reloaded key file");
                    on_reload(&keys);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "key file reload failed; keeping the previous keys"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_authenticate_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let k = create(&path, "acme", Role::Ingest, Kind::Org, None, &[]).unwrap();
        let now = OffsetDateTime::now_utc();
        let set = load(&path).unwrap();
        let p = set.authenticate(Some(&format!("Bearer {}", k.token)), now).unwrap();
        assert_eq!(&*p.tenant, "acme");
        assert_eq!(&*p.key_id, k.entry.id);
        assert_eq!(&*p.key_attributes, "", "a key without attributes sends none");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{}", k.token));
        assert!(set.authenticate(Some(&format!("Basic {basic}")), now).is_ok());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(k.token.rsplit('_').next().unwrap()),
            "the secret is never stored"
        );

        let wrong = format!(
            "{}{}",
            &k.token[..k.token.len() - 1],
            if k.token.ends_with('0') { '1' } else { '0' }
        );
        assert_eq!(
            set.authenticate(Some(&format!("Bearer {wrong}")), now).unwrap_err(),
            AuthError::Unauthenticated(Unauthenticated::Unknown)
        );
        revoke(&path, &k.entry.id).unwrap();
        let set = load(&path).unwrap();
        assert_eq!(
            set.authenticate(Some(&format!("Bearer {}", k.token)), now + time::Duration::seconds(1))
                .unwrap_err(),
            AuthError::Unauthenticated(Unauthenticated::Revoked)
        );
    }

    #[test]
    fn malformed_headers() {
        let set = KeySet::default();
        let now = OffsetDateTime::now_utc();
        for h in [
            "",
            "Bearer",
            "Bearer nope",
            "Token abc",
            "Basic !!!",
            "Bearer cwi_zz_yy",
        ] {
            assert_eq!(
                set.authenticate(Some(h), now).unwrap_err(),
                AuthError::Unauthenticated(Unauthenticated::Malformed),
                "{h:?}"
            );
        }
        assert_eq!(
            set.authenticate(None, now).unwrap_err(),
            AuthError::Unauthenticated(Unauthenticated::Missing)
        );
    }

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attributes_are_stored_and_travel_encoded_in_the_principal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let given = attrs(&[
            ("team", "payments"),
            ("cost_center", "CC-1"),
            ("team.name", "Pay \"ments\" = 1"),
        ]);
        let k = create(&path, "acme", Role::Ingest, Kind::Org, None, &given).unwrap();
        let plain = create(&path, "acme", Role::Ingest, Kind::Org, None, &[]).unwrap();
        assert_eq!(k.entry.attributes, given.iter().cloned().collect::<BTreeMap<_, _>>());

        let listed = list(&path).unwrap();
        assert_eq!(listed[0].attributes, k.entry.attributes, "the key file keeps them");
        assert!(listed[1].attributes.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("attributes").count(),
            1,
            "a key without attributes writes none:\n{text}"
        );

        let set = load(&path).unwrap();
        let now = OffsetDateTime::now_utc();
        let p = set.authenticate(Some(&format!("Bearer {}", k.token)), now).unwrap();
        assert_eq!(
            &*p.key_attributes,
            r#"{"cost_center":"CC-1","team":"payments","team.name":"Pay \"ments\" = 1"}"#
        );
        assert_eq!(
            crate::envelope::key_attributes(&p.key_attributes).unwrap(),
            k.entry.attributes.clone().into_iter().collect::<Vec<_>>()
        );
        let again = set.authenticate(Some(&format!("Bearer {}", k.token)), now).unwrap();
        assert!(
            Arc::ptr_eq(&p.key_attributes, &again.key_attributes),
            "encoded once per load, not per request"
        );
        let p = set.authenticate(Some(&format!("Bearer {}", plain.token)), now).unwrap();
        assert_eq!(&*p.key_attributes, "");
    }

    #[test]
    fn a_key_file_written_before_attributes_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(
            &path,
            r#"
[[keys]]
id = "0123456789abcdef"
tenant = "acme"
role = "ingest"
kind = "org"
secret_sha256 = "00"
created_at = "2026-01-01T00:00:00Z"
"#,
        )
        .unwrap();
        let keys = list(&path).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].attributes.is_empty());
        assert_eq!(load(&path).unwrap().len(), 1);
        // And a key created into it keeps the old one as it was.
        create(&path, "acme", Role::Ingest, Kind::Org, None, &attrs(&[("team", "a")])).unwrap();
        let keys = list(&path).unwrap();
        assert!(keys[0].attributes.is_empty());
        assert_eq!(keys[1].attributes["team"], "a");
    }

    #[test]
    fn bad_attributes_are_refused_with_the_rule_they_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let long_name = "n".repeat(65);
        let long_value = "v".repeat(257);
        for (given, expected) in [
            (
                attrs(&[("", "x")]),
                r#"attribute "=x": the name must be 1-64 characters of [A-Za-z0-9._-], got """#,
            ),
            (
                attrs(&[("te am", "x")]),
                "the name must be 1-64 characters of [A-Za-z0-9._-]",
            ),
            (
                attrs(&[("team/x", "x")]),
                "the name must be 1-64 characters of [A-Za-z0-9._-]",
            ),
            (
                attrs(&[(&long_name, "x")]),
                "the name must be 1-64 characters of [A-Za-z0-9._-]",
            ),
            (
                attrs(&[("team", &long_value)]),
                "the value must be at most 256 characters, got 257",
            ),
            (attrs(&[("team", "")]), r#"attribute "team=": the value is empty"#),
            (
                attrs(&[("team", "a\nb")]),
                "the value must not contain control characters",
            ),
            (
                attrs(&[("team", "a"), ("team", "b")]),
                r#"attribute "team=b": team is given more than once"#,
            ),
        ] {
            let e = create(&path, "acme", Role::Ingest, Kind::Org, None, &given)
                .err()
                .unwrap();
            assert!(matches!(e, KeyFileError::BadAttribute { .. }), "{e}");
            assert!(e.to_string().contains(expected), "{given:?}: {e}");
        }
        let many: Vec<_> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("a{i}"), "x".to_string()))
            .collect();
        let e = create(&path, "acme", Role::Ingest, Kind::Org, None, &many)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), r#"attribute "a16=x": a key has at most 16 attributes"#);
        assert!(!path.exists(), "nothing is written for a refused key");

        // The limits themselves are allowed; a value is counted in characters, not bytes.
        let edge = attrs(&[(&"n".repeat(64), &"é".repeat(256)), ("a", "b=c")]);
        create(&path, "acme", Role::Ingest, Kind::Org, None, &edge).unwrap();
        create(&path, "acme", Role::Ingest, Kind::Org, None, &many[..MAX_ATTRIBUTES]).unwrap();
    }

    #[test]
    fn parse_attribute_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_attribute("team=payments").unwrap(),
            ("team".into(), "payments".into())
        );
        assert_eq!(parse_attribute("q=a=b").unwrap(), ("q".into(), "a=b".into()));
        assert_eq!(
            parse_attribute("team").unwrap_err(),
            r#"expected NAME=VALUE, got "team""#
        );
        assert!(parse_attribute("=x").unwrap_err().contains("[A-Za-z0-9._-]"));
        assert_eq!(parse_attribute("team=").unwrap_err(), "the value is empty");
    }

    #[test]
    fn tenants_must_be_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        for bad in ["", "ac me", "acme'", "acme/x", "ünï", &"t".repeat(65)] {
            let e = create(&path, bad, Role::Ingest, Kind::Org, None, &[]).err().unwrap();
            assert_eq!(
                e.to_string(),
                format!("tenant must be 1-64 characters of [A-Za-z0-9._-], got {bad:?}")
            );
        }
        assert!(!path.exists());
        for good in ["acme", "Acme.Corp_2-eu", &"t".repeat(64)] {
            create(&path, good, Role::Ingest, Kind::Org, None, &[]).unwrap();
        }
    }

    #[test]
    fn expiry_dates() {
        assert_eq!(
            parse_expiry("2027-01-02").unwrap().to_string(),
            "2027-01-02 0:00:00.0 +00:00:00"
        );
        assert!(parse_expiry("2027-01-02T03:04:05Z").is_ok());
        assert!(parse_expiry("next week").is_err());
    }
}
