//! Accounts (`users`): registration, password login with lockout, password
//! changes and single-use resets, administrative lock, listing and soft deletion.

mod hasher;
mod listing;
pub mod validate;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE64URL_NOPAD;
use gatehouse_entity::sea_orm_active_enums::AttemptKind;
use gatehouse_entity::{mfa_configurations, password_history, user_roles, users};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionSession, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub use hasher::{
    Argon2Costs, Argon2idHasher, OWASP_MIN_M_COST, OWASP_MIN_P_COST, OWASP_MIN_T_COST,
    PasswordHasher,
};
pub use listing::{LIST_OFFSET_MAX, list_users};
pub use validate::Identifier;

use crate::client::ClientInfo;
use crate::db::retry;
use crate::lockout::{self, Failure, LockoutPolicy};
use crate::{Error, crypto};

/// How many former passwords (besides the current one) a new password is checked against and kept.
pub const PASSWORD_HISTORY_DEPTH: u64 = 12;
/// Default lifetime of a password reset token.
pub const DEFAULT_RESET_TOKEN_TTL: Duration = Duration::minutes(30);
/// Random bytes in a reset token (256 bits).
const RESET_TOKEN_BYTES: usize = 32;
/// Length of a reset token: 32 random bytes (256 bits) in base64url without padding.
pub const RESET_TOKEN_CHARS: usize = 43;
/// Most accounts [`list_users`] returns at once.
pub const LIST_LIMIT_MAX: u64 = 10_000;

/// An account as the library hands it out: everything but the password hash
/// and the reset token hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's id (`users.id`).
    pub id: Uuid,
    /// The email, normalized (NFKC, lower case) as stored.
    pub email: String,
    /// The username, normalized as stored.
    pub username: String,
    /// False once the account is disabled; a disabled account cannot sign in.
    pub is_active: bool,
    /// Whether the email address was verified: new accounts start unverified
    /// and gatehouse never sets it; the application does.
    pub is_verified: bool,
    /// An operator's lock ([`lock`], which also revokes the sessions): no
    /// sign-in, no permissions, no API keys until [`unlock`].
    pub is_locked: bool,
    /// End of the automatic lock after too many failed logins, if one is running.
    pub locked_until: Option<DateTime<Utc>>,
    /// Failed sign-in attempts over all sources since the last completed login.
    pub failed_login_count: i32,
    /// When the last login completed.
    pub last_login_at: Option<DateTime<Utc>>,
    /// The client address of the last completed login.
    pub last_login_ip: Option<String>,
    /// When the password was last set.
    pub password_changed_at: Option<DateTime<Utc>>,
    /// When the password expires, if the application sets an expiry.
    pub password_expires_at: Option<DateTime<Utc>>,
    /// When the account was soft-deleted ([`soft_delete`]).
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the account was registered.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<users::Model> for Account {
    fn from(user: users::Model) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            is_active: user.is_active,
            is_verified: user.is_verified,
            is_locked: user.is_locked,
            locked_until: user.locked_until,
            failed_login_count: user.failed_login_count,
            last_login_at: user.last_login_at,
            last_login_ip: user.last_login_ip,
            password_changed_at: user.password_changed_at,
            password_expires_at: user.password_expires_at,
            deleted_at: user.deleted_at,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// What [`Accounts::register`] needs. `Debug` leaves the password out.
#[derive(Clone, Copy)]
pub struct NewAccount<'a> {
    /// The email address as typed; normalized and validated on registration.
    pub email: &'a str,
    /// The username as typed; normalized and validated on registration.
    pub username: &'a str,
    /// The password, checked against the password policy ([`validate`]).
    pub password: &'a str,
}

impl fmt::Debug for NewAccount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("password", &"(redacted)")
            .finish()
    }
}

/// A login attempt: email or username, password, and where it came from.
/// `Debug` leaves the password out.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The email or username as typed.
    pub identifier: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// Where the attempt comes from (the source the lockout counts).
    pub client: ClientInfo<'a>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identifier", &self.identifier)
            .field("password", &"(redacted)")
            .field("client", &self.client)
            .finish()
    }
}

/// A password reset token, to deliver to the account's owner. Only its
/// SHA-256 is stored; `Debug` prints no part of it.
pub struct ResetToken(SecretString);

impl ResetToken {
    /// The token, to put in the message to the account's owner.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(redacted)")
    }
}

/// A reset issued by [`Accounts::request_password_reset`].
#[derive(Debug)]
pub struct PasswordReset {
    /// The account the reset is for.
    pub account: Account,
    /// The single-use token to send to the account's owner.
    pub token: ResetToken,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// The role every new account gets, as seed 000 describes.
pub const DEFAULT_ROLE: &str = "user";

/// Lockout, reset and registration settings of the accounts service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountsPolicy {
    /// Throttling of sign-in attempts per source and per account.
    pub lockout: LockoutPolicy,
    /// Lifetime of a password reset token ([`DEFAULT_RESET_TOKEN_TTL`] by default).
    pub reset_token_ttl: Duration,
    /// Role granted at registration, in the same transaction ([`DEFAULT_ROLE`]
    /// by default; `None` grants nothing).
    pub default_role: Option<&'static str>,
    /// Password hashes computed at once; more wait their turn. The default,
    /// [`default_hash_concurrency`], leaves one CPU to the async runtime so a
    /// burst of logins cannot stall every other request (and bounds the
    /// memory Argon2 takes: m_cost per hash).
    pub hash_concurrency: usize,
}

/// One hash at a time per CPU, less one kept for the async runtime (at least one).
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

impl Default for AccountsPolicy {
    fn default() -> Self {
        Self {
            lockout: LockoutPolicy::default(),
            reset_token_ttl: DEFAULT_RESET_TOKEN_TTL,
            default_role: Some(DEFAULT_ROLE),
            hash_concurrency: default_hash_concurrency(),
        }
    }
}

/// The accounts service: a password hasher, the dummy hash unknown accounts
/// are verified against, and the policy.
///
/// Hashing runs on tokio's blocking pool. An unknown or disabled account costs
/// the same one verification as a known one (against the dummy hash, made once
/// in [`Accounts::new`]) and gets the same [`Error::InvalidCredentials`].
/// Authentication returns the account; sessions are the sessions module's business.
/// Cheap to clone: clones share the hasher, the dummy hash and the limit on
/// concurrent hashes.
pub struct Accounts<H> {
    hasher: Arc<H>,
    dummy_hash: Arc<str>,
    policy: AccountsPolicy,
    hashing: Arc<tokio::sync::Semaphore>,
}

impl<H> Clone for Accounts<H> {
    fn clone(&self) -> Self {
        Self {
            hasher: Arc::clone(&self.hasher),
            dummy_hash: Arc::clone(&self.dummy_hash),
            policy: self.policy,
            hashing: Arc::clone(&self.hashing),
        }
    }
}

impl<H> fmt::Debug for Accounts<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<H: PasswordHasher> Accounts<H> {
    /// The service with the default policy; computes the dummy hash (one hash).
    ///
    /// # Errors
    /// [`Error::Config`] when the hasher cannot hash.
    pub async fn new(hasher: H) -> Result<Self, Error> {
        Self::with_policy(hasher, AccountsPolicy::default()).await
    }

    /// The service with `policy`; computes the dummy hash (one hash).
    ///
    /// # Errors
    /// [`Error::Config`] when the hasher cannot hash or the policy is unusable.
    pub async fn with_policy(hasher: H, policy: AccountsPolicy) -> Result<Self, Error> {
        policy.lockout.validate()?;
        if policy.hash_concurrency == 0 {
            return Err(Error::Config {
                var: "hash_concurrency",
                reason: "must be at least 1".into(),
            });
        }
        if policy.reset_token_ttl <= Duration::zero() {
            return Err(Error::Config {
                var: "reset_token_ttl",
                reason: "must be positive".into(),
            });
        }
        let hasher = Arc::new(hasher);
        let dummy_password = BASE64URL_NOPAD.encode(&crypto::random_bytes::<RESET_TOKEN_BYTES>());
        let dummy_hash = blocking({
            let hasher = Arc::clone(&hasher);
            move || hasher.hash(&dummy_password)
        })
        .await?;
        Ok(Self {
            hasher,
            dummy_hash: dummy_hash.into(),
            hashing: Arc::new(tokio::sync::Semaphore::new(policy.hash_concurrency)),
            policy,
        })
    }

    /// The hasher, for callers that need to inspect it.
    pub fn hasher(&self) -> &H {
        &self.hasher
    }

    /// The policy in force.
    pub fn policy(&self) -> &AccountsPolicy {
        &self.policy
    }

    /// Creates an active, unverified account holding the policy's default
    /// role, in one transaction. Email and username are stored normalized;
    /// the database's unique indexes decide duplicates.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed field, [`Error::PolicyViolation`]
    /// for a password the policy refuses, [`Error::Conflict`] when the email
    /// or username is taken, [`Error::NotFound`] when the default role does
    /// not exist (migrations not applied); nothing is written then.
    pub async fn register<C>(
        &self,
        db: &C,
        new: NewAccount<'_>,
        now: DateTime<Utc>,
    ) -> Result<Account, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let email = validate::email(new.email)?;
        let username = validate::username(new.username)?;
        let password = validate::new_password(
            new.password,
            validate::PASSWORD_MIN_CHARS,
            &[&email, &username],
        )?;
        let default_role = match self.policy.default_role {
            Some(name) => Some(crate::rbac::find_role(db, name).await.map_err(|err| match err {
                Error::NotFound(_) => Error::NotFound(format!(
                    "default role `{name}`: apply the migrations (they seed it) or change AccountsPolicy::default_role"
                )),
                other => other,
            })?),
            None => None,
        };
        let password_hash = self.hash(password.into()).await?;
        let (email, username, password_hash) = (&email, &username, &password_hash);
        let default_role = default_role.as_ref();
        let user = retry(db, "accounts.register", move || async move {
            let txn = db.begin().await?;
            let user = users::ActiveModel {
                id: Set(Uuid::now_v7()),
                email_folded: Set(validate::fold(email)),
                username_folded: Set(validate::fold(username)),
                email: Set(email.clone()),
                username: Set(username.clone()),
                password_hash: Set(password_hash.clone()),
                is_active: Set(true),
                is_verified: Set(false),
                is_locked: Set(false),
                failed_login_count: Set(0),
                password_changed_at: Set(Some(now)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            if let Some(role) = default_role {
                user_roles::ActiveModel {
                    user_id: Set(user.id),
                    role_id: Set(role.id),
                    granted_by: Set(None),
                    granted_at: Set(now),
                    expires_at: Set(None),
                }
                .insert(&txn)
                .await?;
            }
            txn.commit().await?;
            Ok(user)
        })
        .await?;
        Ok(user.into())
    }

    /// A password-only login without a session (see [`crate::login`] for the
    /// steps): the attempt takes its slot before the one Argon2 verification,
    /// a failure is recorded, and a success clears the counts and records
    /// `last_login_*` with the `login` audit row in one transaction. An
    /// account with MFA answers [`Error::MfaRequired`]: sign it in with
    /// [`crate::login::login`], which checks the second factor.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed identifier, password or client
    /// (nothing recorded), [`Error::RateLimited`] when the source must wait,
    /// [`Error::MfaRequired`], [`Error::InvalidCredentials`] otherwise.
    #[tracing::instrument(name = "gatehouse.authenticate", skip_all, fields(identifier = credentials.identifier), err(level = "debug"))]
    pub async fn authenticate<C>(
        &self,
        db: &C,
        credentials: Credentials<'_>,
        now: DateTime<Utc>,
    ) -> Result<Account, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let request = crate::login::password_only(
            credentials.identifier,
            credentials.password,
            credentials.client,
        );
        Ok(crate::login::sign_in(db, self, None, None, request, now)
            .await?
            .account)
    }

    /// Changes a password after checking the current one. The new one must
    /// pass the policy (8 characters suffice with MFA enabled) and differ from
    /// the current one and the last [`PASSWORD_HISTORY_DEPTH`]. In one
    /// transaction: the hash is replaced, the old one goes to
    /// `password_history`, any reset token is voided and every session of the
    /// account is revoked.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no live account, [`Error::Locked`],
    /// [`Error::InvalidCredentials`] for a wrong current password (recorded as
    /// a failure), [`Error::InvalidInput`] / [`Error::PolicyViolation`] for the
    /// new one, [`Error::Conflict`] if the password changed concurrently.
    pub async fn change_password<C>(
        &self,
        db: &C,
        user_id: Uuid,
        current_password: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let current: SecretString = validate::password_form(current_password)?.into();
        let user = live_user(db, user_id).await?;
        let new: SecretString = validate::new_password(
            new_password,
            min_password_chars(db, user.id).await?,
            &[&user.email, &user.username],
        )?
        .into();
        // The current password is a secret an attacker holding a session may
        // guess: it takes a slot like a login and counts when wrong.
        let attempt =
            lockout::claim(db, &self.policy.lockout, user.id, user.id, "", None, now).await?;
        let unlocked = attempt.account_counted && !lockout::is_locked(&user, now);
        let phc = if unlocked {
            user.password_hash.clone()
        } else {
            self.dummy_hash()
        };
        if !(self.verify(current, phc).await? && unlocked) {
            retry(db, "accounts.change_password.failure", || async {
                let txn = db.begin().await?;
                lockout::record_failure(
                    &txn,
                    &self.policy.lockout,
                    Failure {
                        user_id: Some(user.id),
                        identifier: &user.username,
                        kind: AttemptKind::Password,
                        ip_address: None,
                        user_agent: None,
                        reason: "wrong current password",
                    },
                    now,
                )
                .await?;
                txn.commit().await?;
                Ok(())
            })
            .await?;
            return Err(Error::InvalidCredentials);
        }
        lockout::release(db, &attempt).await?;
        self.ensure_not_reused(db, &user, &new).await?;
        let new_hash = self.hash(new).await?;
        retry(db, "accounts.change_password", || async {
            let txn = db.begin().await?;
            let updated = users::Entity::update_many()
                .col_expr(users::Column::PasswordHash, Expr::value(new_hash.as_str()))
                .col_expr(users::Column::PasswordChangedAt, Expr::value(now))
                .col_expr(
                    users::Column::PasswordResetTokenHash,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    users::Column::PasswordResetExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(users::Column::UpdatedAt, Expr::value(now))
                .filter(users::Column::Id.eq(user.id))
                .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
                .exec(&txn)
                .await?;
            if updated.rows_affected != 1 {
                return Err(Error::conflict(
                    "password",
                    "the password was changed at the same time by another request; sign in again",
                ));
            }
            archive_and_revoke(
                &txn,
                &user,
                Some(user.id),
                "change",
                "password changed",
                now,
            )
            .await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Issues a password reset token for the live account with `email`, valid
    /// for the policy's `reset_token_ttl`; a newer token replaces an older one.
    /// `None` when no live account has that email: answer the requester the
    /// same way in both cases.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed email, or a database error.
    pub async fn request_password_reset<C: ConnectionTrait>(
        &self,
        db: &C,
        email: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PasswordReset>, Error> {
        let email = validate::email(email)?;
        let Some(user) = find_by_identifier(db, &Identifier::Email(email))
            .await?
            .filter(is_live)
        else {
            return Ok(None);
        };
        let token = BASE64URL_NOPAD.encode(&crypto::random_bytes::<RESET_TOKEN_BYTES>());
        let expires_at = now + self.policy.reset_token_ttl;
        let updated = users::Entity::update_many()
            .col_expr(
                users::Column::PasswordResetTokenHash,
                Expr::value(crypto::sha256_hex(token.as_bytes())),
            )
            .col_expr(
                users::Column::PasswordResetExpiresAt,
                Expr::value(expires_at),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user.id))
            .filter(users::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        if updated.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(PasswordReset {
            account: user.into(),
            token: ResetToken(token.into()),
            expires_at,
        }))
    }

    /// Sets a new password with a reset token. The token is consumed by a
    /// conditional `UPDATE`, so it works once, and only before it expires. In
    /// the same transaction the old hash goes to `password_history`, the
    /// automatic lock and failure count are cleared (an administrator's lock
    /// stays) and every session of the account is revoked.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed token or password,
    /// [`Error::InvalidCredentials`] for an unknown token, [`Error::Replayed`]
    /// for a used one, [`Error::Expired`], [`Error::PolicyViolation`] for a
    /// refused password (the token stays usable then).
    pub async fn reset_password<C>(
        &self,
        db: &C,
        token: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<Account, Error>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        if token.len() != RESET_TOKEN_CHARS || BASE64URL_NOPAD.decode(token.as_bytes()).is_err() {
            return Err(Error::InvalidInput {
                field: "token",
                reason: "is not a password reset token".into(),
            });
        }
        validate::password_form(new_password)?;
        let token_hash = crypto::sha256_hex(token.as_bytes());
        let user = users::Entity::find()
            .filter(users::Column::PasswordResetTokenHash.eq(token_hash.as_str()))
            .one(db)
            .await?
            .filter(is_live)
            .ok_or(Error::InvalidCredentials)?;
        match user.password_reset_expires_at {
            None => return Err(Error::Replayed),
            Some(expires_at) if expires_at <= now => return Err(Error::Expired),
            Some(_) => {}
        }
        let new: SecretString = validate::new_password(
            new_password,
            min_password_chars(db, user.id).await?,
            &[&user.email, &user.username],
        )?
        .into();
        self.ensure_not_reused(db, &user, &new).await?;
        let new_hash = self.hash(new).await?;
        retry(db, "accounts.reset_password", || async {
            let txn = db.begin().await?;
            // Consumes the token: a used one keeps its hash with no expiry, so a
            // second use is told apart from an unknown token.
            let consumed = users::Entity::update_many()
                .col_expr(users::Column::PasswordHash, Expr::value(new_hash.as_str()))
                .col_expr(users::Column::PasswordChangedAt, Expr::value(now))
                .col_expr(
                    users::Column::PasswordResetExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    users::Column::LockedUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(users::Column::FailedLoginCount, Expr::value(0))
                .col_expr(users::Column::UpdatedAt, Expr::value(now))
                .filter(users::Column::Id.eq(user.id))
                .filter(users::Column::PasswordResetTokenHash.eq(token_hash.as_str()))
                .filter(users::Column::PasswordResetExpiresAt.gt(now))
                .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
                .filter(users::Column::DeletedAt.is_null())
                .exec(&txn)
                .await?;
            if consumed.rows_affected != 1 {
                return Err(Error::Replayed);
            }
            archive_and_revoke(&txn, &user, None, "reset", "password reset", now).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        get(db, user.id).await
    }

    /// Refuses `new` when it matches the current password or one of the last
    /// [`PASSWORD_HISTORY_DEPTH`] (stops at the first match).
    async fn ensure_not_reused<C: ConnectionTrait>(
        &self,
        db: &C,
        user: &users::Model,
        new: &SecretString,
    ) -> Result<(), Error> {
        let mut hashes = vec![user.password_hash.clone()];
        hashes.extend(
            password_history::Entity::find()
                .filter(password_history::Column::UserId.eq(user.id))
                .order_by_desc(password_history::Column::CreatedAt)
                .order_by_desc(password_history::Column::Id)
                .limit(PASSWORD_HISTORY_DEPTH)
                .all(db)
                .await?
                .into_iter()
                .map(|row| row.password_hash),
        );
        let hasher = Arc::clone(&self.hasher);
        let new = new.clone();
        let reused = blocking(move || {
            hashes
                .iter()
                // A hash this hasher cannot read (an older scheme) cannot match.
                .any(|phc| hasher.verify(new.expose_secret(), phc).unwrap_or(false))
        })
        .await;
        if reused {
            return Err(Error::PolicyViolation(format!(
                "this password was used recently; choose one that is not among the last {}",
                PASSWORD_HISTORY_DEPTH + 1
            )));
        }
        Ok(())
    }

    /// The hash unknown and unusable accounts are verified against.
    pub(crate) fn dummy_hash(&self) -> String {
        self.dummy_hash.to_string()
    }

    pub(crate) async fn hash(&self, password: SecretString) -> Result<String, Error> {
        let hasher = Arc::clone(&self.hasher);
        let _turn = self.hashing_turn().await;
        blocking(move || hasher.hash(password.expose_secret())).await
    }

    pub(crate) async fn verify(&self, password: SecretString, phc: String) -> Result<bool, Error> {
        let hasher = Arc::clone(&self.hasher);
        let _turn = self.hashing_turn().await;
        blocking(move || hasher.verify(password.expose_secret(), &phc)).await
    }

    /// Waits for one of the policy's `hash_concurrency` hashing slots.
    async fn hashing_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.hashing
            .acquire()
            .await
            .expect("the hashing semaphore is never closed")
    }
}

/// The condition that finds the account an identifier names: its folded
/// email (or username) equals `fold` of the identifier, byte for byte.
pub(crate) fn identifier_condition(identifier: &Identifier) -> sea_orm::sea_query::SimpleExpr {
    // `validate::identifier` folds already; folding again is free of effect
    // (a fixed point) and covers an `Identifier` built by hand.
    match identifier {
        Identifier::Email(email) => users::Column::EmailFolded.eq(validate::fold(email)),
        Identifier::Username(name) => users::Column::UsernameFolded.eq(validate::fold(name)),
    }
}

/// The account `identifier` names, deleted or not: the one whose folded email
/// (or username) equals `fold` of the identifier, byte for byte, on every
/// backend. Every lookup of an account by email or username goes through here.
///
/// # Errors
/// A database error.
pub async fn find_by_identifier<C: ConnectionTrait>(
    db: &C,
    identifier: &Identifier,
) -> Result<Option<users::Model>, Error> {
    Ok(users::Entity::find()
        .filter(identifier_condition(identifier))
        .one(db)
        .await?)
}

/// Rows read per round by [`refold_identities`].
const REFOLD_BATCH: u64 = 1_000;

/// Recomputes `email_folded` and `username_folded` in Rust for every account
/// whose stored folded values are not `fold` of its email and username, and
/// returns how many accounts changed. Rows gatehouse wrote are right already
/// (it stores email and username folded, and the fold-identities migration
/// copied them); rows written by other tools in another form (a database
/// built from hand-written SQL and adopted with `migrate baseline`, or raw
/// inserts) are found by their login only after this has run. All or
/// nothing, in one transaction.
///
/// # Errors
/// [`Error::Conflict`] (field `email` or `username`) when two accounts fold
/// to the same value: nothing is changed then; or a database error.
pub async fn refold_identities<C>(db: &C) -> Result<u64, Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    let changed = retry(db, "accounts.refold_identities", || async {
        let txn = db.begin().await?;
        let mut changed = 0;
        let mut after: Option<Uuid> = None;
        loop {
            let mut page = users::Entity::find()
                .select_only()
                .columns([
                    users::Column::Id,
                    users::Column::Email,
                    users::Column::Username,
                    users::Column::EmailFolded,
                    users::Column::UsernameFolded,
                ])
                .order_by_asc(users::Column::Id)
                .limit(REFOLD_BATCH);
            if let Some(id) = after {
                page = page.filter(users::Column::Id.gt(id));
            }
            let rows: Vec<(Uuid, String, String, String, String)> =
                page.into_tuple().all(&txn).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.0);
            for (id, email, username, email_folded, username_folded) in &rows {
                let (email, username) = (validate::fold(email), validate::fold(username));
                if email == *email_folded && username == *username_folded {
                    continue;
                }
                users::Entity::update_many()
                    .col_expr(users::Column::EmailFolded, Expr::value(email.as_str()))
                    .col_expr(
                        users::Column::UsernameFolded,
                        Expr::value(username.as_str()),
                    )
                    .filter(users::Column::Id.eq(*id))
                    .exec(&txn)
                    .await
                    .map_err(|err| match Error::from(err) {
                        Error::Conflict { field, .. } => Error::conflict(
                            field,
                            format!(
                                "account {id} has the same {field} as another account once \
                                 folded (`{}`); rename one of them, then refold again",
                                if field == "email" { &email } else { &username }
                            ),
                        ),
                        other => other,
                    })?;
                changed += 1;
            }
        }
        txn.commit().await?;
        Ok(changed)
    })
    .await?;
    Ok(changed)
}

/// The account with `user_id`, deleted or not.
///
/// # Errors
/// [`Error::NotFound`], or a database error.
pub async fn get<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Account, Error> {
    users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(Account::from)
        .ok_or_else(|| Error::NotFound(format!("user {user_id}")))
}

/// An administrator's lock (`is_locked`): the account cannot log in until
/// [`unlock`]; its sessions are revoked in the same transaction. `actor`
/// must outrank the account ([`rbac::ensure_outranks`](crate::rbac::ensure_outranks));
/// the caller checks the administrator's permission (`users.update`).
///
/// # Errors
/// [`Error::Forbidden`] when `actor` does not outrank the account,
/// [`Error::NotFound`] for no live account, or a database error.
pub async fn lock<C>(
    db: &C,
    actor: crate::rbac::Actor,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    crate::rbac::ensure_outranks(db, actor, user_id, "lock", now).await?;
    retry(db, "accounts.lock", || async {
        let txn = db.begin().await?;
        let updated = users::Entity::update_many()
            .col_expr(users::Column::IsLocked, Expr::value(true))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        revoke_sessions(&txn, user_id, "account locked", now).await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Lifts both an administrator's lock and an automatic one, and clears the
/// failure count. `actor` must outrank the account, as for [`lock`].
///
/// # Errors
/// [`Error::Forbidden`] when `actor` does not outrank the account,
/// [`Error::NotFound`] for no live account, or a database error.
pub async fn unlock<C: ConnectionTrait>(
    db: &C,
    actor: crate::rbac::Actor,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    crate::rbac::ensure_outranks(db, actor, user_id, "unlock", now).await?;
    let updated = users::Entity::update_many()
        .col_expr(users::Column::IsLocked, Expr::value(false))
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(users::Column::FailedLoginCount, Expr::value(0))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(Error::NotFound(format!("user {user_id}")));
    }
    Ok(())
}

/// Soft-deletes an account (`deleted_at`): it can no longer log in or reset
/// its password, its reset token is voided and its sessions revoked, in one
/// transaction. The row stays for the audit trail. `actor` must outrank the
/// account, as for [`lock`] (an account deleting itself is the caller's
/// decision, made as [`Actor::System`](crate::rbac::Actor::System)).
///
/// # Errors
/// [`Error::Forbidden`] when `actor` does not outrank the account,
/// [`Error::NotFound`] for no live account, or a database error.
pub async fn soft_delete<C>(
    db: &C,
    actor: crate::rbac::Actor,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    crate::rbac::ensure_outranks(db, actor, user_id, "delete", now).await?;
    retry(db, "accounts.soft_delete", || async {
        let txn = db.begin().await?;
        let updated = users::Entity::update_many()
            .col_expr(users::Column::DeletedAt, Expr::value(now))
            .col_expr(
                users::Column::PasswordResetTokenHash,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                users::Column::PasswordResetExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        revoke_sessions(&txn, user_id, "account deleted", now).await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Whether the account may log in at all (locks aside).
fn is_live(user: &users::Model) -> bool {
    user.deleted_at.is_none() && user.is_active
}

async fn live_user<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<users::Model, Error> {
    users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .filter(is_live)
        .ok_or_else(|| Error::NotFound(format!("user {user_id}")))
}

/// The shortest password the account may choose: shorter when MFA is enabled.
async fn min_password_chars<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<usize, Error> {
    let mfa_enabled = mfa_configurations::Entity::find()
        .filter(mfa_configurations::Column::UserId.eq(user_id))
        .filter(mfa_configurations::Column::IsEnabled.eq(true))
        .count(db)
        .await?
        > 0;
    Ok(if mfa_enabled {
        validate::PASSWORD_MIN_CHARS_WITH_MFA
    } else {
        validate::PASSWORD_MIN_CHARS
    })
}

/// After a password change: keeps the old hash in `password_history` (the
/// newest [`PASSWORD_HISTORY_DEPTH`] only) and revokes every session.
async fn archive_and_revoke<C: ConnectionTrait + TransactionTrait>(
    txn: &C,
    user: &users::Model,
    changed_by: Option<Uuid>,
    change_reason: &str,
    revoke_reason: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    password_history::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        password_hash: Set(user.password_hash.clone()),
        changed_by: Set(changed_by),
        change_reason: Set(Some(change_reason.to_owned())),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    let stale: Vec<Uuid> = password_history::Entity::find()
        .select_only()
        .column(password_history::Column::Id)
        .filter(password_history::Column::UserId.eq(user.id))
        .order_by_desc(password_history::Column::CreatedAt)
        .order_by_desc(password_history::Column::Id)
        .offset(PASSWORD_HISTORY_DEPTH)
        .limit(u64::from(u32::MAX))
        .into_tuple()
        .all(txn)
        .await?;
    if !stale.is_empty() {
        password_history::Entity::delete_many()
            .filter(password_history::Column::Id.is_in(stale))
            .exec(txn)
            .await?;
    }
    revoke_sessions(txn, user.id, revoke_reason, now).await
}

/// Revokes every session of the account (through the one revocation path,
/// which clears seals and audits each) and every trusted device.
async fn revoke_sessions<C>(
    db: &C,
    user_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), Error>
where
    C: ConnectionTrait + TransactionTrait,
{
    crate::sessions::revoke_sessions(db, user_id, None, reason, now).await?;
    crate::mfa::devices::revoke_all(db, user_id, now).await?;
    Ok(())
}

/// Runs CPU-heavy `work` on tokio's blocking pool; a panic in it is resumed here.
async fn blocking<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("the blocking pool dropped a hashing task: {err}"),
    }
}
