//! Multi-factor authentication: TOTP enrollment, confirmation and login
//! verification with a replay guard, backup codes and trusted devices.
//!
//! Flow: [`Mfa::enroll`] stores an encrypted secret in an unverified,
//! disabled configuration and returns the secret and its otpauth URI once;
//! [`Mfa::confirm`] with a first valid code enables it and issues ten backup
//! codes; at login [`Mfa::verify_totp`] or [`Mfa::verify_backup_code`] checks
//! the second factor, and [`devices`] lets a device skip it for a while.
//! Every code check takes a throttling slot first and a failed one is
//! recorded per factor ([`crate::lockout`]); a login's second factor is
//! checked and consumed by [`crate::login`], inside the login's transaction.
//! After `DATA_ENCRYPTION_KEY` is rotated (`gatehouse keys rotate data`),
//! secrets under the previous key keep opening through the key ring
//! (`DATA_ENCRYPTION_KEY_PREVIOUS`) and [`Mfa::reencrypt_secrets`] moves them
//! to the new key; backup codes keep working under the HMAC key they were
//! digested with while it is in `HMAC_KEY_PREVIOUS`.

pub mod backup;
pub mod cipher;
pub mod devices;
pub mod totp;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_entity::mfa_configurations::{self, ActiveModel, Column, Entity};
use gatehouse_entity::sea_orm_active_enums::{AttemptKind, KeyType, MfaMethod};
use gatehouse_entity::{mfa_backup_codes, mfa_trusted_devices, users};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionSession, TransactionTrait, sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub use backup::BackupCodes;
pub use devices::DeviceToken;
pub use totp::TotpSecret;

pub use crate::client::ClientInfo;
use crate::config::{Config, DataKey, HmacKey};
use crate::db::retry;
use crate::lockout::{self, Failure, LockoutPolicy};
use crate::{Error, keys};

/// Checks free text: not empty, at most `max_chars` characters, no control
/// characters (NUL included).
pub(crate) fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidInput { field, reason };
    if value.is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(format!("longer than {max_chars} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(())
}

/// Revocation reason of the sessions an MFA change ends.
pub const REASON_MFA_CHANGED: &str = "mfa changed";

/// Configurations [`Mfa::reencrypt_secrets`] reads per query.
pub const REENCRYPT_BATCH: u64 = 500;

/// What [`Mfa::reencrypt_secrets`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reencrypted {
    /// Secrets now stored under the configured data key.
    pub reencrypted: u64,
    /// Users whose secret the old key could not open (left unchanged).
    pub undecryptable: Vec<Uuid>,
}

/// What [`Mfa::enroll`] returns once: the secret and the URI to show (as
/// text or QR code). `Debug` prints neither.
pub struct Enrollment {
    /// The `mfa_configurations` row, unverified until [`Mfa::confirm`].
    pub config_id: Uuid,
    secret: TotpSecret,
    otpauth_uri: SecretString,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("config_id", &self.config_id)
            .field("secret", &"redacted")
            .field("otpauth_uri", &"redacted")
            .finish()
    }
}

impl Enrollment {
    /// The TOTP secret, for showing as text to type into an authenticator app.
    pub fn secret(&self) -> &TotpSecret {
        &self.secret
    }

    /// The `otpauth://` URI; it contains the secret.
    pub fn otpauth_uri(&self) -> &str {
        self.otpauth_uri.expose_secret()
    }
}

/// The MFA service: the keys it needs (current and previous) and the
/// lockout policy for failed codes. Cheap to clone and `'static`: keep one
/// in the application's state.
#[derive(Clone, Debug)]
pub struct Mfa {
    data_key: DataKey,
    hmac_key: HmacKey,
    data_previous: Arc<[DataKey]>,
    hmac_previous: Arc<[HmacKey]>,
    lockout: LockoutPolicy,
}

impl Mfa {
    /// The service with the configured keys, their ring and the default
    /// lockout policy.
    pub fn new(config: &Config) -> Self {
        Self::with_keys(&config.data_key, &config.hmac_key)
            .with_previous_keys(&config.data_previous, &config.hmac_previous)
    }

    /// The service with these keys and no ring.
    pub fn with_keys(data_key: &DataKey, hmac_key: &HmacKey) -> Self {
        Self {
            data_key: data_key.clone(),
            hmac_key: hmac_key.clone(),
            data_previous: Arc::new([]),
            hmac_previous: Arc::new([]),
            lockout: LockoutPolicy::default(),
        }
    }

    /// Adds the key ring: previous data keys (TOTP secrets encrypted under
    /// them still open) and previous HMAC keys (backup codes digested under
    /// them still count).
    #[must_use]
    pub fn with_previous_keys(
        mut self,
        data_previous: &[DataKey],
        hmac_previous: &[HmacKey],
    ) -> Self {
        self.data_previous = data_previous.into();
        self.hmac_previous = hmac_previous.into();
        self
    }

    /// Throttles code attempts with `policy` (default: [`LockoutPolicy::default`]).
    #[must_use]
    pub fn with_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.lockout = policy;
        self
    }

    /// Starts enrollment: a new secret, encrypted under the data key (whose
    /// record it notes), in an unverified and disabled configuration that
    /// replaces any earlier unconfirmed one. The secret is returned once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad issuer or account name;
    /// [`Error::NotFound`] for an unknown user; [`Error::Conflict`] when MFA
    /// is already confirmed for the user (disable it first);
    /// [`Error::Config`] when the configured data key is not the active
    /// recorded one.
    pub async fn enroll<C>(
        &self,
        db: &C,
        user_id: Uuid,
        issuer: &str,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<Enrollment, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let secret = TotpSecret::generate();
        let uri = totp::otpauth_uri(issuer, account, &secret)?;
        let key = self.data_record(db).await?;
        let config = retry(db, "mfa.enroll", || async {
            let txn = db.begin().await?;
            load_user(&txn, user_id).await?;
            Entity::delete_many()
                .filter(Column::UserId.eq(user_id))
                .filter(Column::IsVerified.eq(false))
                .exec(&txn)
                .await?;
            // A confirmed configuration is still there: the unique user_id refuses the insert.
            let config = ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(user_id),
                method: Set(MfaMethod::Totp),
                secret_encrypted: Set(cipher::seal(&self.data_key, user_id, &secret)),
                encryption_key_id: Set(Some(key.id)),
                is_enabled: Set(false),
                is_verified: Set(false),
                verified_at: Set(None),
                last_used_step: Set(None),
                last_used_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict { .. } => Error::conflict(
                    "mfa",
                    "MFA is already enabled for this user; disable it first",
                ),
                other => other,
            })?;
            txn.commit().await?;
            Ok(config)
        })
        .await?;
        Ok(Enrollment {
            config_id: config.id,
            secret,
            otpauth_uri: SecretString::from(uri),
        })
    }

    /// Confirms enrollment with a first valid code: the configuration becomes
    /// verified and enabled, the code's step is used up, ten backup codes
    /// are issued (returned once), and every other session of the user
    /// (all but `keep`, the session making the change) is revoked, in one
    /// transaction: a session an attacker opened before MFA does not outlive it. A wrong code here is not counted towards
    /// lockout: the user holds the secret already, so guessing gains nothing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed code; [`Error::NotFound`]
    /// without an enrollment; [`Error::Conflict`] when already confirmed;
    /// [`Error::InvalidCredentials`] for a wrong code; [`Error::Replayed`]
    /// for a used step; [`Error::Integrity`] when the secret does not decrypt.
    pub async fn confirm<C>(
        &self,
        db: &C,
        user_id: Uuid,
        code: &str,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<BackupCodes, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let code = totp::parse_code(code)?;
        let codes = retry(db, "mfa.confirm", || async {
            let txn = db.begin().await?;
            // The account's row first: a login completing now queues behind this
            // change (and sees MFA changed), and the sessions read below include
            // every login that completed before it.
            touch_user(&txn, user_id, now).await?;
            let config = Entity::find()
                .filter(Column::UserId.eq(user_id))
                .one(&txn)
                .await?
                .ok_or_else(|| Error::NotFound(format!("MFA enrollment of user {user_id}")))?;
            if config.is_verified {
                return Err(Error::conflict("mfa", "MFA is already confirmed"));
            }
            let secret =
                cipher::open_row(&txn, &self.data_key, &self.data_previous, &config).await?;
            let step = match totp::match_step(&secret, code, now, config.last_used_step) {
                totp::StepMatch::Fresh(step) => step,
                totp::StepMatch::Replayed => return Err(Error::Replayed),
                totp::StepMatch::NoMatch => return Err(Error::InvalidCredentials),
            };
            let updated = Entity::update_many()
                .col_expr(Column::IsVerified, Expr::value(true))
                .col_expr(Column::IsEnabled, Expr::value(true))
                .col_expr(Column::VerifiedAt, Expr::value(now))
                .col_expr(Column::LastUsedStep, Expr::value(step))
                .col_expr(Column::LastUsedAt, Expr::value(now))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(config.id))
                .filter(Column::IsVerified.eq(false))
                .filter(step_is_fresh(step))
                .exec(&txn)
                .await?;
            if updated.rows_affected != 1 {
                return Err(Error::Replayed);
            }
            let codes = self.issue_backup_codes(&txn, user_id, now).await?;
            crate::sessions::revoke_sessions(&txn, user_id, keep, REASON_MFA_CHANGED, now).await?;
            txn.commit().await?;
            Ok(codes)
        })
        .await?;
        Ok(codes)
    }

    /// Checks at start that the configured data and HMAC keys are the
    /// active recorded ones (recording each as version 1 when none of its
    /// type is recorded yet; never rotating).
    ///
    /// # Errors
    /// [`Error::Config`] naming `DATA_ENCRYPTION_KEY` or `HMAC_KEY`; a
    /// database error.
    pub async fn ensure_keys<C>(&self, db: &C) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        self.data_record(db).await?;
        keys::ensure_configured(
            db,
            KeyType::Session,
            &self.hmac_key.fingerprint(),
            keys::HMAC_ALGORITHM,
        )
        .await?;
        Ok(())
    }

    /// The record of the configured data key (recorded as version 1 when
    /// no data key is recorded yet; never rotated in).
    async fn data_record<C>(
        &self,
        db: &C,
    ) -> Result<gatehouse_entity::encryption_keys::Model, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        keys::ensure_configured(
            db,
            KeyType::Data,
            &self.data_key.fingerprint(),
            cipher::ALGORITHM,
        )
        .await
    }

    /// Ten new backup codes digested under the configured HMAC key and
    /// recorded with its record, replacing the unused ones.
    async fn issue_backup_codes<C>(
        &self,
        db: &C,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<BackupCodes, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let record = keys::ensure_configured(
            db,
            KeyType::Session,
            &self.hmac_key.fingerprint(),
            keys::HMAC_ALGORITHM,
        )
        .await?;
        backup::replace_unused(db, &self.hmac_key, record.id, user_id, now).await
    }

    /// Turns MFA off for `user_id`: removes the configuration (and with it
    /// the encrypted secret), the backup codes and the trusted devices, in
    /// one transaction, and revokes every other session of the user (all but
    /// `keep`). Re-authenticating the user first is the caller's duty.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the user has no MFA configuration.
    pub async fn disable<C>(
        &self,
        db: &C,
        user_id: Uuid,
        keep: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        retry(db, "mfa.disable", || async {
            let txn = db.begin().await?;
            // The account's row first: a login completing now queues behind this
            // change (and sees MFA changed), and the sessions read below include
            // every login that completed before it.
            touch_user(&txn, user_id, now).await?;
            mfa_backup_codes::Entity::delete_many()
                .filter(mfa_backup_codes::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
            mfa_trusted_devices::Entity::delete_many()
                .filter(mfa_trusted_devices::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
            let deleted = Entity::delete_many()
                .filter(Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
            if deleted.rows_affected == 0 {
                return Err(Error::NotFound(format!(
                    "MFA configuration of user {user_id}"
                )));
            }
            crate::sessions::revoke_sessions(&txn, user_id, keep, REASON_MFA_CHANGED, now).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Whether `user_id` must pass a second factor at login.
    ///
    /// # Errors
    /// A database error.
    pub async fn is_enabled<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: Uuid,
    ) -> Result<bool, Error> {
        match enabled_config(db, user_id).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Checks a TOTP code outside a login (a step-up check before a
    /// sensitive action). Like a login's second factor, the check first takes
    /// a slot for the user and the client's source (`lockout::claim`), so
    /// guesses are throttled and counted; a right code gives the slot back. A
    /// code is accepted for the current step or one either side, and only for
    /// a step later than any accepted before; the step is recorded with a
    /// conditional `UPDATE`, so of two concurrent verifications of one code
    /// exactly one succeeds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed code or client info (nothing
    /// recorded); [`Error::NotFound`] for an unknown user or one without
    /// enabled MFA; [`Error::RateLimited`] when the source must wait;
    /// [`Error::InvalidCredentials`] for a wrong code or a locked account;
    /// [`Error::Replayed`] for a code of a used step; [`Error::Integrity`]
    /// when the stored secret does not decrypt under the configured key.
    pub async fn verify_totp<C>(
        &self,
        db: &C,
        user_id: Uuid,
        code: &str,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let code = totp::parse_code(code)?;
        let config = enabled_config(db, user_id).await?;
        let (user, attempt) = self.claim(db, user_id, client, now).await?;
        let usable = attempt.account_counted && !lockout::is_locked(&user, now);
        let found = match self.match_code(db, &config, code, now).await {
            Ok(found) => found,
            Err(err) => {
                // A secret that does not open says nothing about the code.
                lockout::release(db, &attempt).await?;
                return Err(err);
            }
        };
        let refused = match found {
            totp::StepMatch::Fresh(step) if usable => {
                if Self::use_step(db, config.id, step, now).await? {
                    lockout::release(db, &attempt).await?;
                    return Ok(());
                }
                // Another check used this step first: a replay.
                lockout::release(db, &attempt).await?;
                return Err(Error::Replayed);
            }
            // A used code is no guess: the slot goes back, nothing is recorded.
            totp::StepMatch::Replayed if usable => {
                lockout::release(db, &attempt).await?;
                return Err(Error::Replayed);
            }
            _ if !usable => ("account locked", Error::InvalidCredentials),
            _ => ("wrong one-time code", Error::InvalidCredentials),
        };
        Err(self
            .fail(db, &user, AttemptKind::Otp, client, refused, now)
            .await?)
    }

    /// Checks a backup code outside a login and uses it up, throttled and
    /// counted like [`Self::verify_totp`]: one conditional `UPDATE` marks it
    /// used only if it was unused. A second use of a code gives
    /// [`Error::Replayed`] (the user holds the code, so saying it is spent
    /// tells them what to do and an attacker nothing new).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for text that cannot be a code or bad client
    /// info; [`Error::NotFound`] for an unknown user or one without enabled
    /// MFA; [`Error::RateLimited`]; [`Error::InvalidCredentials`];
    /// [`Error::Replayed`].
    pub async fn verify_backup_code<C>(
        &self,
        db: &C,
        user_id: Uuid,
        code: &str,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let normalized = backup::normalize(code)?;
        enabled_config(db, user_id).await?;
        let (user, attempt) = self.claim(db, user_id, client, now).await?;
        let refused = if attempt.account_counted && !lockout::is_locked(&user, now) {
            match self.use_backup_code(db, user_id, &normalized, now).await? {
                backup::Consumed::Now => {
                    lockout::release(db, &attempt).await?;
                    return Ok(());
                }
                backup::Consumed::Before => {
                    lockout::release(db, &attempt).await?;
                    return Err(Error::Replayed);
                }
                backup::Consumed::Unknown => ("wrong backup code", Error::InvalidCredentials),
            }
        } else {
            ("account locked", Error::InvalidCredentials)
        };
        Err(self
            .fail(db, &user, AttemptKind::BackupCode, client, refused, now)
            .await?)
    }

    /// How `code` compares with the configuration's secret around `now`
    /// (opened with the configured data key, or the ring key it was sealed under).
    ///
    /// # Errors
    /// [`Error::Integrity`] when the stored secret does not decrypt.
    pub(crate) async fn match_code<C: ConnectionTrait>(
        &self,
        db: &C,
        config: &mfa_configurations::Model,
        code: u32,
        now: DateTime<Utc>,
    ) -> Result<totp::StepMatch, Error> {
        let secret = cipher::open_row(db, &self.data_key, &self.data_previous, config).await?;
        Ok(totp::match_step(&secret, code, now, config.last_used_step))
    }

    /// Records `step` as the configuration's last used one, if it is later
    /// than any used before; whether it was.
    pub(crate) async fn use_step<C: ConnectionTrait>(
        db: &C,
        config_id: Uuid,
        step: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let updated = Entity::update_many()
            .col_expr(Column::LastUsedStep, Expr::value(step))
            .col_expr(Column::LastUsedAt, Expr::value(now))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(config_id))
            .filter(step_is_fresh(step))
            .exec(db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Uses up the normalized backup code of `user_id`, if it is unused.
    pub(crate) async fn use_backup_code<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: Uuid,
        normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<backup::Consumed, Error> {
        backup::consume(
            db,
            &self.hmac_key,
            &self.hmac_previous,
            user_id,
            normalized,
            now,
        )
        .await
    }

    /// Takes a slot for a standalone code check of `user_id` from `client`.
    async fn claim<C: ConnectionTrait>(
        &self,
        db: &C,
        user_id: Uuid,
        client: ClientInfo<'_>,
        now: DateTime<Utc>,
    ) -> Result<(users::Model, lockout::Attempt), Error> {
        let ip = client.check()?.ip;
        let user = load_user(db, user_id).await?;
        let source = lockout::source_key(ip);
        let attempt =
            lockout::claim(db, &self.lockout, user.id, user.id, &source, None, now).await?;
        Ok((user, attempt))
    }

    /// Replaces the user's unused backup codes with ten new ones, atomically;
    /// returns them once.
    ///
    /// # Errors
    /// [`Error::NotFound`] when MFA is not enabled for the user.
    pub async fn regenerate_backup_codes<C>(
        &self,
        db: &C,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<BackupCodes, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let codes = retry(db, "mfa.regenerate_backup_codes", || async {
            let txn = db.begin().await?;
            enabled_config(&txn, user_id).await?;
            let codes = self.issue_backup_codes(&txn, user_id, now).await?;
            txn.commit().await?;
            Ok(codes)
        })
        .await?;
        Ok(codes)
    }

    /// Re-encrypts, under this service's data key, every TOTP secret not yet
    /// recorded under it, opening each with the configured key or the ring
    /// key its `encryption_key_id` names (see [`cipher::open_row`]): the step
    /// after `gatehouse keys rotate data`. Each row is rewritten on its own
    /// with a conditional `UPDATE`, in batches of [`REENCRYPT_BATCH`];
    /// secrets no key opens are left as they are and reported, so a run with
    /// another ring can take them.
    ///
    /// # Errors
    /// [`Error::Config`] when the configured data key is not the active
    /// recorded one; a database error (rows rewritten before it stay
    /// rewritten).
    pub async fn reencrypt_secrets<C>(
        &self,
        db: &C,
        now: DateTime<Utc>,
    ) -> Result<Reencrypted, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let key = self.data_record(db).await?;
        let mut report = Reencrypted::default();
        let mut after: Option<Uuid> = None;
        loop {
            let mut batch = Entity::find()
                .filter(
                    Condition::any()
                        .add(Column::EncryptionKeyId.ne(key.id))
                        .add(Column::EncryptionKeyId.is_null()),
                )
                .order_by_asc(Column::Id)
                .limit(REENCRYPT_BATCH);
            if let Some(after) = after {
                batch = batch.filter(Column::Id.gt(after));
            }
            let rows = batch.all(db).await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.id);
            for row in rows {
                let Ok(secret) =
                    cipher::open_row(db, &self.data_key, &self.data_previous, &row).await
                else {
                    report.undecryptable.push(row.user_id);
                    continue;
                };
                let updated = Entity::update_many()
                    .col_expr(
                        Column::SecretEncrypted,
                        Expr::value(cipher::seal(&self.data_key, row.user_id, &secret)),
                    )
                    .col_expr(Column::EncryptionKeyId, Expr::value(key.id))
                    .col_expr(Column::UpdatedAt, Expr::value(now))
                    .filter(Column::Id.eq(row.id))
                    .filter(Column::SecretEncrypted.eq(row.secret_encrypted))
                    .exec(db)
                    .await?;
                report.reencrypted += updated.rows_affected;
            }
        }
        Ok(report)
    }

    /// Records a failed second factor in one transaction and gives back the
    /// error the caller returns.
    async fn fail<C>(
        &self,
        db: &C,
        user: &users::Model,
        kind: AttemptKind,
        client: ClientInfo<'_>,
        (reason, answer): (&str, Error),
        now: DateTime<Utc>,
    ) -> Result<Error, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let ip = client.normalized_ip();
        let failure = Failure {
            user_id: Some(user.id),
            identifier: &user.email,
            kind,
            ip_address: ip.as_deref(),
            user_agent: client.user_agent,
            reason,
        };
        retry(db, "mfa.fail", || async {
            let txn = db.begin().await?;
            lockout::record_failure(&txn, &self.lockout, failure, now).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        Ok(answer)
    }
}

/// `UPDATE users SET updated_at` of `user_id`: takes the account's row lock.
async fn touch_user<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// `last_used_step IS NULL OR last_used_step < step`: the replay guard.
fn step_is_fresh(step: i64) -> Condition {
    Condition::any()
        .add(Column::LastUsedStep.is_null())
        .add(Column::LastUsedStep.lt(step))
}

async fn load_user<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<users::Model, Error> {
    users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_id}")))
}

/// The user's confirmed and enabled configuration.
async fn enabled_config<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<mfa_configurations::Model, Error> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::IsEnabled.eq(true))
        .filter(Column::IsVerified.eq(true))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("enabled MFA of user {user_id}")))
}
