//! `session_audit_log`: what happened to sessions (created, revoked, expired,
//! tampered with, cleaned up), kept after the session row is gone.

use super::sea_orm_active_enums::SessionEvent;
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Set to NULL when the session row is deleted; the entry stays.
    pub session_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub event: SessionEvent,
    pub reason: Option<String>,
    pub risk_score: Option<i32>,
    pub ip_hash: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "session_id", to = "id", on_delete = "SetNull")]
    pub session: BelongsTo<Option<super::sessions::Entity>>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
