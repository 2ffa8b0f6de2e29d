//! [`Gatehouse`]: the one handle an application keeps in its state. It owns
//! a connection pool and the services built over it, is cheap to clone and
//! `'static`, and answers the calls a request handler makes. Every call
//! reaches the database through a [`Pool`], safe under the pool mode
//! (`DATABASE_POOL_MODE`, [`GatehouseBuilder::pool_mode`]).

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::accounts::{Account, AccountsPolicy, Argon2idHasher, NewAccount};
use crate::api_keys::{KeyUsage, VerifiedKey};
use crate::client::ClientInfo;
use crate::config::{Config, DataKey, HmacKey};
use crate::db::{Pool, PoolMode};
use crate::login::{LoggedIn, LoginRequest};
use crate::mfa::Mfa;
use crate::sessions::{SessionPolicy, Sessions};
use crate::{Accounts, Error, api_keys, rbac};

/// The database and every service, ready for request handlers.
///
/// Build it once at start ([`Gatehouse::from_config`] or
/// [`Gatehouse::builder`]) and clone it into each handler: clones share the
/// pool, the keys and the limit on concurrent password hashes. MFA is
/// optional: without a data encryption key, sign-in works for accounts
/// without MFA and fails closed ([`Error::Config`]) for accounts with it.
///
/// ```no_run
/// # async fn run() -> Result<(), gatehouse::Error> {
/// use gatehouse::{ClientInfo, Config, Gatehouse, LoginRequest, NewAccount};
///
/// let db = gatehouse::db::connect("sqlite://app.db?mode=rwc").await?;
/// let gate = Gatehouse::from_config(db, &Config::from_env()?).await?;
/// gate.register(NewAccount {
///     email: "ada@example.com",
///     username: "ada",
///     password: "tranquil otter juggles nine lanterns",
/// })
/// .await?;
/// let done = gate
///     .login(LoginRequest {
///         identifier: "ada",
///         password: "tranquil otter juggles nine lanterns",
///         second_factor: None,
///         client: ClientInfo { ip: Some("192.0.2.1"), user_agent: Some("curl/8.5") },
///     })
///     .await?;
/// let session = gate
///     .validate_session(done.session.token.expose(), ClientInfo::default())
///     .await?;
/// assert_eq!(session.user_id, done.account.id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gatehouse {
    db: Pool,
    accounts: Accounts<Argon2idHasher>,
    sessions: Sessions,
    mfa: Option<Mfa>,
    key_usage: KeyUsage,
}

impl fmt::Debug for Gatehouse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gatehouse")
            .field("db", &self.db)
            .field("sessions", &self.sessions.policy())
            .field("mfa", &self.mfa.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gatehouse`] from explicit parts; see [`Gatehouse::builder`].
#[derive(Debug)]
pub struct GatehouseBuilder {
    db: Pool,
    pool_mode: PoolMode,
    hmac_key: Option<HmacKey>,
    hmac_previous: Vec<HmacKey>,
    data_key: Option<DataKey>,
    data_previous: Vec<DataKey>,
    sessions: SessionPolicy,
    accounts: AccountsPolicy,
    hasher: Argon2idHasher,
    key_usage: KeyUsage,
    read_url: Option<SecretString>,
    standby_wait: Duration,
}

impl GatehouseBuilder {
    /// The HMAC key (required): session seals, IP hashes, backup codes.
    #[must_use]
    pub fn hmac_key(mut self, key: HmacKey) -> Self {
        self.hmac_key = Some(key);
        self
    }

    /// The data encryption key: enables MFA (TOTP secrets are encrypted under it).
    #[must_use]
    pub fn data_key(mut self, key: DataKey) -> Self {
        self.data_key = Some(key);
        self
    }

    /// Both keys, their rings and the pool mode from a [`Config`].
    #[must_use]
    pub fn config(mut self, config: &Config) -> Self {
        self.hmac_key = Some(config.hmac_key.clone());
        self.hmac_previous.clone_from(&config.hmac_previous);
        self.data_key = Some(config.data_key.clone());
        self.data_previous.clone_from(&config.data_previous);
        self.pool_mode = config.pool_mode;
        self.read_url.clone_from(&config.read_url);
        self
    }

    /// A PostgreSQL hot standby to read from (`DATABASE_READ_URL`, read by
    /// [`Config::from_env`]): session validation, permission checks, API-key
    /// lookups and listings read there, never staler than the primary (see
    /// [`crate::db::standby`]). `build` opens its pool.
    #[must_use]
    pub fn read_url(mut self, url: impl Into<String>) -> Self {
        self.read_url = Some(SecretString::from(url.into()));
        self
    }

    /// How long a write waits for the standby to replay it (default
    /// [`crate::db::standby::DEFAULT_WAIT`]); past that, this process reads
    /// from the primary until the standby has.
    #[must_use]
    pub fn standby_wait(mut self, wait: Duration) -> Self {
        self.standby_wait = wait;
        self
    }

    /// How the database URL is pooled (default [`PoolMode::Session`]; read
    /// from `DATABASE_POOL_MODE` by [`Config::from_env`]).
    /// [`PoolMode::Transaction`], for PgBouncer in transaction pooling, runs
    /// every statement in a transaction of its own on a pool with sqlx's
    /// statement cache off (see [`Pool`]); `build` opens that pool from the
    /// given one's options unless it is such a pool already. A pool already
    /// in transaction mode stays so (it is safe on any connection).
    #[must_use]
    pub fn pool_mode(mut self, mode: PoolMode) -> Self {
        self.pool_mode = mode;
        self
    }

    /// Session timeouts and risk threshold (default: [`SessionPolicy::default`]).
    #[must_use]
    pub fn session_policy(mut self, policy: SessionPolicy) -> Self {
        self.sessions = policy;
        self
    }

    /// Lockout, reset and registration settings (default: [`AccountsPolicy::default`]).
    #[must_use]
    pub fn accounts_policy(mut self, policy: AccountsPolicy) -> Self {
        self.accounts = policy;
        self
    }

    /// How uses of API keys without a per-minute limit are written (default:
    /// at most once a minute per key, [`KeyUsage::default`]; see
    /// [`Gatehouse::flush_key_usage`]).
    #[must_use]
    pub fn key_usage(mut self, usage: KeyUsage) -> Self {
        self.key_usage = usage;
        self
    }

    /// The password hasher (default: OWASP's Argon2id parameters).
    #[must_use]
    pub fn hasher(mut self, hasher: Argon2idHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Checks that the pool reads causally on a Galera node
    /// ([`crate::db::ensure_causal_reads`]), checks the keys against their
    /// records (recording them on a first start, never rotating) and computes
    /// the dummy hash.
    ///
    /// # Errors
    /// [`Error::Config`] when no HMAC key was given, a key is not the
    /// active recorded one (`gatehouse keys rotate`), the pool is on a
    /// Galera node without causal reads (`wsrep_sync_wait`), or transaction
    /// pooling is asked for on a database other than PostgreSQL;
    /// [`Error::InvalidInput`] for an inconsistent policy; a database error
    /// (migrations not applied).
    pub async fn build(self) -> Result<Gatehouse, Error> {
        let hmac_key = self.hmac_key.ok_or_else(|| Error::Config {
            var: crate::config::HMAC_KEY_VAR,
            reason: "the HMAC key is required: give it with `hmac_key` or `config`".into(),
        })?;
        let db = match (self.pool_mode, self.db.mode()) {
            (PoolMode::Transaction, PoolMode::Session) => {
                Pool::from_connection(self.db.connection().clone(), PoolMode::Transaction).await?
            }
            _ => self.db,
        };
        let db = match &self.read_url {
            Some(url) => {
                db.with_standby(url.expose_secret(), self.standby_wait)
                    .await?
            }
            None => db,
        };
        crate::db::ensure_causal_reads(&db).await?;
        let sessions =
            Sessions::load_with_previous(&db, &hmac_key, &self.hmac_previous, self.sessions)
                .await?;
        let mfa = match &self.data_key {
            Some(data_key) => {
                let mfa = Mfa::with_keys(data_key, &hmac_key)
                    .with_previous_keys(&self.data_previous, &self.hmac_previous)
                    .with_lockout(self.accounts.lockout);
                mfa.ensure_keys(&db).await?;
                Some(mfa)
            }
            None => None,
        };
        let accounts = Accounts::with_policy(self.hasher, self.accounts).await?;
        Ok(Gatehouse {
            db,
            accounts,
            sessions,
            mfa,
            key_usage: self.key_usage,
        })
    }
}

impl Gatehouse {
    /// A builder over `db` (a sea-orm `DatabaseConnection`, or a [`Pool`]),
    /// for keys and policies given one by one.
    pub fn builder(db: impl Into<Pool>) -> GatehouseBuilder {
        GatehouseBuilder {
            db: db.into(),
            pool_mode: PoolMode::Session,
            hmac_key: None,
            hmac_previous: Vec::new(),
            data_key: None,
            data_previous: Vec::new(),
            sessions: SessionPolicy::default(),
            accounts: AccountsPolicy::default(),
            hasher: Argon2idHasher::default(),
            key_usage: KeyUsage::default(),
            read_url: None,
            standby_wait: crate::db::standby::DEFAULT_WAIT,
        }
    }

    /// Every service with both keys from `config` (MFA on) and default policies.
    ///
    /// # Errors
    /// As [`GatehouseBuilder::build`].
    pub async fn from_config(db: impl Into<Pool>, config: &Config) -> Result<Self, Error> {
        Self::builder(db).config(config).build().await
    }

    /// The connection pool, for the services' lower-level functions and the
    /// application's own queries: a [`Pool`], which implements sea-orm's
    /// `ConnectionTrait` and `TransactionTrait` and is safe under the pool
    /// mode. (It was sea-orm's `DatabaseConnection`; that one is
    /// [`Pool::connection`], not safe to use directly under transaction
    /// pooling.)
    pub fn db(&self) -> &Pool {
        &self.db
    }

    /// The accounts service.
    pub fn accounts(&self) -> &Accounts<Argon2idHasher> {
        &self.accounts
    }

    /// The sessions service.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The MFA service, when a data encryption key was given.
    pub fn mfa(&self) -> Option<&Mfa> {
        self.mfa.as_ref()
    }

    /// Registers an account with the default role ([`Accounts::register`]).
    ///
    /// # Errors
    /// As [`Accounts::register`]: [`Error::InvalidInput`],
    /// [`Error::PolicyViolation`], [`Error::Conflict`] naming the field.
    #[tracing::instrument(name = "gatehouse.register", skip_all, err(level = "debug"))]
    pub async fn register(&self, new: NewAccount<'_>) -> Result<Account, Error> {
        self.accounts.register(&self.db, new, Utc::now()).await
    }

    /// Signs in and creates a session ([`crate::login::login`]).
    ///
    /// # Errors
    /// As [`crate::login::login`].
    pub async fn login(&self, request: LoginRequest<'_>) -> Result<LoggedIn, Error> {
        crate::login::login(
            &self.db,
            &self.accounts,
            &self.sessions,
            self.mfa.as_ref(),
            request,
            Utc::now(),
        )
        .await
    }

    /// Validates a session token ([`Sessions::validate`]).
    ///
    /// # Errors
    /// As [`Sessions::validate`]: [`Error::InvalidCredentials`],
    /// [`Error::Revoked`], [`Error::Expired`], [`Error::Integrity`].
    pub async fn validate_session(
        &self,
        token: &str,
        client: ClientInfo<'_>,
    ) -> Result<gatehouse_entity::sessions::Model, Error> {
        self.sessions
            .validate(&self.db, token, client, Utc::now())
            .await
    }

    /// Ends the session of `token` ([`Sessions::logout`]).
    ///
    /// # Errors
    /// As [`Sessions::logout`].
    #[tracing::instrument(name = "gatehouse.logout", skip_all, err(level = "debug"))]
    pub async fn logout(&self, token: &str) -> Result<(), Error> {
        self.sessions.logout(&self.db, token, Utc::now()).await
    }

    /// Whether `user_id` holds `permission` now ([`rbac::has_permission`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed permission name; a database error.
    pub async fn has_permission(&self, user_id: Uuid, permission: &str) -> Result<bool, Error> {
        rbac::has_permission(&self.db, user_id, permission, Utc::now()).await
    }

    /// Verifies an API key ([`api_keys::verify_with`] and the handle's
    /// [`KeyUsage`]: a key without a per-minute limit writes its use at most
    /// once per interval).
    ///
    /// # Errors
    /// As [`api_keys::verify`]: [`Error::InvalidCredentials`],
    /// [`Error::RateLimited`].
    pub async fn verify_api_key(
        &self,
        key: &str,
        client_ip: Option<&str>,
    ) -> Result<VerifiedKey, Error> {
        api_keys::verify_with(&self.db, &self.key_usage, key, client_ip, Utc::now()).await
    }

    /// Writes the API-key uses this handle (and its clones) verified but has
    /// not written yet ([`KeyUsage::flush`]); call it at shutdown so that
    /// `usage_count` keeps them. Returns how many it wrote.
    ///
    /// # Errors
    /// A database error; the uses stay counted for the next flush.
    pub async fn flush_key_usage(&self) -> Result<u64, Error> {
        self.key_usage.flush(&self.db).await
    }
}
