//! gatehouse: the security data layer of an application. Users, roles and
//! permissions, sessions, API keys, MFA and audit, as the SeaORM entities of
//! [`gatehouse_entity`] built by the migrations of [`gatehouse_migration`],
//! on PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! An application keeps one [`Gatehouse`] in its state and calls it from
//! request handlers; each area's module has the lower-level functions, each
//! generic over `C: ConnectionTrait` so it runs on a pool or inside the
//! caller's transaction. Errors are one [`Error`] enum.
//!
//! Features: `postgres`, `mysql`, `sqlite` (the backends, all on by
//! default; enable at least one), `cli` (the `gatehouse` operator binary, on
//! by default; the library needs none of its dependencies), `axum` (extractors,
//! a permission guard, the session cookie and CSRF protection for axum 0.8:
//! [`axum`](crate::axum) module).

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

pub use accounts::{Account, Accounts, Argon2idHasher, NewAccount, PasswordHasher};
pub use api_keys::{ApiKey, VerifiedKey};
pub use client::ClientInfo;
pub use config::Config;
pub use error::{Constraint, Error, constraint_violation};
pub use gatehouse_entity as entity;
pub use gatehouse_migration::Migrator;
pub use handle::{Gatehouse, GatehouseBuilder};
pub use login::{LoggedIn, LoginRequest, SecondFactor};
pub use seed::seed;
pub use sessions::{SessionPolicy, Sessions};
