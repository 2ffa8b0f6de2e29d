//! `security_events`: security incidents with severity, alerting and a
//! resolution workflow.

use super::sea_orm_active_enums::{EventStatus, Severity};
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_type: String,
    pub severity: Severity,
    pub status: EventStatus,
    pub user_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub description: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    pub alert_sent: bool,
    pub resolved_at: Option<DateTimeUtc>,
    pub resolved_by: Option<Uuid>,
    pub resolution_notes: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(
        belongs_to,
        relation_enum = "User",
        from = "user_id",
        to = "id",
        on_delete = "SetNull"
    )]
    pub user: BelongsTo<Option<super::users::Entity>>,
    #[sea_orm(
        belongs_to,
        relation_enum = "ResolvedBy",
        from = "resolved_by",
        to = "id",
        on_delete = "SetNull"
    )]
    pub resolver: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
