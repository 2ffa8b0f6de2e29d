//! Seed 000, migration 002: full audit logs, encryption key records, MFA
//! (configuration, backup codes and trusted devices in their own tables),
//! password history, failed logins, security events, daily metrics and data
//! classification. One file per table; `down` drops them in reverse order.

use sea_orm_migration::prelude::*;

pub mod audit_logs;
pub mod data_classification;
pub mod encryption_keys;
pub mod failed_login_attempts;
pub mod mfa_backup_codes;
pub mod mfa_configurations;
pub mod mfa_trusted_devices;
pub mod password_history;
pub mod security_events;
pub mod security_metrics;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20260115_000003_create_security_enhancements"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        audit_logs::create(manager).await?;
        encryption_keys::create(manager).await?;
        mfa_configurations::create(manager).await?;
        mfa_backup_codes::create(manager).await?;
        mfa_trusted_devices::create(manager).await?;
        password_history::create(manager).await?;
        failed_login_attempts::create(manager).await?;
        security_events::create(manager).await?;
        security_metrics::create(manager).await?;
        data_classification::create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            data_classification::DataClassification::Table.into_iden(),
            security_metrics::SecurityMetrics::Table.into_iden(),
            security_events::SecurityEvents::Table.into_iden(),
            failed_login_attempts::FailedLoginAttempts::Table.into_iden(),
            password_history::PasswordHistory::Table.into_iden(),
            mfa_trusted_devices::MfaTrustedDevices::Table.into_iden(),
            mfa_backup_codes::MfaBackupCodes::Table.into_iden(),
            mfa_configurations::MfaConfigurations::Table.into_iden(),
            encryption_keys::EncryptionKeys::Table.into_iden(),
            audit_logs::AuditLogs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
