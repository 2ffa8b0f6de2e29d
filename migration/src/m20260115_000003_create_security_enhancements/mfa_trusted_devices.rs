//! `mfa_trusted_devices`: remembered devices, by hashed token, until expiry.

use crate::columns::*;
use crate::m20260115_000001_create_initial_schema::users::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden, Clone)]
pub enum MfaTrustedDevices {
    Table,
    Id,
    UserId,
    DeviceTokenHash,
    DeviceName,
    IpAddress,
    UserAgent,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
}

pub async fn create(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_database_backend();
    let t = MfaTrustedDevices::Table;
    manager
        .create_table(
            create_table(db, t.clone())
                .col(pk_uuid(MfaTrustedDevices::Id))
                .col(ColumnDef::new(MfaTrustedDevices::UserId).uuid().not_null())
                .col(string_len(MfaTrustedDevices::DeviceTokenHash, 64))
                .col(string_len_null(MfaTrustedDevices::DeviceName, 255))
                .col(string_len_null(MfaTrustedDevices::IpAddress, 45))
                .col(string_len_null(MfaTrustedDevices::UserAgent, 512))
                .col(timestamp_utc_now(db, MfaTrustedDevices::CreatedAt))
                .col(timestamp_utc_null(db, MfaTrustedDevices::LastUsedAt))
                .col(timestamp_utc(db, MfaTrustedDevices::ExpiresAt))
                .col(timestamp_utc_null(db, MfaTrustedDevices::RevokedAt))
                .foreign_key(&mut foreign_key(
                    t.clone(),
                    MfaTrustedDevices::UserId,
                    Users::Table,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(t.clone(), &[MfaTrustedDevices::DeviceTokenHash])
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(
            t,
            &[MfaTrustedDevices::UserId, MfaTrustedDevices::ExpiresAt],
        ))
        .await
}
