//! `data_classification`: sensitivity and compliance tags per column.

use crate::columns::*;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum DataClassification {
    Table,
    Id,
    TableName,
    ColumnName,
    Sensitivity,
    DataCategory,
    ComplianceTags,
    EncryptionRequired,
    RetentionDays,
    Description,
    AccessCount,
    LastAccessedAt,
    CreatedAt,
    UpdatedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use DataClassification as D;
    let db = manager.get_database_backend();
    manager
        .create_table(
            create_table(db, D::Table)
                .col(pk_uuid(D::Id))
                .col(string_len(D::TableName, 64))
                .col(string_len(D::ColumnName, 64))
                .col(string_len(D::Sensitivity, 16))
                .col(string_len(D::DataCategory, 32))
                .col(json_binary(D::ComplianceTags))
                .col(boolean(D::EncryptionRequired).default(false))
                .col(integer_null(D::RetentionDays))
                .col(text_null(D::Description))
                .col(big_integer(D::AccessCount).default(0))
                .col(timestamp_utc_null(db, D::LastAccessedAt))
                .col(timestamp_utc_now(db, D::CreatedAt))
                .col(timestamp_utc_now(db, D::UpdatedAt))
                .check(Check::from(one_of(
                    "data_classification",
                    D::Sensitivity,
                    &["public", "internal", "confidential", "restricted"],
                )))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(D::Table, &[D::TableName, D::ColumnName])
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(D::Table, &[D::Sensitivity]))
        .await
}
