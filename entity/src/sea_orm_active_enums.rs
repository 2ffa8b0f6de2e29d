//! Enumerations stored portably as short strings (a `VARCHAR` with a `CHECK`
//! listing the values on every backend), never as native `ENUM` types.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Risk attached to an audit entry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Routine.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
}

/// Severity of a security event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
}

/// Where a security event is in its resolution workflow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Not looked at yet.
    Open,
    /// Being looked at.
    Investigating,
    /// Dealt with.
    Resolved,
    /// Not an incident after all.
    FalsePositive,
}

/// What an encryption key is used for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// Signing of JSON Web Tokens (recorded, unused by gatehouse itself).
    Jwt,
    /// The HMAC key (`HMAC_KEY`): session seals, IP hashes, backup codes.
    Session,
    /// The data encryption key (`DATA_ENCRYPTION_KEY`): TOTP secrets.
    Data,
    /// API key material (recorded, unused by gatehouse itself).
    Api,
}

/// Lifecycle of an encryption key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// The version in use; one per key type.
    Active,
    /// Replaced by a newer version; may still verify from the key ring.
    Rotated,
    /// Must verify nothing, ring or not.
    Compromised,
}

/// Which factor a failed login attempt was for; each has its own counter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// A password.
    Password,
    /// A TOTP code.
    Otp,
    /// A backup code.
    BackupCode,
}

/// Outcome of an audited action.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was refused (wrong credentials, not allowed, ...).
    Failure,
    /// It failed for another reason.
    Error,
}

/// Sensitivity of a classified column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// No restriction.
    Public,
    /// Inside the organisation only (e.g. usernames).
    Internal,
    /// Need to know (e.g. emails, IP addresses).
    Confidential,
    /// Credentials and secrets: the strictest handling.
    Restricted,
}

/// What happened to a session, as written to `session_audit_log`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(32))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum SessionEvent {
    /// The session was created at a login.
    Created,
    /// A validation was recorded (gatehouse itself records none).
    Validated,
    /// The session was revoked (logout, password change, operator, ...).
    Revoked,
    /// Removed past its absolute or idle timeout.
    Expired,
    /// Revoked because its risk score reached the threshold.
    RiskRevoked,
    /// Its seal did not verify: the row was changed outside gatehouse.
    TamperDetected,
    /// Removed by cleanup for another reason (revoked or unsealed).
    CleanedUp,
}

/// Second factor method of an MFA configuration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::N(16))",
    rename_all = "snake_case"
)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    /// RFC 6238 time-based one-time passwords.
    Totp,
}
