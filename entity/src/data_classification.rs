//! `data_classification`: sensitivity and compliance tags for each sensitive
//! column of the schema, with access tracking.

use super::sea_orm_active_enums::Sensitivity;
use sea_orm::entity::prelude::*;

/// The classification of one column of the schema.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_classification")]
pub struct Model {
    /// The row's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The classified column's table.
    #[sea_orm(unique_key = "column")]
    pub table_name: String,
    /// The classified column; unique with its table.
    #[sea_orm(unique_key = "column")]
    pub column_name: String,
    /// How sensitive the data is.
    pub sensitivity: Sensitivity,
    /// What kind of data: `credential`, `pii`, `network`, ...
    pub data_category: String,
    /// JSON array of compliance frameworks, for example `["GDPR", "PCI-DSS"]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub compliance_tags: Json,
    /// Whether the column must be encrypted at rest.
    pub encryption_required: bool,
    /// Days the data may be kept; NULL for no limit.
    pub retention_days: Option<i32>,
    /// What the column holds.
    pub description: Option<String>,
    /// Recorded accesses to the column.
    pub access_count: i64,
    /// When an access was last recorded.
    pub last_accessed_at: Option<DateTimeUtc>,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
