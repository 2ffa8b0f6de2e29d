//! `audit_log_basic`: the initial, minimal audit trail of user actions.

use sea_orm::entity::prelude::*;

/// One entry of the minimal audit trail.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log_basic")]
pub struct Model {
    /// The entry's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user who acted; NULL when unknown or deleted.
    pub user_id: Option<Uuid>,
    /// What was done.
    pub action: String,
    /// The kind of resource acted on (e.g. `api_key`).
    pub resource_type: Option<String>,
    /// Identifier of the affected row in any table, so not a foreign key.
    pub resource_id: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Free-form JSON details.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    /// When it happened.
    pub created_at: DateTimeUtc,
    /// The user who acted.
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "SetNull")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
