//! The peers: each hot path written by hand against sqlx, doing the same
//! work as the service (same statements, same checks, same decoding of every
//! column the service decodes), so that the difference is what the ORM costs.
//!
//! Only the successful path is the same; a refused session or key returns an
//! error here without the revocation and audit writes the services make.

use std::net::IpAddr;

use anyhow::{Result, bail, ensure};
use chrono::{DateTime, SubsecRound, Utc};
use gatehouse::sessions::{RiskSignals, SessionPolicy, SessionToken, risk_score};
use sea_orm::sqlx::{self, Row as _};
use uuid::Uuid;

use crate::setup::{Backend, SqlxPool, dialect, on_pool};

/// Labels of the session seal and IP hash, as `gatehouse::sessions` documents them.
const SEAL_LABEL: &[u8] = b"gatehouse session seal v1";
const IP_LABEL: &[u8] = b"gatehouse session ip v1";
const SECURITY_VERSION: i32 = 1;
const MAX_USER_AGENT: usize = 512;
const MAX_SCOPES: usize = 64;
const WINDOW_SECS: i64 = 60;

/// The seal's primitives, written from `gatehouse::sessions`' documentation.
mod crypto {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    use subtle::ConstantTimeEq;

    /// HMAC-SHA256 of `parts`, each prefixed by its length (u64 big-endian), as hex.
    pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    }

    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

/// `try_get` of a column, its type taken from where the value goes.
macro_rules! col {
    ($row:expr, $name:literal) => {
        $row.try_get($name)?
    };
}

/// The statements, in the backend's placeholder style.
pub struct Statements {
    select_session: &'static str,
    update_session: &'static str,
    select_key: &'static str,
    /// `held[n]`: the held-permissions query for `n` scopes.
    held: Vec<&'static str>,
    count_use: &'static str,
    record_use: &'static str,
    has_permission: &'static str,
    list_users: &'static str,
}

impl Statements {
    pub fn new(backend: Backend) -> Self {
        let held = (0..=MAX_SCOPES)
            .map(|n| {
                let list = vec!["?"; n.max(1)].join(", ");
                dialect(
                    backend,
                    &format!(
                        "SELECT DISTINCT p.name FROM permissions p \
                         INNER JOIN role_permissions rp ON rp.permission_id = p.id \
                         INNER JOIN user_roles ur ON ur.role_id = rp.role_id \
                         INNER JOIN users u ON u.id = ur.user_id \
                         WHERE ur.user_id = ? AND (ur.expires_at IS NULL OR ur.expires_at > ?) \
                         AND u.is_active = ? AND u.is_locked = ? \
                         AND (u.locked_until IS NULL OR u.locked_until <= ?) \
                         AND u.deleted_at IS NULL AND p.name IN ({list})"
                    ),
                )
            })
            .collect();
        Self {
            select_session: dialect(
                backend,
                "SELECT s.id, s.user_id, s.token_hash, s.ip_address, s.user_agent, s.created_at, \
                 s.last_activity_at, s.expires_at, s.is_revoked, s.revoked_at, s.revoked_reason, \
                 s.security_hash, s.encryption_key_id, s.created_ip_hash, s.security_version, \
                 s.last_validated_at, s.risk_score, \
                 (SELECT COUNT(f.id) FROM failed_login_attempts f WHERE f.user_id = s.user_id \
                  AND f.created_at > s.created_at AND f.created_at > ? AND f.created_at <= ?) \
                  AS recent_failures, \
                 k.status AS key_status \
                 FROM sessions s LEFT JOIN encryption_keys k ON k.id = s.encryption_key_id \
                 WHERE s.token_hash = ?",
            ),
            update_session: dialect(
                backend,
                "UPDATE sessions SET last_activity_at = ?, last_validated_at = ?, risk_score = ? \
                 WHERE id = ? AND is_revoked = ?",
            ),
            select_key: dialect(
                backend,
                "SELECT k.id, k.user_id, k.name, k.key_prefix, k.key_hash, k.scopes, \
                 k.rate_limit_per_minute, k.usage_count, k.last_used_at, k.last_used_ip, \
                 k.expires_at, k.is_revoked, k.revoked_at, k.created_at, k.updated_at, \
                 k.rate_window_minute, k.rate_window_count, \
                 u.is_active AS owner_active, u.is_locked AS owner_locked, \
                 u.locked_until AS owner_locked_until, u.deleted_at AS owner_deleted_at \
                 FROM api_keys k INNER JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            ),
            held,
            // MySQL/MariaDB assign left to right: the count before the window it reads.
            count_use: dialect(
                backend,
                "UPDATE api_keys SET \
                 rate_window_count = CASE WHEN rate_window_minute >= ? THEN rate_window_count + 1 ELSE 1 END, \
                 rate_window_minute = CASE WHEN rate_window_minute >= ? THEN rate_window_minute ELSE ? END, \
                 usage_count = usage_count + 1, last_used_at = ?, last_used_ip = ? \
                 WHERE id = ? AND (rate_window_minute < ? OR rate_window_count < rate_limit_per_minute)",
            ),
            record_use: dialect(
                backend,
                "UPDATE api_keys SET usage_count = usage_count + ?, last_used_at = ?, last_used_ip = ? \
                 WHERE id = ?",
            ),
            has_permission: dialect(
                backend,
                "SELECT 1 FROM users u \
                 INNER JOIN user_roles ur ON ur.user_id = u.id \
                 INNER JOIN role_permissions rp ON rp.role_id = ur.role_id \
                 INNER JOIN permissions p ON p.id = rp.permission_id \
                 WHERE u.id = ? AND u.is_active = ? AND u.is_locked = ? AND u.deleted_at IS NULL \
                 AND (u.locked_until IS NULL OR u.locked_until <= ?) \
                 AND (ur.expires_at IS NULL OR ur.expires_at > ?) AND p.name = ? LIMIT 1",
            ),
            list_users: dialect(
                backend,
                "SELECT id, email, username, is_active, is_verified, is_locked, \
                 locked_until, failed_login_count, last_login_at, last_login_ip, \
                 password_changed_at, password_expires_at, deleted_at, created_at, updated_at \
                 FROM users ORDER BY created_at, id LIMIT ?",
            ),
        }
    }
}

/// What a session's seal covers (see `gatehouse::sessions`).
pub struct SealInput<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a str,
    pub user_agent: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_ip_hash: Option<&'a str>,
    pub security_version: i32,
    pub encryption_key_id: Option<Uuid>,
}

/// The hex HMAC seal of a session row.
pub fn seal(key: &[u8], s: &SealInput<'_>) -> String {
    fn opt(v: Option<&[u8]>) -> Vec<u8> {
        v.map_or_else(|| vec![0], |v| [&[1][..], v].concat())
    }
    let user_agent = opt(s.user_agent.map(str::as_bytes));
    let ip_hash = opt(s.created_ip_hash.map(str::as_bytes));
    let key_id = opt(s.encryption_key_id.as_ref().map(|k| &k.as_bytes()[..]));
    crypto::hmac_sha256_hex(
        key,
        &[
            SEAL_LABEL,
            s.id.as_bytes(),
            s.user_id.as_bytes(),
            s.token_hash.as_bytes(),
            &user_agent,
            &s.created_at.timestamp_micros().to_be_bytes(),
            &s.expires_at.timestamp_micros().to_be_bytes(),
            &ip_hash,
            &s.security_version.to_be_bytes(),
            &key_id,
        ],
    )
}

/// Keyed hash of a normalized IP address (`created_ip_hash`).
pub fn ip_hash(key: &[u8], ip: IpAddr) -> String {
    crypto::hmac_sha256_hex(key, &[IP_LABEL, ip.to_string().as_bytes()])
}

/// IPv4 or IPv6, IPv4-mapped IPv6 as IPv4.
pub fn parse_ip(text: &str) -> Result<IpAddr> {
    ensure!(text.len() <= 64, "ip too long");
    let ip: IpAddr = text.parse()?;
    Ok(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// A `sessions` row.
// Decoded in full, as the service decodes its accounts, whether read or not.
#[allow(dead_code)]
#[derive(Debug)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token_hash: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub is_revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub security_hash: Option<String>,
    pub encryption_key_id: Option<Uuid>,
    pub created_ip_hash: Option<String>,
    pub security_version: i32,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub risk_score: i32,
}

/// The sessions service's key and policy, for the hand-written validation.
pub struct SessionKeys<'a> {
    pub key: &'a [u8],
    pub key_id: Uuid,
    pub policy: SessionPolicy,
}

/// `Sessions::validate`'s successful path: one query (session, key status,
/// recent failures), the same checks, and the `UPDATE` when it is due.
pub async fn validate_session(
    pool: &SqlxPool,
    sql: &Statements,
    keys: &SessionKeys<'_>,
    token: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SessionRow> {
    let token = SessionToken::parse(token)?;
    let ip = ip.map(parse_ip).transpose()?;
    let user_agent = user_agent.filter(|ua| !ua.is_empty());
    if let Some(ua) = user_agent {
        ensure!(ua.chars().count() <= MAX_USER_AGENT, "user agent too long");
        ensure!(!ua.chars().any(char::is_control), "control characters");
    }
    let now = now.trunc_subsecs(6);
    let hash = token.hash();
    let fetched = on_pool!(pool, |p| {
        let row = sqlx::query(sql.select_session)
            .bind(now - keys.policy.failure_window)
            .bind(now)
            .bind(&hash)
            .fetch_optional(p)
            .await?;
        match row {
            None => None,
            Some(row) => {
                let session = SessionRow {
                    id: col!(row, "id"),
                    user_id: col!(row, "user_id"),
                    token_hash: col!(row, "token_hash"),
                    ip_address: col!(row, "ip_address"),
                    user_agent: col!(row, "user_agent"),
                    created_at: col!(row, "created_at"),
                    last_activity_at: col!(row, "last_activity_at"),
                    expires_at: col!(row, "expires_at"),
                    is_revoked: col!(row, "is_revoked"),
                    revoked_at: col!(row, "revoked_at"),
                    revoked_reason: col!(row, "revoked_reason"),
                    security_hash: col!(row, "security_hash"),
                    encryption_key_id: col!(row, "encryption_key_id"),
                    created_ip_hash: col!(row, "created_ip_hash"),
                    security_version: col!(row, "security_version"),
                    last_validated_at: col!(row, "last_validated_at"),
                    risk_score: col!(row, "risk_score"),
                };
                let key_status: Option<String> = col!(row, "key_status");
                let recent_failures: i64 = col!(row, "recent_failures");
                Some((session, key_status, recent_failures))
            }
        }
    });
    let Some((mut session, key_status, recent_failures)) = fetched else {
        bail!("unknown token");
    };
    ensure!(
        crypto::constant_time_eq(session.token_hash.as_bytes(), hash.as_bytes()),
        "unknown token"
    );
    ensure!(!session.is_revoked, "revoked");
    ensure!(session.security_version == SECURITY_VERSION, "unsealed");
    ensure!(key_status.as_deref() == Some("active"), "key retired");
    ensure!(
        session.encryption_key_id == Some(keys.key_id),
        "foreign key"
    );
    let expected = seal(
        keys.key,
        &SealInput {
            id: session.id,
            user_id: session.user_id,
            token_hash: &session.token_hash,
            user_agent: session.user_agent.as_deref(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            created_ip_hash: session.created_ip_hash.as_deref(),
            security_version: session.security_version,
            encryption_key_id: session.encryption_key_id,
        },
    );
    let sealed = session
        .security_hash
        .as_deref()
        .is_some_and(|stored| crypto::constant_time_eq(stored.as_bytes(), expected.as_bytes()));
    ensure!(sealed, "seal mismatch");
    ensure!(
        now < session.expires_at && now < session.last_activity_at + keys.policy.idle_timeout,
        "expired"
    );
    let current_ip_hash = ip.map(|ip| ip_hash(keys.key, ip));
    let score = risk_score(&RiskSignals {
        ip_changed: matches!(
            (&session.created_ip_hash, &current_ip_hash),
            (Some(then), Some(current)) if then != current
        ),
        user_agent_changed: matches!(
            (session.user_agent.as_deref(), user_agent),
            (Some(then), Some(current)) if then != current
        ),
        recent_failures: u64::try_from(recent_failures).unwrap_or(0),
    });
    ensure!(score < keys.policy.risk_revoke_at, "risky");
    // Activity is recorded as the service records it: once per interval
    // (at most a tenth of the idle timeout), or when the risk score changed.
    let interval = keys
        .policy
        .activity_interval
        .min(keys.policy.idle_timeout / 10);
    if now - session.last_activity_at < interval && score == session.risk_score {
        return Ok(session);
    }
    let updated = on_pool!(pool, |p| {
        sqlx::query(sql.update_session)
            .bind(now)
            .bind(now)
            .bind(score)
            .bind(session.id)
            .bind(false)
            .execute(p)
            .await?
            .rows_affected()
    });
    ensure!(updated == 1, "revoked meanwhile");
    session.last_activity_at = now;
    session.last_validated_at = Some(now);
    session.risk_score = score;
    Ok(session)
}

/// An `api_keys` row.
// Decoded in full, as the service decodes its accounts, whether read or not.
#[allow(dead_code)]
#[derive(Debug)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub scopes: serde_json::Value,
    pub rate_limit_per_minute: Option<i32>,
    pub usage_count: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub rate_window_minute: i64,
    pub rate_window_count: i32,
}

/// Uses of keys without a per-minute limit not written yet, per key.
pub type HeldUses = std::sync::Mutex<std::collections::HashMap<Uuid, u64>>;

/// How often a key without a limit writes its use, as the service's default.
const USAGE_INTERVAL: chrono::Duration = chrono::Duration::seconds(60);

/// `api_keys::verify_with`'s successful path: the key with its owner, the
/// owner's permissions among the key's scopes, then the counting `UPDATE`
/// for a key with a per-minute limit, or for one without, the use written
/// when the key's last write is an interval old and held in `held_uses`
/// otherwise. Returns the held scopes, sorted.
pub async fn verify_key(
    pool: &SqlxPool,
    sql: &Statements,
    held_uses: &HeldUses,
    key: &str,
    client_ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let key = gatehouse::ApiKey::parse(key)?;
    let ip = client_ip.map(parse_ip).transpose()?;
    let now = now.trunc_subsecs(6);
    let hash = key.hash();
    let fetched = on_pool!(pool, |p| {
        let row = sqlx::query(sql.select_key)
            .bind(&hash)
            .fetch_optional(p)
            .await?;
        match row {
            None => None,
            Some(row) => {
                let record = ApiKeyRow {
                    id: col!(row, "id"),
                    user_id: col!(row, "user_id"),
                    name: col!(row, "name"),
                    key_prefix: col!(row, "key_prefix"),
                    key_hash: col!(row, "key_hash"),
                    scopes: col!(row, "scopes"),
                    rate_limit_per_minute: col!(row, "rate_limit_per_minute"),
                    usage_count: col!(row, "usage_count"),
                    last_used_at: col!(row, "last_used_at"),
                    last_used_ip: col!(row, "last_used_ip"),
                    expires_at: col!(row, "expires_at"),
                    is_revoked: col!(row, "is_revoked"),
                    revoked_at: col!(row, "revoked_at"),
                    created_at: col!(row, "created_at"),
                    updated_at: col!(row, "updated_at"),
                    rate_window_minute: col!(row, "rate_window_minute"),
                    rate_window_count: col!(row, "rate_window_count"),
                };
                let active: bool = col!(row, "owner_active");
                let locked: bool = col!(row, "owner_locked");
                let locked_until: Option<DateTime<Utc>> = col!(row, "owner_locked_until");
                let deleted_at: Option<DateTime<Utc>> = col!(row, "owner_deleted_at");
                Some((record, active, locked, locked_until, deleted_at))
            }
        }
    });
    let Some((record, active, locked, locked_until, deleted_at)) = fetched else {
        bail!("unknown key");
    };
    ensure!(
        crypto::constant_time_eq(record.key_hash.as_bytes(), hash.as_bytes()),
        "unknown key"
    );
    ensure!(!record.is_revoked, "revoked");
    ensure!(record.expires_at.is_none_or(|e| e > now), "expired");
    ensure!(active && deleted_at.is_none(), "owner deactivated");
    ensure!(
        !locked && locked_until.is_none_or(|u| u <= now),
        "owner locked"
    );
    let scopes: Vec<String> = serde_json::from_value(record.scopes)?;
    ensure!(
        !scopes.is_empty() && scopes.len() <= MAX_SCOPES,
        "scope count"
    );
    let names: Vec<String> = on_pool!(pool, |p| {
        let mut query = sqlx::query(sql.held[scopes.len()])
            .bind(record.user_id)
            .bind(now)
            .bind(true)
            .bind(false)
            .bind(now);
        for scope in &scopes {
            query = query.bind(scope.as_str());
        }
        let rows = query.fetch_all(p).await?;
        let mut names = Vec::with_capacity(rows.len());
        for row in &rows {
            names.push(row.try_get::<String, _>("name")?);
        }
        names
    });
    // MySQL/MariaDB compare case-insensitively: keep the requested spelling.
    let mut held: Vec<String> = scopes
        .iter()
        .filter(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s)))
        .cloned()
        .collect();
    held.sort();
    if record.rate_limit_per_minute.is_none() {
        let due = record
            .last_used_at
            .is_none_or(|last| now - last >= USAGE_INTERVAL);
        let mut uses = held_uses.lock().expect("not poisoned");
        if !due {
            *uses.entry(record.id).or_default() += 1;
            return Ok(held);
        }
        let count = 1 + uses.remove(&record.id).unwrap_or(0);
        drop(uses);
        on_pool!(pool, |p| {
            sqlx::query(sql.record_use)
                .bind(i64::try_from(count)?)
                .bind(now)
                .bind(ip.map(|ip| ip.to_string()))
                .bind(record.id)
                .execute(p)
                .await?
                .rows_affected()
        });
        return Ok(held);
    }
    let window = now.timestamp().div_euclid(WINDOW_SECS);
    let counted = on_pool!(pool, |p| {
        sqlx::query(sql.count_use)
            .bind(window)
            .bind(window)
            .bind(window)
            .bind(now)
            .bind(ip.map(|ip| ip.to_string()))
            .bind(record.id)
            .bind(window)
            .execute(p)
            .await?
            .rows_affected()
    });
    ensure!(counted == 1, "rate limited");
    Ok(held)
}

/// `rbac::has_permission`: one query.
pub async fn has_permission(
    pool: &SqlxPool,
    sql: &Statements,
    user_id: Uuid,
    permission: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let permission = permission.to_ascii_lowercase();
    ensure!(
        permission
            .split_once('.')
            .is_some_and(|(r, a)| !r.is_empty() && !a.is_empty()),
        "malformed permission"
    );
    Ok(on_pool!(pool, |p| {
        sqlx::query(sql.has_permission)
            .bind(user_id)
            .bind(true)
            .bind(false)
            .bind(now)
            .bind(now)
            .bind(&permission)
            .fetch_optional(p)
            .await?
            .is_some()
    }))
}

/// A `users` row.
// Decoded in full, as the service decodes its accounts, whether read or not.
#[allow(dead_code)]
#[derive(Debug)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_locked: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub failed_login_count: i32,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_login_ip: Option<String>,
    pub password_changed_at: Option<DateTime<Utc>>,
    pub password_expires_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The first `limit` users in order of creation, `fetch_all` into [`UserRow`].
pub async fn list_users(pool: &SqlxPool, sql: &Statements, limit: i64) -> Result<Vec<UserRow>> {
    Ok(on_pool!(pool, |p| {
        let rows = sqlx::query(sql.list_users).bind(limit).fetch_all(p).await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(UserRow {
                id: col!(row, "id"),
                email: col!(row, "email"),
                username: col!(row, "username"),
                is_active: col!(row, "is_active"),
                is_verified: col!(row, "is_verified"),
                is_locked: col!(row, "is_locked"),
                locked_until: col!(row, "locked_until"),
                failed_login_count: col!(row, "failed_login_count"),
                last_login_at: col!(row, "last_login_at"),
                last_login_ip: col!(row, "last_login_ip"),
                password_changed_at: col!(row, "password_changed_at"),
                password_expires_at: col!(row, "password_expires_at"),
                deleted_at: col!(row, "deleted_at"),
                created_at: col!(row, "created_at"),
                updated_at: col!(row, "updated_at"),
            });
        }
        users
    }))
}
