//! `encryption_keys`: metadata and rotation history of the keys gatehouse uses.
//! Key material is never stored here; `fingerprint` identifies it.

use super::sea_orm_active_enums::{KeyStatus, KeyType};
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "encryption_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub key_type: KeyType,
    pub version: i32,
    pub status: KeyStatus,
    pub algorithm: String,
    /// Keyed digest identifying the material (not the material).
    pub fingerprint: String,
    pub activated_at: DateTimeUtc,
    pub rotated_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub rotated_by: Option<Uuid>,
    pub rotation_reason: Option<String>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "rotated_by", to = "id", on_delete = "SetNull")]
    pub rotator: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
