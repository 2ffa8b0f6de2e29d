//! gatehouse's tables as SeaORM 2 entities: one module per table, plus the
//! string-backed enumerations they share. Plain declarations only; behaviour
//! lives in the `gatehouse` crate.

#![warn(missing_docs)]

pub mod prelude;
pub mod sea_orm_active_enums;

pub mod api_keys;
pub mod audit_log_basic;
pub mod audit_logs;
pub mod data_classification;
pub mod encryption_keys;
pub mod failed_login_attempts;
pub mod login_throttles;
pub mod mfa_backup_codes;
pub mod mfa_configurations;
pub mod mfa_trusted_devices;
pub mod password_history;
pub mod permissions;
pub mod role_permissions;
pub mod roles;
pub mod security_events;
pub mod security_metrics;
pub mod session_audit_log;
pub mod sessions;
pub mod user_roles;
pub mod users;
