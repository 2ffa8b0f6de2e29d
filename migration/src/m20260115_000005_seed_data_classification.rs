//! Classifies this schema's own sensitive columns in `data_classification`:
//! credentials (hashes, encrypted secrets), personal data and network
//! identifiers, with their compliance tags.
//!
//! Frozen data; row ids derive from the position in [`COLUMNS`], so `down`
//! removes exactly these rows.

use crate::m20260115_000003_create_security_enhancements::data_classification::DataClassification;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;

/// (table, column, sensitivity, category, compliance tags, must be encrypted, retention days)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<i32>,
);

const CREDENTIAL: &str = r#"["OWASP","PCI-DSS","SOC2"]"#;
const PERSONAL: &str = r#"["GDPR","SOC2"]"#;
const AUDIT: &str = r#"["GDPR","SOC2","PCI-DSS"]"#;

const COLUMNS: [Row; 26] = [
    (
        "users",
        "email",
        "confidential",
        "pii",
        PERSONAL,
        false,
        None,
    ),
    (
        "users", "username", "internal", "pii", PERSONAL, false, None,
    ),
    (
        "users",
        "password_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "users",
        "password_reset_token_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "users",
        "last_login_ip",
        "confidential",
        "network",
        PERSONAL,
        false,
        None,
    ),
    (
        "sessions",
        "token_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "sessions",
        "ip_address",
        "confidential",
        "network",
        PERSONAL,
        false,
        None,
    ),
    (
        "sessions",
        "user_agent",
        "internal",
        "device",
        PERSONAL,
        false,
        None,
    ),
    (
        "sessions",
        "security_hash",
        "restricted",
        "integrity",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "sessions",
        "created_ip_hash",
        "confidential",
        "network",
        PERSONAL,
        false,
        None,
    ),
    (
        "api_keys",
        "key_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "api_keys",
        "last_used_ip",
        "confidential",
        "network",
        PERSONAL,
        false,
        None,
    ),
    (
        "audit_log_basic",
        "ip_address",
        "confidential",
        "network",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "audit_logs",
        "ip_address",
        "confidential",
        "network",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "audit_logs",
        "user_agent",
        "internal",
        "device",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "audit_logs",
        "metadata",
        "confidential",
        "audit",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "mfa_configurations",
        "secret_encrypted",
        "restricted",
        "credential",
        CREDENTIAL,
        true,
        None,
    ),
    (
        "mfa_backup_codes",
        "code_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "mfa_trusted_devices",
        "device_token_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "mfa_trusted_devices",
        "ip_address",
        "confidential",
        "network",
        PERSONAL,
        false,
        None,
    ),
    (
        "password_history",
        "password_hash",
        "restricted",
        "credential",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "failed_login_attempts",
        "identifier",
        "confidential",
        "pii",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "failed_login_attempts",
        "ip_address",
        "confidential",
        "network",
        AUDIT,
        false,
        Some(90),
    ),
    (
        "security_events",
        "ip_address",
        "confidential",
        "network",
        AUDIT,
        false,
        None,
    ),
    (
        "encryption_keys",
        "fingerprint",
        "internal",
        "key_metadata",
        CREDENTIAL,
        false,
        None,
    ),
    (
        "session_audit_log",
        "ip_hash",
        "confidential",
        "network",
        AUDIT,
        false,
        Some(90),
    ),
];

fn row_id(position: usize) -> Uuid {
    Uuid::parse_str(&format!("019bbef3-b000-7000-8000-0003{:08x}", position + 1))
        .expect("frozen classification ids are valid UUIDs")
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DataClassification as D;
        let mut insert = Query::insert();
        insert.into_table(D::Table).columns([
            D::Id,
            D::TableName,
            D::ColumnName,
            D::Sensitivity,
            D::DataCategory,
            D::ComplianceTags,
            D::EncryptionRequired,
            D::RetentionDays,
        ]);
        for (position, (table, column, sensitivity, category, tags, encrypted, retention)) in
            COLUMNS.into_iter().enumerate()
        {
            let tags: serde_json::Value =
                serde_json::from_str(tags).expect("frozen compliance tags are JSON");
            insert.values_panic([
                row_id(position).into(),
                table.into(),
                column.into(),
                sensitivity.into(),
                category.into(),
                tags.into(),
                encrypted.into(),
                retention.into(),
            ]);
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ids: Vec<Uuid> = (0..COLUMNS.len()).map(row_id).collect();
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(DataClassification::Table)
                    .and_where(Expr::col(DataClassification::Id).is_in(ids))
                    .to_owned(),
            )
            .await
    }
}
