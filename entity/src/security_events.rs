//! `security_events`: security incidents with severity, alerting and a
//! resolution workflow.

use super::sea_orm_active_enums::{EventStatus, Severity};
use sea_orm::entity::prelude::*;

/// A security incident and its resolution.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_events")]
pub struct Model {
    /// The event's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What kind of event (e.g. `credential_stuffing`).
    pub event_type: String,
    /// How serious it is.
    pub severity: Severity,
    /// Where it is in the resolution workflow.
    pub status: EventStatus,
    /// The user it concerns, if any.
    pub user_id: Option<Uuid>,
    /// The address it came from, if known.
    pub ip_address: Option<String>,
    /// What happened.
    pub description: String,
    /// Free-form JSON details.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    /// Whether an alert went out for it.
    pub alert_sent: bool,
    /// When it was resolved.
    pub resolved_at: Option<DateTimeUtc>,
    /// Who resolved it.
    pub resolved_by: Option<Uuid>,
    /// How it was resolved.
    pub resolution_notes: Option<String>,
    /// When it was opened.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// The user it concerns.
    #[sea_orm(
        belongs_to,
        relation_enum = "User",
        from = "user_id",
        to = "id",
        on_delete = "SetNull"
    )]
    pub user: BelongsTo<Option<super::users::Entity>>,
    /// The user who resolved it.
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
