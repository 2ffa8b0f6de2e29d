//! API keys (`api_keys`): recognisable, checksummed keys stored as SHA-256,
//! scoped to their owner's permissions, with expiry, revocation, usage
//! tracking and a per-key rate limit.
//!
//! # Format
//! `ghk_` + 30 random base62 characters (`0-9A-Za-z`, 178 bits) + 6 base62
//! characters of checksum: 40 characters, for example
//! `ghk_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o001X2Y`. The checksum is the CRC-32
//! (IEEE) of the first 34 characters (`ghk_` and the random part) written as
//! a 6-digit base62 number, most significant digit first, like GitHub's
//! tokens. A CRC-32 catches every single-character change, so
//! [`ApiKey::parse`] refuses mistyped keys without a query; the prefix makes
//! leaked keys easy to find by scanners. Only the SHA-256 (hex) of the whole
//! key is stored (`key_hash`); `key_prefix` keeps the public first 12
//! characters (`ghk_` + 8) to show and to look keys up by.
//!
//! # Scopes
//! Permission names (`resource.action`). At issue every scope must be held by
//! the owner; at each verification the key's scopes are narrowed again to
//! what the owner still holds. "Held" has the semantics of RBAC's
//! permission check: the user is active, not deleted, not locked by an
//! operator (`is_locked`), and the role grant has not expired. An automatic
//! lock (`locked_until`, after failed logins) stops password logins only: it
//! never disables the owner's keys, so failing logins on purpose cannot
//! switch off someone else's integrations.
//!
//! # Verification
//! [`verify`] parses the key first (no database access for a malformed key),
//! then reads twice: the key and its owner by `key_hash` (unique index) with
//! a constant-time comparison of the digest, and the owner's current
//! permissions among the key's scopes. Revocation, expiry and the owner's
//! standing are checked on every call on what the first read returned. Then
//! the use is recorded ([`usage`](KeyUsage)): a key with a per-minute limit
//! counts it in one conditional `UPDATE`; a key without one writes it at
//! once ([`verify`]) or at most once per interval ([`verify_with`] and a
//! shared [`KeyUsage`], as the [`Gatehouse`](crate::Gatehouse) handle does),
//! so that most verifications of a busy key are two indexed reads. Counts are
//! added in SQL, so concurrent verifications never lose one.
//!
//! # Rate limit
//! Optional (`rate_limit_per_minute` NULL: none). A fixed one-minute window
//! per key (`rate_window_minute`, the unix minute;
//! `rate_window_count`). The counting `UPDATE` matches only when the stored
//! window is older than the current minute (the count restarts at 1) or its
//! count is below `rate_limit_per_minute` (the count goes up by one); when
//! it matches no row the key is over its limit and [`Error::RateLimited`]
//! says how many seconds remain in the minute. The check and the increment
//! are one statement, so the limit holds across processes on every backend.
//! As with any fixed window, a client may get up to twice the limit within a
//! few seconds around a minute boundary.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use gatehouse_entity::{api_keys, permissions, role_permissions, user_roles, users};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QueryTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::client::parse_ip;
use crate::{Error, crypto};

mod usage;

pub use usage::{DEFAULT_USAGE_INTERVAL, KeyUsage};

/// The constant start of every key. It never changes: leak scanners and
/// users recognise keys by it.
pub const KEY_PREFIX: &str = "ghk";
/// Rate limit of a key when none is given.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: i32 = 60;
/// Highest rate limit a key may have.
pub const MAX_RATE_LIMIT_PER_MINUTE: i32 = 100_000;
/// Most scopes one key may carry.
pub const MAX_SCOPES: usize = 64;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random base62 characters in a key (30 × log2(62) ≈ 178 bits).
const RANDOM_LEN: usize = 30;
/// Base62 digits of the CRC-32 (62^6 > 2^32).
const CHECKSUM_LEN: usize = 6;
/// `ghk_` + random.
const BODY_LEN: usize = KEY_PREFIX.len() + 1 + RANDOM_LEN;
const KEY_LEN: usize = BODY_LEN + CHECKSUM_LEN;
/// Characters of a key shown and stored in `key_prefix`: `ghk_` + 8.
const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + 1 + 8;
/// Longest key name (the column's size).
const MAX_NAME: usize = 100;
/// Longest part of a permission name (`resource` or `action`).
const MAX_SCOPE_PART: usize = 64;
/// Seconds in a rate-limit window.
const WINDOW_SECS: i64 = 60;

/// An API key. Its `Debug` shows only the public prefix; [`Self::expose`]
/// gives the whole key, to hand to its owner once.
pub struct ApiKey(SecretString);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut body = String::with_capacity(KEY_LEN);
        body.push_str(KEY_PREFIX);
        body.push('_');
        while body.len() < BODY_LEN {
            for byte in crypto::random_bytes::<64>() {
                // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
                if byte < 248 && body.len() < BODY_LEN {
                    body.push(char::from(BASE62[usize::from(byte % 62)]));
                }
            }
        }
        body.push_str(&checksum(&body));
        Self(body.into())
    }

    /// Checks the format and checksum of `text`, without any database access.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for anything but a well-formed key with
    /// a matching checksum.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let well_formed = text.len() == KEY_LEN
            && text.is_ascii()
            && text[..KEY_PREFIX.len()] == *KEY_PREFIX
            && text.as_bytes()[KEY_PREFIX.len()] == b'_'
            && text.as_bytes()[KEY_PREFIX.len() + 1..]
                .iter()
                .all(u8::is_ascii_alphanumeric)
            && crypto::constant_time_eq(
                checksum(&text[..BODY_LEN]).as_bytes(),
                &text.as_bytes()[BODY_LEN..],
            );
        if well_formed {
            Ok(Self(text.into()))
        } else {
            Err(Error::InvalidCredentials)
        }
    }

    /// The whole key.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The public start of the key (`ghk_` + 8 characters), as in `key_prefix`.
    pub fn display_prefix(&self) -> &str {
        &self.expose()[..DISPLAY_PREFIX_LEN]
    }

    /// SHA-256 (hex) of the key: what `api_keys.key_hash` stores.
    pub fn hash(&self) -> String {
        crypto::sha256_hex(self.expose().as_bytes())
    }
}

/// CRC-32 of `body` as 6 base62 digits.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&d| char::from(d)).collect()
}

/// What to issue.
#[derive(Clone, Copy, Debug)]
pub struct NewApiKey<'a> {
    /// The owner: the key acts for this account, with at most its permissions.
    pub user_id: Uuid,
    /// 1 to 100 characters, shown to the owner.
    pub name: &'a str,
    /// Permission names, each held by the owner; at least one.
    pub scopes: &'a [&'a str],
    /// Verifications allowed per minute, 1..=100000
    /// ([`DEFAULT_RATE_LIMIT_PER_MINUTE`] is the usual choice); `None` for no
    /// per-minute limit, whose verifications record their use at most once
    /// per [`KeyUsage`] interval instead of counting each in an `UPDATE`.
    pub rate_limit_per_minute: Option<i32>,
    /// When the key stops verifying; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just issued: the key itself (shown once) and its stored record.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The key to hand to its owner; only its digest is stored.
    pub key: ApiKey,
    /// The stored row (`api_keys`).
    pub record: api_keys::Model,
}

/// A verified key: who it acts for and the scopes it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's id (`api_keys.id`), for listing and revocation.
    pub key_id: Uuid,
    /// The owner the key acts for.
    pub user_id: Uuid,
    /// The name given at issue.
    pub name: String,
    /// The key's scopes the owner still holds, sorted.
    pub scopes: Vec<String>,
    /// When the key stops verifying; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl VerifiedKey {
    /// Whether the key may use `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Refuses a scope the key does not hold.
    ///
    /// # Errors
    /// [`Error::Forbidden`] naming the scope.
    pub fn require(&self, scope: &str) -> Result<(), Error> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "the API key does not hold scope {scope}"
            )))
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.into(),
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(invalid("name", "is empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(invalid(
            "name",
            format!("longer than {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(crate::accounts::validate::is_unprintable) {
        return Err(invalid(
            "name",
            "contains control or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Checks and normalizes scopes: `resource.action` in lower-case ASCII
/// letters, digits, `_` and `-`; sorted, without duplicates.
fn check_scopes(scopes: &[&str]) -> Result<Vec<String>, Error> {
    if scopes.is_empty() {
        return Err(invalid("scopes", "at least one scope is needed"));
    }
    if scopes.len() > MAX_SCOPES {
        return Err(invalid("scopes", format!("more than {MAX_SCOPES}")));
    }
    let part_ok = |part: &str| {
        (1..=MAX_SCOPE_PART).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let mut checked = BTreeSet::new();
    for scope in scopes {
        let well_formed = scope
            .split_once('.')
            .is_some_and(|(resource, action)| part_ok(resource) && part_ok(action));
        if !well_formed {
            return Err(invalid(
                "scopes",
                "each scope is a permission name `resource.action` in lower-case letters, digits, `_` and `-`",
            ));
        }
        checked.insert((*scope).to_owned());
    }
    Ok(checked.into_iter().collect())
}

/// Of `wanted`, the permissions `user_id` holds at `now`: the user active,
/// not deleted, not locked by an operator, the role grant unexpired.
async fn held_permissions<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    wanted: &[String],
    now: DateTime<Utc>,
) -> Result<BTreeSet<String>, Error> {
    use permissions::{Column as P, Entity as Perm};
    use role_permissions::{Column as RP, Entity as RolePerm};
    use user_roles::{Column as UR, Entity as UserRole};
    use users::{Column as U, Entity as User};
    if wanted.is_empty() {
        return Ok(BTreeSet::new());
    }
    let stmt = Query::select()
        .distinct()
        .column((Perm, P::Name))
        .from(Perm)
        .inner_join(
            RolePerm,
            Expr::col((RolePerm, RP::PermissionId)).equals((Perm, P::Id)),
        )
        .inner_join(
            UserRole,
            Expr::col((UserRole, UR::RoleId)).equals((RolePerm, RP::RoleId)),
        )
        .inner_join(
            User,
            Expr::col((User, U::Id)).equals((UserRole, UR::UserId)),
        )
        .and_where(Expr::col((UserRole, UR::UserId)).eq(user_id))
        .cond_where(
            Condition::any()
                .add(Expr::col((UserRole, UR::ExpiresAt)).is_null())
                .add(Expr::col((UserRole, UR::ExpiresAt)).gt(now)),
        )
        .and_where(Expr::col((User, U::IsActive)).eq(true))
        .and_where(Expr::col((User, U::IsLocked)).eq(false))
        .and_where(Expr::col((User, U::DeletedAt)).is_null())
        .and_where(Expr::col((Perm, P::Name)).is_in(wanted.iter().map(String::as_str)))
        .to_owned();
    let rows = db.query_all(&stmt).await?;
    let mut held = BTreeSet::new();
    for row in rows {
        let name: String = row.try_get("", "name")?;
        // MySQL/MariaDB compare names case-insensitively; keep the requested spelling.
        if let Some(w) = wanted.iter().find(|w| w.eq_ignore_ascii_case(&name)) {
            held.insert(w.clone());
        }
    }
    Ok(held)
}

/// Issues a key for `new.user_id` with scopes the owner holds now.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed name, scope, rate limit or an
/// expiry not in the future (nothing is written); [`Error::Forbidden`] when
/// the owner does not hold a scope (or is inactive, deleted or locked by an
/// operator);
/// a database error.
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    new: NewApiKey<'_>,
    now: DateTime<Utc>,
) -> Result<IssuedApiKey, Error> {
    let now = now.trunc_subsecs(6);
    check_name(new.name)?;
    let scopes = check_scopes(new.scopes)?;
    if new
        .rate_limit_per_minute
        .is_some_and(|limit| !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&limit))
    {
        return Err(invalid(
            "rate_limit_per_minute",
            format!("must be within 1..={MAX_RATE_LIMIT_PER_MINUTE}"),
        ));
    }
    let expires_at = new.expires_at.map(|e| e.trunc_subsecs(6));
    if expires_at.is_some_and(|e| e <= now) {
        return Err(invalid("expires_at", "must be in the future"));
    }
    let held = held_permissions(db, new.user_id, &scopes, now).await?;
    if let Some(missing) = scopes.iter().find(|s| !held.contains(*s)) {
        return Err(Error::Forbidden(format!(
            "the key's owner does not hold {missing}"
        )));
    }
    let key = ApiKey::generate();
    let record = api_keys::Model {
        id: Uuid::now_v7(),
        user_id: new.user_id,
        name: new.name.to_owned(),
        key_prefix: key.display_prefix().to_owned(),
        key_hash: key.hash(),
        scopes: serde_json::json!(scopes),
        rate_limit_per_minute: new.rate_limit_per_minute,
        usage_count: 0,
        last_used_at: None,
        last_used_ip: None,
        expires_at,
        is_revoked: false,
        revoked_at: None,
        created_at: now,
        updated_at: now,
        rate_window_minute: 0,
        rate_window_count: 0,
    };
    api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(record.id),
        user_id: Set(record.user_id),
        name: Set(record.name.clone()),
        key_prefix: Set(record.key_prefix.clone()),
        key_hash: Set(record.key_hash.clone()),
        scopes: Set(record.scopes.clone()),
        rate_limit_per_minute: Set(record.rate_limit_per_minute),
        usage_count: Set(0),
        last_used_at: Set(None),
        last_used_ip: Set(None),
        expires_at: Set(record.expires_at),
        is_revoked: Set(false),
        revoked_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        rate_window_minute: Set(0),
        rate_window_count: Set(0),
    })
    .exec_without_returning(db)
    .await?;
    Ok(IssuedApiKey { key, record })
}

/// The key row and its owner's standing, as the lookup returns them.
#[derive(Debug, FromQueryResult)]
struct Owner {
    owner_active: bool,
    owner_locked: bool,
    owner_deleted_at: Option<DateTime<Utc>>,
}

/// Verifies a presented key and counts its use. See the module docs.
///
/// # Errors
/// [`Error::InvalidCredentials`] for a malformed key or bad checksum (before
/// any database access) or an unknown key; [`Error::InvalidInput`] for a
/// malformed IP; [`Error::Revoked`]; [`Error::Expired`]; [`Error::Forbidden`]
/// when the owner is inactive or deleted; [`Error::Locked`] while an
/// operator has locked the owner (`is_locked`); [`Error::RateLimited`] over the key's per-minute limit;
/// [`Error::Integrity`] for unreadable stored scopes; a database error.
///
/// Every use of a key without a per-minute limit is written at once; an
/// application that verifies often passes a shared [`KeyUsage`] to
/// [`verify_with`] instead (the [`Gatehouse`](crate::Gatehouse) handle does).
pub async fn verify<C: ConnectionTrait>(
    db: &C,
    key: &str,
    client_ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VerifiedKey, Error> {
    verify_with(db, &KeyUsage::every_use(), key, client_ip, now).await
}

/// [`verify`], recording the use of a key without a per-minute limit as
/// `usage` says (see [`KeyUsage`]); a key with a limit counts every use in
/// its window as always.
///
/// # Errors
/// As [`verify`].
#[tracing::instrument(name = "gatehouse.api_key.verify", skip_all, err(level = "debug"))]
pub async fn verify_with<C: ConnectionTrait>(
    db: &C,
    usage: &KeyUsage,
    key: &str,
    client_ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<VerifiedKey, Error> {
    let key = ApiKey::parse(key)?;
    let ip = client_ip.map(parse_ip).transpose()?;
    let now = now.trunc_subsecs(6);
    let hash = key.hash();

    let mut lookup = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash.as_str()))
        .into_query();
    lookup
        .expr_as(
            Expr::col((users::Entity, users::Column::IsActive)),
            "owner_active",
        )
        .expr_as(
            Expr::col((users::Entity, users::Column::IsLocked)),
            "owner_locked",
        )
        .expr_as(
            Expr::col((users::Entity, users::Column::DeletedAt)),
            "owner_deleted_at",
        )
        .inner_join(
            users::Entity,
            Expr::col((users::Entity, users::Column::Id))
                .equals((api_keys::Entity, api_keys::Column::UserId)),
        );
    let row = db
        .query_one(&lookup)
        .await?
        .ok_or(Error::InvalidCredentials)?;
    let record = api_keys::Model::from_query_result(&row, "")?;
    let owner = Owner::from_query_result(&row, "")?;
    if !crypto::constant_time_eq(record.key_hash.as_bytes(), hash.as_bytes()) {
        return Err(Error::InvalidCredentials);
    }
    if record.is_revoked {
        return Err(Error::Revoked);
    }
    if record.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::Expired);
    }
    if !owner.owner_active || owner.owner_deleted_at.is_some() {
        return Err(Error::Forbidden(
            "the API key's owner is deactivated".into(),
        ));
    }
    // Only the operator's lock; an automatic one (`locked_until`) does not
    // disable keys (see the module docs).
    if owner.owner_locked {
        return Err(Error::Locked { until: None });
    }
    let scopes: Vec<String> = serde_json::from_value(record.scopes.clone())
        .map_err(|e| Error::Integrity(format!("api key {} scopes: {e}", record.id)))?;
    let held = held_permissions(db, record.user_id, &scopes, now).await?;

    let ip = ip.map(|ip| ip.to_string());
    match record.rate_limit_per_minute {
        Some(_) => usage::count_in_window(db, record.id, ip, now).await?,
        None => usage.record(db, &record, ip, now).await?,
    }
    Ok(VerifiedKey {
        key_id: record.id,
        user_id: record.user_id,
        name: record.name,
        scopes: held.into_iter().collect(),
        expires_at: record.expires_at,
    })
}

/// Revokes a key. Returns whether this call revoked it (false when it was
/// revoked already).
///
/// # Errors
/// [`Error::NotFound`] for an unknown key; a database error.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    key_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let now = now.trunc_subsecs(6);
    let result = api_keys::Entity::update_many()
        .col_expr(api_keys::Column::IsRevoked, true.into())
        .col_expr(api_keys::Column::RevokedAt, now.into())
        .col_expr(api_keys::Column::UpdatedAt, now.into())
        .filter(api_keys::Column::Id.eq(key_id))
        .filter(api_keys::Column::IsRevoked.eq(false))
        .exec(db)
        .await?;
    if result.rows_affected == 1 {
        return Ok(true);
    }
    match api_keys::Entity::find_by_id(key_id).one(db).await? {
        Some(_) => Ok(false),
        None => Err(Error::NotFound(format!("api key {key_id}"))),
    }
}

/// The keys of `user_id`, newest first (records only: keys are never stored).
///
/// # Errors
/// A database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<api_keys::Model>, Error> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::UserId.eq(user_id))
        .order_by_desc(api_keys::Column::CreatedAt)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = ApiKey::generate();
        let text = key.expose();
        assert_eq!(text.len(), 40);
        assert!(text.starts_with("ghk_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.display_prefix(), &text[..12]);
        assert_eq!(key.hash().len(), 64);
        assert_ne!(text, ApiKey::generate().expose());
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // CRC-32 of "123456789" is the standard check value 0xCBF43926,
        // which is 3jZRME in 6 base62 digits.
        assert_eq!(checksum("123456789"), "3jZRME");
        assert_eq!(checksum(""), "000000");
    }

    #[test]
    fn debug_shows_only_the_public_prefix() {
        let key = ApiKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.display_prefix()));
        assert!(!debug.contains(&key.expose()[12..]), "{debug}");
    }

    #[test]
    fn scopes_are_checked_and_normalized() {
        assert_eq!(
            check_scopes(&["users.read", "audit.read", "users.read"]).unwrap(),
            vec!["audit.read".to_owned(), "users.read".to_owned()]
        );
        for bad in [
            &[][..],
            &["users"][..],
            &["Users.read"][..],
            &["users.read'; DROP TABLE users; --"][..],
            &[".read"][..],
            &["users.read\0"][..],
        ] {
            assert!(
                matches!(
                    check_scopes(bad),
                    Err(Error::InvalidInput {
                        field: "scopes",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    fn base62_char() -> impl Strategy<Value = char> {
        proptest::sample::select(BASE62.iter().map(|&b| char::from(b)).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn every_generated_key_parses_and_round_trips(_n in 0u8..64) {
            let key = ApiKey::generate();
            let parsed = ApiKey::parse(key.expose()).unwrap();
            prop_assert_eq!(parsed.expose(), key.expose());
            prop_assert_eq!(parsed.hash(), key.hash());
        }

        #[test]
        fn keys_from_any_random_part_round_trip(random in proptest::collection::vec(base62_char(), RANDOM_LEN)) {
            let body: String = format!("{KEY_PREFIX}_{}", random.iter().collect::<String>());
            let text = format!("{body}{}", checksum(&body));
            let parsed = ApiKey::parse(&text).unwrap();
            prop_assert_eq!(parsed.expose(), text.as_str());
        }

        #[test]
        fn any_single_character_change_is_rejected(
            position in 0..KEY_LEN,
            replacement in proptest::char::any(),
        ) {
            let key = ApiKey::generate();
            let original = key.expose();
            let mut chars: Vec<char> = original.chars().collect();
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(matches!(ApiKey::parse(&changed), Err(Error::InvalidCredentials)));
        }

        #[test]
        fn any_single_base62_change_is_rejected(position in 4..KEY_LEN, replacement in base62_char()) {
            let key = ApiKey::generate();
            let mut chars: Vec<char> = key.expose().chars().collect();
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(matches!(ApiKey::parse(&changed), Err(Error::InvalidCredentials)));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in "\\PC{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = ApiKey::parse(&text);
            let _ = ApiKey::parse(&String::from_utf8_lossy(&bytes));
            let _ = check_scopes(&[text.as_str()]);
        }

        #[test]
        fn near_keys_of_arbitrary_text_never_panic(tail in ".{0,40}") {
            let _ = ApiKey::parse(&format!("ghk_{tail}"));
        }
    }
}
