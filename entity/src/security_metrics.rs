//! `security_metrics`: one row of aggregated security counters per day.

use sea_orm::entity::prelude::*;

/// The security counters of one UTC day.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_metrics")]
pub struct Model {
    /// The row's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The UTC day counted; one row each.
    #[sea_orm(unique)]
    pub metric_date: Date,
    /// Logins that completed.
    pub successful_logins: i64,
    /// Failed sign-in attempts.
    pub failed_logins: i64,
    /// Failed TOTP and backup-code attempts.
    pub failed_otp_attempts: i64,
    /// Accounts locked automatically.
    pub lockouts: i64,
    /// Accounts registered.
    pub new_users: i64,
    /// Sessions created.
    pub sessions_created: i64,
    /// Sessions revoked.
    pub sessions_revoked: i64,
    /// API key verifications.
    pub api_key_uses: i64,
    /// Audit entries flagged suspicious.
    pub suspicious_events: i64,
    /// Security events opened.
    pub security_events_opened: i64,
    /// Security events resolved.
    pub security_events_resolved: i64,
    /// Distinct client addresses seen.
    pub unique_ips: i64,
    /// When the row was computed.
    pub computed_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
