//! Login sessions (`sessions`, `session_audit_log`): 256-bit bearer tokens
//! stored as SHA-256, rows sealed by an HMAC, idle and absolute timeouts, risk
//! scoring, revocation and batched cleanup, each change audited.
//!
//! # Token
//! 32 random bytes as unpadded base64url (43 characters). Only the SHA-256
//! (hex) of the token text is stored, in `token_hash`. A malformed token is
//! refused as [`Error::InvalidCredentials`] before any query.
//!
//! # Seal (`security_version` 1)
//! `security_hash` is the hex HMAC-SHA256 under `HMAC_KEY` of these parts
//! (each length-prefixed, as `crypto::hmac_sha256` does): the label
//! `gatehouse session seal v1`, `id` and `user_id` (16 bytes each),
//! `token_hash`, `user_agent`, `created_at` and `expires_at` (unix
//! microseconds, 8 bytes big-endian), `created_ip_hash`, `security_version`
//! (4 bytes big-endian) and `encryption_key_id`; optional values are a 0 byte
//! when absent, a 1 byte then the value when present. Timestamps are truncated
//! to microseconds before they are stored, so every backend gives them back
//! exactly. Not sealed: `ip_address` (display only; may be purged), and the
//! bookkeeping that changes after creation (`last_activity_at`,
//! `last_validated_at`, `risk_score`, revocation). Revoking a session clears
//! its seal, so a revoked row flipped back to `is_revoked = false` fails as
//! tampered. `encryption_key_id` is the `encryption_keys` record of the HMAC
//! key (type `session`).
//!
//! # Validation
//! One query fetches the session by `token_hash` (unique index) together with
//! the status of its key and the count of its user's recent failed logins.
//! Every check below runs on every call, on what that query read. An `UPDATE`
//! records `last_activity_at`, `last_validated_at` and `risk_score` only when
//! it is due: at most once per [`SessionPolicy::activity_interval`] (and at
//! least once per tenth of the idle timeout), or at once when the risk score
//! changed. A validation within the interval writes nothing, so it is one
//! indexed read. The idle timeout is therefore exact to within the interval: a
//! session idle for less than `idle_timeout - activity_interval` stays valid,
//! one idle for `idle_timeout` or more expires. In order:
//! - unknown token: [`Error::InvalidCredentials`];
//! - revoked: [`Error::Revoked`];
//! - `security_version` 0 (a session from before the session-security
//!   migration, never sealed): revoked with reason `unsealed`, then
//!   [`Error::Revoked`]: the user signs in again. An unknown newer version is
//!   [`Error::Integrity`] and left alone (a newer deployment may know it);
//! - sealed under a rotated key of the ring (`HMAC_KEY_PREVIOUS`, see
//!   [`Sessions::load_with_previous`]): checked with that key (seal and
//!   `created_ip_hash`) and valid until it expires; sessions are never
//!   re-sealed, so a ring key can leave the ring once its sessions expired;
//! - sealed under a compromised key, or a rotated one not in the ring:
//!   revoked with reason `key_retired`, [`Error::Integrity`]. Under an
//!   active key this process does not hold (rotated in after it started):
//!   [`Error::Integrity`] without revoking;
//! - seal mismatch: a `tamper_detected` audit row, the session revoked with
//!   reason `tampered`, [`Error::Integrity`];
//! - past `expires_at` (absolute timeout) or `last_activity_at + idle`
//!   (idle timeout): [`Error::Expired`];
//! - risk score at or above [`SessionPolicy::risk_revoke_at`]: a
//!   `risk_revoked` audit row, the session revoked, [`Error::Revoked`].
//!
//! # Risk score (0..=100)
//! The sum of these signals, capped at 100:
//! - the client IP's keyed hash differs from `created_ip_hash`: [`RISK_IP_CHANGED`] (40);
//! - the user agent differs from the one the session was created with: [`RISK_USER_AGENT_CHANGED`] (30);
//! - each failed login (any factor) of the user recorded in
//!   `failed_login_attempts` since the session was created and within
//!   [`SessionPolicy::failure_window`]: [`RISK_PER_RECENT_FAILURE`] (10), at
//!   most [`RISK_RECENT_FAILURES_MAX`] (30).
//!
//! A signal whose value is unknown on either side (no IP or user agent at
//! creation or now) counts 0. With the default threshold of 70 a changed IP
//! and user agent together revoke, as does a changed IP with three recent
//! failures; any one signal alone does not.
//!
//! # Cleanup
//! [`Sessions::cleanup`] deletes expired, revoked, unsealed and risky sessions
//! in batches of [`SessionPolicy::cleanup_batch`], one transaction per batch,
//! writing one audit row per deleted session in the same transaction
//! (`expired`, `risk_revoked` or `cleaned_up`, with the reason and the
//! session's last risk score).
//! Deleting a session sets `session_id` of its audit rows to NULL (the
//! schema's `ON DELETE SET NULL`); every audit row this module writes also
//! carries the session id in `details`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse_entity::sea_orm_active_enums::{KeyStatus, KeyType, SessionEvent};
use gatehouse_entity::{encryption_keys, failed_login_attempts, session_audit_log, sessions};
use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, QueryTrait, TransactionSession, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::config::HmacKey;
use crate::db::retry;
use crate::keys::HMAC_ALGORITHM as SEAL_ALGORITHM;
use crate::{Error, crypto, keys};

/// The sealing scheme this code writes and verifies.
pub const SECURITY_VERSION: i32 = 1;
/// `security_version` of sessions created before sealing existed.
pub const LEGACY_SECURITY_VERSION: i32 = 0;
/// Risk added when the client IP differs from the creating one.
pub const RISK_IP_CHANGED: i32 = 40;
/// Risk added when the user agent differs from the creating one.
pub const RISK_USER_AGENT_CHANGED: i32 = 30;
/// Risk added per recent failed login of the session's user.
pub const RISK_PER_RECENT_FAILURE: i32 = 10;
/// Most risk recent failed logins can add together.
pub const RISK_RECENT_FAILURES_MAX: i32 = 30;
/// The highest risk score.
pub const RISK_MAX: i32 = 100;

/// Random bytes in a session token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Length of a token: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;
const SEAL_LABEL: &[u8] = b"gatehouse session seal v1";
const IP_LABEL: &[u8] = b"gatehouse session ip v1";
/// Longest revocation reason (the column's size).
const MAX_REASON: usize = 64;
/// Consecutive cleanup batches that may lose a race before cleanup gives up.
const MAX_CLEANUP_RETRIES: u32 = 10;

/// Revocation reason of a legacy session that was never sealed.
pub const REASON_UNSEALED: &str = "unsealed";
/// Revocation reason of a session whose seal did not match.
pub const REASON_TAMPERED: &str = "tampered";
/// Revocation reason of a session sealed under a rotated or compromised key.
pub const REASON_KEY_RETIRED: &str = "key_retired";
/// Revocation reason of a session whose risk score reached the threshold.
pub const REASON_RISK: &str = "risk";
/// Revocation reason of [`Sessions::logout`].
pub const REASON_LOGOUT: &str = "logout";

/// Timeouts, risk threshold and cleanup batch size.
///
/// Defaults: idle 30 minutes, absolute 12 hours, revoke at a risk score of 70,
/// failed logins counted over 15 minutes, cleanup 1000 sessions per transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long expires (`last_activity_at` + idle).
    pub idle_timeout: Duration,
    /// A session expires this long after creation whatever its use (`expires_at`).
    pub absolute_timeout: Duration,
    /// Risk score at or above which a session is revoked (1..=100).
    pub risk_revoke_at: i32,
    /// How far back failed logins count towards the risk score.
    pub failure_window: Duration,
    /// Sessions deleted per cleanup transaction.
    pub cleanup_batch: u64,
    /// Validation records activity at most this often (and at least once
    /// per tenth of `idle_timeout`, whichever is shorter); zero records every
    /// validation. The idle timeout is exact to within it (see the module docs).
    pub activity_interval: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::minutes(30),
            absolute_timeout: Duration::hours(12),
            risk_revoke_at: 70,
            failure_window: Duration::minutes(15),
            cleanup_batch: 1000,
            activity_interval: Duration::seconds(60),
        }
    }
}

impl SessionPolicy {
    fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &str| {
            Err(Error::InvalidInput {
                field: "session_policy",
                reason: reason.to_owned(),
            })
        };
        if self.idle_timeout <= Duration::zero() || self.absolute_timeout <= Duration::zero() {
            return invalid("timeouts must be positive");
        }
        if self.idle_timeout > self.absolute_timeout {
            return invalid("the idle timeout cannot exceed the absolute timeout");
        }
        if !(1..=RISK_MAX).contains(&self.risk_revoke_at) {
            return invalid("risk_revoke_at must be within 1..=100");
        }
        if self.failure_window < Duration::zero() {
            return invalid("failure_window cannot be negative");
        }
        if !(1..=100_000).contains(&self.cleanup_batch) {
            return invalid("cleanup_batch must be within 1..=100000");
        }
        if self.activity_interval < Duration::zero() {
            return invalid("activity_interval cannot be negative");
        }
        Ok(())
    }

    /// How stale recorded activity may get before a validation records it:
    /// `activity_interval`, at most a tenth of the idle timeout.
    fn recording_interval(&self) -> Duration {
        self.activity_interval.min(self.idle_timeout / 10)
    }
}

/// A session bearer token. Its `Debug` shows no secret; [`Self::expose`]
/// gives the text to hand to the client, once.
pub struct SessionToken(SecretString);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(redacted)")
    }
}

impl SessionToken {
    /// A new token of 256 random bits.
    pub fn generate() -> Self {
        let bytes = crypto::random_bytes::<TOKEN_BYTES>();
        Self(data_encoding::BASE64URL_NOPAD.encode(&bytes).into())
    }

    /// Checks the form of a presented token without any database access.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] unless `text` is 43 characters of
    /// canonical unpadded base64url.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let well_formed = text.len() == TOKEN_LEN
            && data_encoding::BASE64URL_NOPAD
                .decode(text.as_bytes())
                .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
        if well_formed {
            Ok(Self(text.into()))
        } else {
            Err(Error::InvalidCredentials)
        }
    }

    /// The token text, for the client.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// SHA-256 (hex) of the token: what `sessions.token_hash` stores.
    pub fn hash(&self) -> String {
        crypto::sha256_hex(self.expose().as_bytes())
    }
}

fn check_reason(reason: &str) -> Result<(), Error> {
    let problem = if reason.is_empty() {
        Some("is empty".to_owned())
    } else if reason.chars().count() > MAX_REASON {
        Some(format!("longer than {MAX_REASON} characters"))
    } else if reason.chars().any(char::is_control) {
        Some("contains control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(reason) => Err(Error::InvalidInput {
            field: "reason",
            reason,
        }),
        None => Ok(()),
    }
}

/// The signals a risk score is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiskSignals {
    /// The client's address is not the one the session was created from.
    pub ip_changed: bool,
    /// The user agent is not the one the session was created with.
    pub user_agent_changed: bool,
    /// The account's failed sign-in attempts since the session was created
    /// and within [`SessionPolicy::failure_window`].
    pub recent_failures: u64,
}

/// The risk score of `signals`, 0..=100 (weights in the module docs).
pub fn risk_score(signals: &RiskSignals) -> i32 {
    let failures = i32::try_from(signals.recent_failures)
        .unwrap_or(i32::MAX)
        .saturating_mul(RISK_PER_RECENT_FAILURE)
        .min(RISK_RECENT_FAILURES_MAX);
    let score = i32::from(signals.ip_changed) * RISK_IP_CHANGED
        + i32::from(signals.user_agent_changed) * RISK_USER_AGENT_CHANGED
        + failures;
    score.clamp(0, RISK_MAX)
}

/// A session just created: the token to hand out (once) and the stored row.
#[derive(Debug)]
pub struct CreatedSession {
    /// The bearer token for the client; only its digest is stored.
    pub token: SessionToken,
    /// The stored row (`sessions`).
    pub session: sessions::Model,
}

/// How many sessions a cleanup removed, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Past their absolute or idle timeout.
    pub expired: u64,
    /// Revoked before, or never sealed.
    pub revoked: u64,
    /// Risk score at or above the threshold.
    pub risky: u64,
    /// Transactions that deleted sessions.
    pub batches: u64,
}

impl CleanupReport {
    /// Sessions removed in all.
    pub fn total(&self) -> u64 {
        self.expired + self.revoked + self.risky
    }
}

/// The sessions service: the HMAC key, the record of that key, the ring of
/// previous keys (with their records), and the policy. Cheap to clone and
/// `'static`: keep one in the application's state.
#[derive(Clone, Debug)]
pub struct Sessions {
    key: HmacKey,
    key_id: Uuid,
    previous: Arc<[(Uuid, HmacKey)]>,
    policy: SessionPolicy,
}

/// A session as the validation query returns it.
struct Fetched {
    session: sessions::Model,
    key_status: Option<KeyStatus>,
    recent_failures: u64,
}

/// Why cleanup removes a session, decided in the same order as the audit says.
enum Stale {
    Revoked(String),
    Unsealed,
    AbsoluteTimeout,
    IdleTimeout,
    Risky,
}

impl Sessions {
    /// Checks `key` against the recorded session key and checks `policy`.
    /// Call once at start. Without a key ring; see [`Self::load_with_previous`].
    ///
    /// # Errors
    /// See [`Self::load_with_previous`].
    pub async fn load<C>(db: &C, key: &HmacKey, policy: SessionPolicy) -> Result<Self, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        Self::load_with_previous(db, key, &[], policy).await
    }

    /// Checks `key` against the recorded session key (recording it as
    /// version 1 when none is recorded yet, never rotating; see
    /// [`keys::ensure_configured`]) and checks `policy`. `previous` is the
    /// key ring (`HMAC_KEY_PREVIOUS`): sessions sealed under one of those
    /// keys whose record is `rotated` keep validating until they expire.
    /// Ring keys that are not recorded, or are compromised, verify nothing.
    /// Call once at start.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an inconsistent policy; [`Error::Config`]
    /// (`HMAC_KEY`) when `key` is not the active recorded session key; a
    /// database error.
    pub async fn load_with_previous<C>(
        db: &C,
        key: &HmacKey,
        previous: &[HmacKey],
        policy: SessionPolicy,
    ) -> Result<Self, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        policy.validate()?;
        let record =
            keys::ensure_configured(db, KeyType::Session, &key.fingerprint(), SEAL_ALGORITHM)
                .await?;
        let mut ring = Vec::with_capacity(previous.len());
        for old in previous {
            if let Some(found) = keys::find(db, KeyType::Session, &old.fingerprint()).await?
                && found.status == KeyStatus::Rotated
            {
                ring.push((found.id, old.clone()));
            }
        }
        Ok(Self {
            key: key.clone(),
            key_id: record.id,
            previous: ring.into(),
            policy,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The `encryption_keys` id new sessions are sealed under.
    pub fn key_id(&self) -> Uuid {
        self.key_id
    }

    /// The ids of the ring's rotated keys this service verifies with.
    pub fn previous_key_ids(&self) -> Vec<Uuid> {
        self.previous.iter().map(|(id, _)| *id).collect()
    }

    /// Keyed hash of a normalized IP address, as in `created_ip_hash`.
    fn ip_hash(&self, ip: IpAddr) -> String {
        ip_hash_with(&self.key, ip)
    }

    /// The seal of `s` (see the module docs for the exact input).
    fn seal(&self, s: &sessions::Model) -> String {
        seal_with(&self.key, s)
    }

    /// The key `s` is sealed under, when this service holds it: the current
    /// key for the active record, a ring key for a rotated one.
    fn key_of(&self, s: &sessions::Model, status: Option<KeyStatus>) -> Option<&HmacKey> {
        let id = s.encryption_key_id?;
        match status? {
            KeyStatus::Active if id == self.key_id => Some(&self.key),
            KeyStatus::Rotated => self
                .previous
                .iter()
                .find(|(ring_id, _)| *ring_id == id)
                .map(|(_, key)| key),
            _ => None,
        }
    }

    /// Creates a sealed session for `user_id`, expiring after the absolute
    /// timeout, and audits it (`created`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed IP or user agent (nothing is
    /// written); [`Error::Reference`] for an unknown user; a database error.
    pub async fn create<C>(
        &self,
        db: &C,
        user_id: Uuid,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let created = retry(db, "sessions.create", || async {
            let txn = db.begin().await?;
            let created = self.insert(&txn, user_id, client, now).await?;
            txn.commit().await?;
            Ok(created)
        })
        .await?;
        Ok(created)
    }

    /// [`Self::create`] inside the caller's transaction (a login's).
    pub(crate) async fn insert<C: ConnectionTrait>(
        &self,
        txn: &C,
        user_id: Uuid,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreatedSession, Error> {
        let client = client.check()?;
        let now = now.trunc_subsecs(6);
        let token = SessionToken::generate();
        let mut session = sessions::Model {
            id: Uuid::now_v7(),
            user_id,
            token_hash: token.hash(),
            ip_address: client.ip.map(|ip| ip.to_string()),
            user_agent: client.user_agent,
            created_at: now,
            last_activity_at: now,
            expires_at: now + self.policy.absolute_timeout,
            is_revoked: false,
            revoked_at: None,
            revoked_reason: None,
            security_hash: None,
            encryption_key_id: Some(self.key_id),
            created_ip_hash: client.ip.map(|ip| self.ip_hash(ip)),
            security_version: SECURITY_VERSION,
            last_validated_at: None,
            risk_score: 0,
        };
        session.security_hash = Some(self.seal(&session));
        sessions::Entity::insert(sessions::ActiveModel {
            id: Set(session.id),
            user_id: Set(session.user_id),
            token_hash: Set(session.token_hash.clone()),
            ip_address: Set(session.ip_address.clone()),
            user_agent: Set(session.user_agent.clone()),
            created_at: Set(session.created_at),
            last_activity_at: Set(session.last_activity_at),
            expires_at: Set(session.expires_at),
            is_revoked: Set(false),
            revoked_at: Set(None),
            revoked_reason: Set(None),
            security_hash: Set(session.security_hash.clone()),
            encryption_key_id: Set(session.encryption_key_id),
            created_ip_hash: Set(session.created_ip_hash.clone()),
            security_version: Set(session.security_version),
            last_validated_at: Set(None),
            risk_score: Set(0),
        })
        .exec_without_returning(txn)
        .await?;
        audit(
            txn,
            &session,
            SessionEvent::Created,
            None,
            None,
            session.created_ip_hash.clone(),
            now,
        )
        .await?;
        Ok(CreatedSession { token, session })
    }

    /// Validates a presented token and records the use. Returns the session
    /// as updated. See the module docs for the order of the checks.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] (malformed or unknown token, no query for
    /// a malformed one), [`Error::InvalidInput`] (malformed IP or user agent),
    /// [`Error::Revoked`], [`Error::Expired`], [`Error::Integrity`] (seal
    /// mismatch, retired key, unknown scheme version); a database error.
    #[tracing::instrument(name = "gatehouse.session.validate", skip_all, err(level = "debug"))]
    pub async fn validate<C>(
        &self,
        db: &C,
        token: &str,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<sessions::Model, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let token = SessionToken::parse(token)?;
        let client = client.check()?;
        let now = now.trunc_subsecs(6);
        let hash = token.hash();
        let Some(fetched) = self.fetch(db, &hash, now).await? else {
            return Err(Error::InvalidCredentials);
        };
        let Fetched {
            mut session,
            key_status,
            recent_failures,
        } = fetched;
        if !crypto::constant_time_eq(session.token_hash.as_bytes(), hash.as_bytes()) {
            return Err(Error::InvalidCredentials);
        }
        if session.is_revoked {
            return Err(Error::Revoked);
        }
        let ip_hash = client.ip.map(|ip| self.ip_hash(ip));
        match session.security_version {
            SECURITY_VERSION => {}
            LEGACY_SECURITY_VERSION => {
                revoke_audited(
                    db,
                    &session,
                    SessionEvent::Revoked,
                    REASON_UNSEALED,
                    None,
                    ip_hash,
                    now,
                )
                .await?;
                return Err(Error::Revoked);
            }
            other => {
                return Err(Error::Integrity(format!(
                    "session sealed with scheme version {other}, this code knows {SECURITY_VERSION}"
                )));
            }
        }
        let Some(seal_key) = self.key_of(&session, key_status) else {
            if key_status == Some(KeyStatus::Active) {
                return Err(Error::Integrity(
                    "session sealed under an active key this process does not hold; restart it with the current HMAC_KEY".into(),
                ));
            }
            revoke_audited(
                db,
                &session,
                SessionEvent::Revoked,
                REASON_KEY_RETIRED,
                None,
                ip_hash,
                now,
            )
            .await?;
            return Err(Error::Integrity(
                "session sealed under a key that is no longer active; sign in again".into(),
            ));
        };
        let expected = seal_with(seal_key, &session);
        let sealed = session
            .security_hash
            .as_deref()
            .is_some_and(|stored| crypto::constant_time_eq(stored.as_bytes(), expected.as_bytes()));
        if !sealed {
            retry(db, "sessions.validate", || async {
                let txn = db.begin().await?;
                audit(
                    &txn,
                    &session,
                    SessionEvent::TamperDetected,
                    Some("seal mismatch; session revoked"),
                    None,
                    ip_hash.clone(),
                    now,
                )
                .await?;
                mark_revoked(&txn, session.id, REASON_TAMPERED, now).await?;
                txn.commit().await?;
                Ok(())
            })
            .await?;
            return Err(Error::Integrity("session seal mismatch".into()));
        }
        if now >= session.expires_at || now >= session.last_activity_at + self.policy.idle_timeout {
            return Err(Error::Expired);
        }
        // `created_ip_hash` is keyed by the session's own key.
        let ip_now = if std::ptr::eq(seal_key, &self.key) {
            ip_hash.clone()
        } else {
            client.ip.map(|ip| ip_hash_with(seal_key, ip))
        };
        let score = risk_score(&RiskSignals {
            ip_changed: matches!(
                (&session.created_ip_hash, &ip_now),
                (Some(then), Some(current)) if then != current
            ),
            user_agent_changed: matches!(
                (&session.user_agent, &client.user_agent),
                (Some(then), Some(current)) if then != current
            ),
            recent_failures,
        });
        if score >= self.policy.risk_revoke_at {
            revoke_audited(
                db,
                &session,
                SessionEvent::RiskRevoked,
                REASON_RISK,
                Some(score),
                ip_hash,
                now,
            )
            .await?;
            return Err(Error::Revoked);
        }
        let due = now - session.last_activity_at >= self.policy.recording_interval();
        if !due && score == session.risk_score {
            return Ok(session);
        }
        let updated = sessions::Entity::update_many()
            .col_expr(sessions::Column::LastActivityAt, now.into())
            .col_expr(sessions::Column::LastValidatedAt, now.into())
            .col_expr(sessions::Column::RiskScore, score.into())
            .filter(sessions::Column::Id.eq(session.id))
            .filter(sessions::Column::IsRevoked.eq(false))
            .exec(db)
            .await?;
        if updated.rows_affected == 0 {
            // Revoked (or deleted) between the read and the write.
            return Err(Error::Revoked);
        }
        session.last_activity_at = now;
        session.last_validated_at = Some(now);
        session.risk_score = score;
        Ok(session)
    }

    /// The one validation query: the session by token hash, the status of
    /// its key, and its user's failed logins since the session began and
    /// within the failure window.
    async fn fetch<C: ConnectionTrait>(
        &self,
        db: &C,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Fetched>, Error> {
        use failed_login_attempts::{Column as F, Entity as Failures};
        use sea_orm::sea_query::ExprTrait;
        use sessions::{Column as S, Entity as Sess};
        let failures = Query::select()
            .expr(Func::count(Expr::col((Failures, F::Id))))
            .from(Failures)
            .and_where(Expr::col((Failures, F::UserId)).equals((Sess, S::UserId)))
            .and_where(Expr::col((Failures, F::CreatedAt)).gt(Expr::col((Sess, S::CreatedAt))))
            .and_where(Expr::col((Failures, F::CreatedAt)).gt(now - self.policy.failure_window))
            .and_where(Expr::col((Failures, F::CreatedAt)).lte(now))
            .to_owned();
        let mut stmt = Sess::find()
            .filter(S::TokenHash.eq(token_hash))
            .into_query();
        stmt.expr_as(failures, "recent_failures")
            .expr_as(
                Expr::col((encryption_keys::Entity, encryption_keys::Column::Status)),
                "key_status",
            )
            .left_join(
                encryption_keys::Entity,
                Expr::col((encryption_keys::Entity, encryption_keys::Column::Id))
                    .equals((Sess, S::EncryptionKeyId)),
            );
        let Some(row) = db.query_one(&stmt).await? else {
            return Ok(None);
        };
        let session = sessions::Model::from_query_result(&row, "")?;
        let key_status: Option<KeyStatus> = row.try_get("", "key_status")?;
        let recent_failures: i64 = row.try_get("", "recent_failures")?;
        Ok(Some(Fetched {
            session,
            key_status,
            recent_failures: u64::try_from(recent_failures).unwrap_or(0),
        }))
    }

    /// Revokes one session and audits it (`revoked`). Returns whether this
    /// call revoked it (false when it was revoked already).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty, overlong or control-character
    /// reason; [`Error::NotFound`] for an unknown session; a database error.
    pub async fn revoke<C>(
        &self,
        db: &C,
        session_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        check_reason(reason)?;
        let now = now.trunc_subsecs(6);
        let session = sessions::Entity::find_by_id(session_id)
            .one(db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("session {session_id}")))?;
        revoke_audited(db, &session, SessionEvent::Revoked, reason, None, None, now).await
    }

    /// Ends the session of a presented token (reason `logout`).
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for a malformed or unknown token; a database error.
    pub async fn logout<C>(&self, db: &C, token: &str, now: DateTime<Utc>) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let token = SessionToken::parse(token)?;
        let session = sessions::Entity::find_by_token_hash(token.hash())
            .one(db)
            .await?
            .ok_or(Error::InvalidCredentials)?;
        revoke_audited(
            db,
            &session,
            SessionEvent::Revoked,
            REASON_LOGOUT,
            None,
            None,
            now.trunc_subsecs(6),
        )
        .await?;
        Ok(())
    }

    /// Revokes every live session of `user_id` (except `keep`, the caller's
    /// own session when it signs out elsewhere), one audit row each, in one
    /// transaction. Sessions created while it runs are not affected. Returns
    /// how many were revoked.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed reason; a database error.
    pub async fn revoke_all<C>(
        &self,
        db: &C,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        revoke_sessions(db, user_id, keep, reason, now).await
    }

    /// Deletes expired, revoked, unsealed and risky sessions in batches,
    /// one transaction each, with one audit row per deleted session written
    /// in the same transaction. Valid sessions stay.
    ///
    /// # Errors
    /// A database error (batches committed before it stay done);
    /// [`Error::Conflict`] when concurrent changes keep invalidating batches.
    pub async fn cleanup<C>(&self, db: &C, now: DateTime<Utc>) -> Result<CleanupReport, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let now = now.trunc_subsecs(6);
        let mut report = CleanupReport::default();
        let mut retries = 0;
        loop {
            let txn = db.begin().await?;
            // No ORDER BY: it would make the database walk the primary key
            // instead of reading each stale reason's index.
            let batch = sessions::Entity::find()
                .filter(self.stale_condition(now))
                .limit(self.policy.cleanup_batch)
                .all(&txn)
                .await?;
            if batch.is_empty() {
                txn.commit().await?;
                return Ok(report);
            }
            let mut counts = CleanupReport::default();
            let rows: Vec<session_audit_log::ActiveModel> = batch
                .iter()
                .map(|s| {
                    let (event, reason) = match self.stale(s, now) {
                        Stale::Revoked(reason) => {
                            counts.revoked += 1;
                            (SessionEvent::CleanedUp, format!("revoked: {reason}"))
                        }
                        Stale::Unsealed => {
                            counts.revoked += 1;
                            (SessionEvent::CleanedUp, REASON_UNSEALED.to_owned())
                        }
                        Stale::AbsoluteTimeout => {
                            counts.expired += 1;
                            (SessionEvent::Expired, "absolute_timeout".to_owned())
                        }
                        Stale::IdleTimeout => {
                            counts.expired += 1;
                            (SessionEvent::Expired, "idle_timeout".to_owned())
                        }
                        Stale::Risky => {
                            counts.risky += 1;
                            (
                                SessionEvent::RiskRevoked,
                                format!(
                                    "risk score {} at or above {}",
                                    s.risk_score, self.policy.risk_revoke_at
                                ),
                            )
                        }
                    };
                    audit_row(s, event, Some(&reason), Some(s.risk_score), None, now)
                })
                .collect();
            session_audit_log::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            let ids: Vec<Uuid> = batch.iter().map(|s| s.id).collect();
            let deleted = sessions::Entity::delete_many()
                .filter(sessions::Column::Id.is_in(ids))
                .filter(self.stale_condition(now))
                .exec(&txn)
                .await?;
            if deleted.rows_affected != batch.len() as u64 {
                // Another cleanup or a validation changed rows of this batch:
                // undo its audit rows and look again.
                txn.rollback().await?;
                retries += 1;
                if retries > MAX_CLEANUP_RETRIES {
                    return Err(Error::conflict(
                        "session",
                        "session cleanup keeps racing concurrent changes; run it again",
                    ));
                }
                continue;
            }
            txn.commit().await?;
            retries = 0;
            report.expired += counts.expired;
            report.revoked += counts.revoked;
            report.risky += counts.risky;
            report.batches += 1;
            if (batch.len() as u64) < self.policy.cleanup_batch {
                return Ok(report);
            }
        }
    }

    /// Sessions cleanup removes, as SQL; must agree with [`Self::stale`].
    fn stale_condition(&self, now: DateTime<Utc>) -> Condition {
        Condition::any()
            .add(sessions::Column::IsRevoked.eq(true))
            .add(sessions::Column::SecurityVersion.eq(LEGACY_SECURITY_VERSION))
            .add(sessions::Column::ExpiresAt.lte(now))
            .add(sessions::Column::LastActivityAt.lte(now - self.policy.idle_timeout))
            // Written as seed 004's partial risk_score index is (not revoked),
            // so every branch has an index and cleanup reads only stale rows.
            .add(
                Condition::all()
                    .add(sessions::Column::IsRevoked.eq(false))
                    .add(sessions::Column::RiskScore.gte(self.policy.risk_revoke_at)),
            )
    }

    /// Why cleanup removes `s` (first matching reason).
    fn stale(&self, s: &sessions::Model, now: DateTime<Utc>) -> Stale {
        if s.is_revoked {
            Stale::Revoked(s.revoked_reason.clone().unwrap_or_else(|| "unknown".into()))
        } else if s.security_version == LEGACY_SECURITY_VERSION {
            Stale::Unsealed
        } else if s.expires_at <= now {
            Stale::AbsoluteTimeout
        } else if s.last_activity_at <= now - self.policy.idle_timeout {
            Stale::IdleTimeout
        } else {
            Stale::Risky
        }
    }
}

/// Sessions [`revoke_sessions`] revokes per statement.
const REVOKE_BATCH: usize = 1000;

/// The one way a user's sessions are revoked (operator, lock, deletion,
/// password change or reset, MFA change, role revocation, sign-out
/// everywhere): every live session of `user_id` but `keep` is marked revoked
/// with its seal cleared, so that flipping `is_revoked` back in the database
/// makes it fail as tampered, and each gets a `revoked` row in
/// `session_audit_log` with `reason`, in one transaction (a savepoint inside
/// the caller's). Sessions created while it runs are not affected. Returns
/// how many were revoked.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty, overlong or control-character
/// reason; a database error (nothing is revoked then).
pub async fn revoke_sessions<C>(
    db: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    check_reason(reason)?;
    let now = now.trunc_subsecs(6);
    let revoked = retry(db, "sessions.revoke_sessions", || async {
        let txn = db.begin().await?;
        let mut live = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::IsRevoked.eq(false));
        if let Some(keep) = keep {
            live = live.filter(sessions::Column::Id.ne(keep));
        }
        let live = live.all(&txn).await?;
        let mut revoked = 0;
        for chunk in live.chunks(REVOKE_BATCH) {
            let ids: Vec<Uuid> = chunk.iter().map(|s| s.id).collect();
            let result = revoke_update(now, reason)
                .filter(sessions::Column::Id.is_in(ids))
                .filter(sessions::Column::IsRevoked.eq(false))
                .exec(&txn)
                .await?;
            revoked += result.rows_affected;
            session_audit_log::Entity::insert_many(
                chunk
                    .iter()
                    .map(|s| audit_row(s, SessionEvent::Revoked, Some(reason), None, None, now)),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(revoked)
    })
    .await?;
    Ok(revoked)
}

/// Keyed hash of a normalized IP address under `key`.
fn ip_hash_with(key: &HmacKey, ip: IpAddr) -> String {
    crypto::hmac_sha256_hex(key.expose(), &[IP_LABEL, ip.to_string().as_bytes()])
}

/// The seal of `s` under `key` (see the module docs for the exact input).
fn seal_with(key: &HmacKey, s: &sessions::Model) -> String {
    fn opt(v: Option<&[u8]>) -> Vec<u8> {
        v.map_or_else(|| vec![0], |v| [&[1][..], v].concat())
    }
    let user_agent = opt(s.user_agent.as_deref().map(str::as_bytes));
    let ip_hash = opt(s.created_ip_hash.as_deref().map(str::as_bytes));
    let key_id = opt(s.encryption_key_id.as_ref().map(|k| &k.as_bytes()[..]));
    crypto::hmac_sha256_hex(
        key.expose(),
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

/// `UPDATE sessions SET` revoked now for `reason`, the seal cleared.
fn revoke_update(now: DateTime<Utc>, reason: &str) -> sea_orm::UpdateMany<sessions::Entity> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::IsRevoked, true.into())
        .col_expr(sessions::Column::RevokedAt, now.into())
        .col_expr(sessions::Column::RevokedReason, reason.into())
        .col_expr(sessions::Column::SecurityHash, Expr::null())
}

/// Marks one session revoked unless it is already; returns whether it did.
async fn mark_revoked<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let result = revoke_update(now, reason)
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::IsRevoked.eq(false))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes `session` and writes `event` with `reason`, in one transaction;
/// writes nothing when the session was revoked already.
async fn revoke_audited<C>(
    db: &C,
    session: &sessions::Model,
    event: SessionEvent,
    reason: &str,
    risk_score: Option<i32>,
    ip_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let revoked = retry(db, "sessions.revoke_audited", || async {
        let txn = db.begin().await?;
        let revoked = mark_revoked(&txn, session.id, reason, now).await?;
        if revoked {
            audit(
                &txn,
                session,
                event,
                Some(reason),
                risk_score,
                ip_hash.clone(),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(revoked)
    })
    .await?;
    Ok(revoked)
}

fn audit_row(
    session: &sessions::Model,
    event: SessionEvent,
    reason: Option<&str>,
    risk_score: Option<i32>,
    ip_hash: Option<String>,
    now: DateTime<Utc>,
) -> session_audit_log::ActiveModel {
    session_audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(Some(session.id)),
        user_id: Set(Some(session.user_id)),
        event: Set(event),
        reason: Set(reason.map(str::to_owned)),
        risk_score: Set(risk_score),
        ip_hash: Set(ip_hash),
        details: Set(Some(serde_json::json!({ "session_id": session.id }))),
        created_at: Set(now),
    }
}

async fn audit<C: ConnectionTrait>(
    db: &C,
    session: &sessions::Model,
    event: SessionEvent,
    reason: Option<&str>,
    risk_score: Option<i32>,
    ip_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    session_audit_log::Entity::insert(audit_row(session, event, reason, risk_score, ip_hash, now))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_are_256_bits_and_parse_back() {
        let token = SessionToken::generate();
        assert_eq!(token.expose().len(), TOKEN_LEN);
        let again = SessionToken::parse(token.expose()).unwrap();
        assert_eq!(again.hash(), token.hash());
        assert_eq!(token.hash().len(), 64);
        assert_ne!(token.expose(), SessionToken::generate().expose());
    }

    #[test]
    fn debug_shows_no_token() {
        let token = SessionToken::generate();
        let debug = format!("{token:?}");
        assert_eq!(debug, "SessionToken(redacted)");
        assert!(!debug.contains(token.expose()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = SessionToken::generate();
        let text = good.expose();
        for bad in [
            "",
            &text[1..],
            &format!("{text}A"),
            &format!("{}+", &text[..42]),
            &format!("{}=", &text[..42]),
            "' OR 1=1 --",
            &"A".repeat(10_000),
        ] {
            assert!(
                matches!(SessionToken::parse(bad), Err(Error::InvalidCredentials)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn risk_weights_add_up_and_cap() {
        let none = RiskSignals::default();
        assert_eq!(risk_score(&none), 0);
        let ip = RiskSignals {
            ip_changed: true,
            ..none
        };
        assert_eq!(risk_score(&ip), RISK_IP_CHANGED);
        let both = RiskSignals {
            user_agent_changed: true,
            ..ip
        };
        assert_eq!(risk_score(&both), 70);
        let many = RiskSignals {
            recent_failures: 1_000,
            ..both
        };
        assert_eq!(risk_score(&many), RISK_MAX);
        assert_eq!(
            risk_score(&RiskSignals {
                recent_failures: u64::MAX,
                ..none
            }),
            RISK_RECENT_FAILURES_MAX
        );
    }

    #[test]
    fn default_policy_is_consistent() {
        SessionPolicy::default().validate().unwrap();
        let bad = SessionPolicy {
            idle_timeout: Duration::hours(13),
            ..SessionPolicy::default()
        };
        assert!(bad.validate().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,100}") {
            let _ = SessionToken::parse(&text);
        }

        #[test]
        fn generated_tokens_round_trip(_seed in 0u8..32) {
            let token = SessionToken::generate();
            let parsed = SessionToken::parse(token.expose()).unwrap();
            prop_assert_eq!(parsed.expose(), token.expose());
        }
    }
}
