//! `audit_logs`: the full audit trail: request and response context, security
//! flags, geography, timings and a per-row retention period.

use super::sea_orm_active_enums::{AuditOutcome, RiskLevel};
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub event_type: String,
    pub action: String,
    pub outcome: AuditOutcome,
    pub resource_type: Option<String>,
    /// Identifier of the affected row in any table, so not a foreign key.
    pub resource_id: Option<String>,
    /// Correlation id of the request, issued outside the database.
    pub request_id: Option<String>,
    pub http_method: Option<String>,
    pub request_path: Option<String>,
    pub status_code: Option<i32>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub is_suspicious: bool,
    pub risk_level: RiskLevel,
    pub country_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub duration_ms: Option<i32>,
    pub response_size_bytes: Option<i64>,
    /// Days this row is kept; the retention prune removes it afterwards.
    pub retention_days: i32,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
    #[sea_orm(belongs_to, from = "session_id", to = "id", on_delete = "SetNull")]
    pub session: BelongsTo<Option<super::sessions::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
