//! gatehouse: the security data layer. Typed access to the tables declared in
//! the `entity` crate and built by the `migration` crate, on PostgreSQL,
//! MySQL/MariaDB and SQLite.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod keys;
pub mod lockout;
pub mod login;
pub mod lookup;
pub mod mfa;
pub mod rbac;
pub mod schema;
pub mod seed;
pub mod sessions;

pub use accounts::{Account, Accounts, Argon2idHasher, PasswordHasher};
pub use api_keys::{ApiKey, VerifiedKey};
pub use config::Config;
pub use entity;
pub use error::{Constraint, Error, constraint_violation};
pub use migration::Migrator;
pub use seed::seed;
pub use sessions::{SessionPolicy, Sessions};
