//! `security_metrics`: one row of aggregated security counters per day.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub metric_date: Date,
    pub successful_logins: i64,
    pub failed_logins: i64,
    pub failed_otp_attempts: i64,
    pub lockouts: i64,
    pub new_users: i64,
    pub sessions_created: i64,
    pub sessions_revoked: i64,
    pub api_key_uses: i64,
    pub suspicious_events: i64,
    pub security_events_opened: i64,
    pub security_events_resolved: i64,
    pub unique_ips: i64,
    pub computed_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
