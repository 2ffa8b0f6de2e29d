//! Entity types under their table names, for `use gatehouse_entity::prelude::*`.

pub use super::api_keys::Entity as ApiKeys;
pub use super::audit_log_basic::Entity as AuditLogBasic;
pub use super::audit_logs::Entity as AuditLogs;
pub use super::data_classification::Entity as DataClassification;
pub use super::encryption_keys::Entity as EncryptionKeys;
pub use super::failed_login_attempts::Entity as FailedLoginAttempts;
pub use super::login_throttles::Entity as LoginThrottles;
pub use super::mfa_backup_codes::Entity as MfaBackupCodes;
pub use super::mfa_configurations::Entity as MfaConfigurations;
pub use super::mfa_trusted_devices::Entity as MfaTrustedDevices;
pub use super::password_history::Entity as PasswordHistory;
pub use super::permissions::Entity as Permissions;
pub use super::role_permissions::Entity as RolePermissions;
pub use super::roles::Entity as Roles;
pub use super::security_events::Entity as SecurityEvents;
pub use super::security_metrics::Entity as SecurityMetrics;
pub use super::session_audit_log::Entity as SessionAuditLog;
pub use super::sessions::Entity as Sessions;
pub use super::user_roles::Entity as UserRoles;
pub use super::users::Entity as Users;
