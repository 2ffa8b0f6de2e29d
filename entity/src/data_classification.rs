//! `data_classification`: sensitivity and compliance tags for each sensitive
//! column of the schema, with access tracking.

use super::sea_orm_active_enums::Sensitivity;
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_classification")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique_key = "column")]
    pub table_name: String,
    #[sea_orm(unique_key = "column")]
    pub column_name: String,
    pub sensitivity: Sensitivity,
    /// What kind of data: `credential`, `pii`, `network`, ...
    pub data_category: String,
    /// JSON array of compliance frameworks, for example `["GDPR", "PCI-DSS"]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub compliance_tags: Json,
    pub encryption_required: bool,
    pub retention_days: Option<i32>,
    pub description: Option<String>,
    pub access_count: i64,
    pub last_accessed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
