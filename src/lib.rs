//! gatehouse: the security data layer of an application. Users, roles and
//! permissions, sessions, API keys, MFA and audit, as the SeaORM entities of
//! [`gatehouse_entity`] built by the migrations of [`gatehouse_migration`],
//! on PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! An application keeps one [`Gatehouse`] in its state and calls it from
//! request handlers; each area's module has the lower-level functions, each
//! generic over `C: ConnectionTrait` so it runs on a pool or inside the
//! caller's transaction. Errors are one [`Error`] enum, whose variants name
//! what the caller must decide ([`Error::InvalidCredentials`],
//! [`Error::Conflict`], [`Error::RateLimited`], ...).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `postgres` | yes | the PostgreSQL driver (sqlx) |
//! | `mysql` | yes | the MySQL/MariaDB driver |
//! | `sqlite` | yes | the SQLite driver |
//! | `cli` | yes | the `gatehouse` operator binary (clap, rpassword, qrcode, tracing-subscriber, anyhow) |
//! | `axum` | no | extractors, a permission guard, the session cookie and CSRF protection for axum 0.8 ([`axum`] module) |
//!
//! Enable at least one backend. A library build needs none of the CLI's
//! dependencies:
//!
//! ```toml
//! gatehouse = { version = "0.1", default-features = false, features = ["postgres"] }
//! ```
//!
//! # Setting up
//!
//! Apply the migrations ([`Migrator`], a sea-orm-migration `MigratorTrait`;
//! an application with its own migration crate lists
//! `gatehouse_migration::Migrator::migrations()` first in its own), add the
//! default roles and permissions ([`seed()`]), then build the handle from the
//! two keys ([`Config::from_env`] reads `HMAC_KEY` and `DATA_ENCRYPTION_KEY`).
//! Every example below runs as a test against an in-memory SQLite database set
//! up this way:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! use gatehouse::{Config, Gatehouse, Migrator};
//! use sea_orm_migration::MigratorTrait;
//!
//! let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! options.max_connections(1); // each SQLite memory connection is its own database
//! let db = sea_orm::Database::connect(options).await?;
//! Migrator::up(&db, None).await?;
//! gatehouse::seed(&db).await?;
//!
//! // Both keys are 32 random bytes, hex or base64 (`openssl rand -hex 32`).
//! let config = Config::from_values(
//!     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//!     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! )?;
//! let gate = Gatehouse::from_config(db, &config).await?;
//! assert!(gate.mfa().is_some(), "a data key enables MFA");
//! # Ok(())
//! # }
//! ```
//!
//! # Accounts: registration and login
//!
//! [`Gatehouse::register`] normalizes and validates the email and username,
//! checks the password against the policy and grants the default role;
//! [`Gatehouse::login`] verifies the password (and second factor), throttles
//! guessing per source and account ([`lockout`]) and opens a session. Every
//! failure to sign in is the same [`Error::InvalidCredentials`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! # let config = gatehouse::Config::from_values(
//! #     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//! #     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! # )?;
//! # let gate = gatehouse::Gatehouse::from_config(db, &config).await?;
//! use gatehouse::{ClientInfo, Error, LoginRequest, NewAccount};
//!
//! let ada = gate
//!     .register(NewAccount {
//!         email: "Ada@Example.com",
//!         username: "ada",
//!         password: "tranquil otter juggles nine lanterns",
//!     })
//!     .await?;
//! assert_eq!(ada.email, "ada@example.com");
//!
//! let taken = gate
//!     .register(NewAccount {
//!         email: "ada@example.com",
//!         username: "ada2",
//!         password: "violet kettle drums at midnight",
//!     })
//!     .await;
//! assert!(matches!(taken, Err(Error::Conflict { field: "email", .. })));
//!
//! let client = ClientInfo { ip: Some("192.0.2.1"), user_agent: Some("curl/8.5") };
//! let wrong = gate
//!     .login(LoginRequest {
//!         identifier: "ada",
//!         password: "tranquil otter juggles ten lanterns",
//!         second_factor: None,
//!         client,
//!     })
//!     .await;
//! assert!(matches!(wrong, Err(Error::InvalidCredentials)));
//!
//! let done = gate
//!     .login(LoginRequest {
//!         identifier: "ADA@example.com",
//!         password: "tranquil otter juggles nine lanterns",
//!         second_factor: None,
//!         client,
//!     })
//!     .await?;
//! assert_eq!(done.account.id, ada.id);
//! // `done.session.token` goes to the client (a cookie); only its digest is stored.
//! # Ok(())
//! # }
//! ```
//!
//! # Sessions
//!
//! A session token is validated on every request ([`Gatehouse::validate_session`]):
//! its row must be unrevoked, unexpired (idle and absolute timeouts), its seal
//! intact, and its risk score below the threshold ([`sessions`]). The
//! [`Sessions`] service also creates sessions without a login, revokes them and
//! cleans them up.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! # let config = gatehouse::Config::from_values(
//! #     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//! #     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! # )?;
//! # let gate = gatehouse::Gatehouse::from_config(db, &config).await?;
//! # let ada = gate
//! #     .register(gatehouse::NewAccount {
//! #         email: "ada@example.com",
//! #         username: "ada",
//! #         password: "tranquil otter juggles nine lanterns",
//! #     })
//! #     .await?;
//! use gatehouse::{ClientInfo, Error};
//!
//! let client = ClientInfo { ip: Some("192.0.2.1"), user_agent: Some("Firefox/140") };
//! let created = gate
//!     .sessions()
//!     .create(gate.db(), ada.id, client, chrono::Utc::now())
//!     .await?;
//! let token = created.token.expose();
//!
//! let session = gate.validate_session(token, client).await?;
//! assert_eq!(session.user_id, ada.id);
//!
//! gate.logout(token).await?;
//! let after = gate.validate_session(token, client).await;
//! assert!(matches!(after, Err(Error::Revoked)));
//! # Ok(())
//! # }
//! ```
//!
//! # RBAC: permissions through roles
//!
//! Permissions (`resource.action`) are granted through roles; a role grant may
//! expire. [`Gatehouse::has_permission`] is the check a handler makes;
//! [`rbac`] grants, revokes and edits roles, each change naming its
//! [`rbac::Actor`] and audited.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! # let config = gatehouse::Config::from_values(
//! #     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//! #     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! # )?;
//! # let gate = gatehouse::Gatehouse::from_config(db, &config).await?;
//! # let ada = gate
//! #     .register(gatehouse::NewAccount {
//! #         email: "ada@example.com",
//! #         username: "ada",
//! #         password: "tranquil otter juggles nine lanterns",
//! #     })
//! #     .await?;
//! use gatehouse::rbac;
//!
//! // The default role `user` does not read the audit trail; `moderator` does.
//! assert!(gate.has_permission(ada.id, "users.read").await?);
//! assert!(!gate.has_permission(ada.id, "audit.read").await?);
//!
//! let now = chrono::Utc::now();
//! let moderator = rbac::find_role(gate.db(), "moderator").await?;
//! rbac::grant_role(gate.db(), rbac::Actor::System, ada.id, moderator.id, None, now).await?;
//! assert!(gate.has_permission(ada.id, "audit.read").await?);
//! # Ok(())
//! # }
//! ```
//!
//! # API keys
//!
//! A key acts for its owner with the scopes it was issued with, as long as the
//! owner holds them. It is shown once; only its SHA-256 is stored, and a
//! checksum rejects typos before any query ([`api_keys`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! # let config = gatehouse::Config::from_values(
//! #     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//! #     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! # )?;
//! # let gate = gatehouse::Gatehouse::from_config(db, &config).await?;
//! # let ada = gate
//! #     .register(gatehouse::NewAccount {
//! #         email: "ada@example.com",
//! #         username: "ada",
//! #         password: "tranquil otter juggles nine lanterns",
//! #     })
//! #     .await?;
//! use gatehouse::Error;
//! use gatehouse::api_keys::{self, DEFAULT_RATE_LIMIT_PER_MINUTE, NewApiKey};
//!
//! let issued = api_keys::issue(
//!     gate.db(),
//!     NewApiKey {
//!         user_id: ada.id,
//!         name: "ci",
//!         scopes: &["users.read"],
//!         rate_limit_per_minute: Some(DEFAULT_RATE_LIMIT_PER_MINUTE),
//!         expires_at: None,
//!     },
//!     chrono::Utc::now(),
//! )
//! .await?;
//! let key = issued.key.expose(); // hand this to the owner, once
//!
//! let verified = gate.verify_api_key(key, Some("203.0.113.7")).await?;
//! assert_eq!(verified.user_id, ada.id);
//! assert!(verified.has_scope("users.read"));
//! assert!(!verified.has_scope("users.delete"));
//!
//! let last = if key.ends_with('A') { 'B' } else { 'A' };
//! let typo = format!("{}{last}", &key[..key.len() - 1]);
//! assert!(matches!(gate.verify_api_key(&typo, None).await, Err(Error::InvalidCredentials)));
//! # Ok(())
//! # }
//! ```
//!
//! # MFA: TOTP enrollment
//!
//! [`mfa::Mfa::enroll`] makes a secret (encrypted at rest under the data key)
//! and the `otpauth://` URI to show as a QR code; the first code from the
//! authenticator app confirms it ([`mfa::Mfa::confirm`]), which turns MFA on and
//! returns ten single-use backup codes. From then on a login needs a second
//! factor.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! # let config = gatehouse::Config::from_values(
//! #     "8f1c2b7a9d4e6f30a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718",
//! #     "3c5e7a9b1d2f4068a9b8c7d6e5f40312d1e2f3a4b5c6d7e8f9a0b1c2d3e4f506",
//! # )?;
//! # let gate = gatehouse::Gatehouse::from_config(db, &config).await?;
//! # let ada = gate
//! #     .register(gatehouse::NewAccount {
//! #         email: "ada@example.com",
//! #         username: "ada",
//! #         password: "tranquil otter juggles nine lanterns",
//! #     })
//! #     .await?;
//! use gatehouse::{ClientInfo, Error, LoginRequest, SecondFactor};
//!
//! let mfa = gate.mfa().expect("built with a data key");
//! let now = chrono::Utc::now();
//! let enrollment = mfa.enroll(gate.db(), ada.id, "Example", "ada", now).await?;
//! assert!(enrollment.otpauth_uri().starts_with("otpauth://totp/"));
//!
//! // What the authenticator app shows now:
//! let code = format!("{:06}", enrollment.secret().code_at(now));
//! let backup_codes = mfa.confirm(gate.db(), ada.id, &code, None, now).await?;
//! assert_eq!(backup_codes.len(), 10);
//!
//! let mut request = LoginRequest {
//!     identifier: "ada",
//!     password: "tranquil otter juggles nine lanterns",
//!     second_factor: None,
//!     client: ClientInfo::default(),
//! };
//! assert!(matches!(gate.login(request).await, Err(Error::MfaRequired)));
//!
//! request.second_factor = Some(backup_codes.expose()[0]);
//! let done = gate.login(request).await?;
//! assert_eq!(done.second_factor, Some(SecondFactor::BackupCode));
//! # Ok(())
//! # }
//! ```
//!
//! # Audit
//!
//! [`audit::AuditEntry`] builds an `audit_logs` row with its request context
//! and checks it against the column sizes before writing;
//! [`audit::find_entries`] reads by user, type and time. The [`audit`] module
//! also ingests in bulk, prunes by each row's retention, and keeps security
//! events and daily metrics.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gatehouse::Error> {
//! # use sea_orm_migration::MigratorTrait;
//! # let mut options = gatehouse::db::connect_options("sqlite::memory:");
//! # options.max_connections(1);
//! # let db = sea_orm::Database::connect(options).await?;
//! # gatehouse::Migrator::up(&db, None).await?;
//! # gatehouse::seed(&db).await?;
//! use gatehouse::Error;
//! use gatehouse::audit::{AuditEntry, AuditQuery, find_entries};
//!
//! let now = chrono::Utc::now();
//! AuditEntry::new("export", "download_report")
//!     .resource("report", "2026-q1")
//!     .client(Some("198.51.100.4"), Some("Firefox/140"))
//!     .http("GET", "/reports/2026-q1", 200)
//!     .record(&db, now)
//!     .await?;
//!
//! let not_an_ip = AuditEntry::new("export", "download_report")
//!     .client(Some("localhost"), None)
//!     .record(&db, now)
//!     .await;
//! assert!(matches!(not_an_ip, Err(Error::InvalidInput { field: "ip_address", .. })));
//!
//! let query = AuditQuery { event_type: Some("export".into()), ..AuditQuery::default() };
//! let entries = find_entries(&db, &query).await?;
//! assert_eq!(entries.len(), 1);
//! assert_eq!(entries[0].resource_id.as_deref(), Some("2026-q1"));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!("gatehouse needs at least one backend feature: `postgres`, `mysql` or `sqlite`");

pub mod accounts;
pub mod api_keys;
pub mod audit;
#[cfg(feature = "axum")]
pub mod axum;
mod client;
pub mod config;
mod crypto;
pub mod db;
pub mod error;
mod handle;
pub mod keys;
pub mod lockout;
pub mod login;
mod lookup;
pub mod mfa;
pub mod rbac;
pub mod schema;
pub mod seed;
pub mod sessions;

#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;

pub use accounts::{
    Account, Accounts, AccountsPolicy, Argon2idHasher, Credentials, NewAccount, PasswordHasher,
};
pub use api_keys::{ApiKey, KeyUsage, NewApiKey, VerifiedKey};
pub use client::ClientInfo;
pub use config::Config;
pub use error::{Constraint, Contention, Error, ReadOnly, constraint_violation, contention};
pub use gatehouse_entity as entity;
pub use gatehouse_migration::Migrator;
pub use handle::{Gatehouse, GatehouseBuilder};
pub use lockout::LockoutPolicy;
pub use login::{LoggedIn, LoginRequest, SecondFactor};
pub use seed::seed;
pub use sessions::{SessionPolicy, Sessions};
