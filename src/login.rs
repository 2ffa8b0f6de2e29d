//! Password login end to end: credentials, the second factor when the account
//! has MFA, a new session, and the `login` audit entry that the daily
//! metrics count as a successful login.

use std::fmt;

use chrono::{DateTime, Utc};
use entity::sea_orm_active_enums::AuditOutcome;
use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};

use crate::Error;
use crate::accounts::{Account, Accounts, Credentials, PasswordHasher};
use crate::audit::{AuditEntry, event_types::LOGIN};
use crate::mfa::{ClientInfo, Mfa};
use crate::sessions::{Client, CreatedSession, Sessions};

/// Audit action of a login with a password only.
pub const ACTION_PASSWORD: &str = "password_login";
/// Audit action of a login with a password and a TOTP code.
pub const ACTION_TOTP: &str = "password_totp_login";
/// Audit action of a login with a password and a backup code.
pub const ACTION_BACKUP_CODE: &str = "password_backup_code_login";

/// A login attempt. `Debug` leaves the password and the code out.
#[derive(Clone, Copy)]
pub struct LoginRequest<'a> {
    /// Email or username.
    pub identifier: &'a str,
    pub password: &'a str,
    /// A TOTP code (six digits) or a backup code, needed when the account has MFA.
    pub second_factor: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("identifier", &self.identifier)
            .field("password", &"(redacted)")
            .field("second_factor", &self.second_factor.map(|_| "(redacted)"))
            .field("ip_address", &self.ip_address)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// Which second factor a login used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    BackupCode,
}

/// A successful login: the account, its new session (the token is shown once)
/// and the second factor used, if any.
#[derive(Debug)]
pub struct LoggedIn {
    pub account: Account,
    pub session: CreatedSession,
    pub second_factor: Option<SecondFactor>,
}

/// Whether `text` has the shape of a TOTP code rather than a backup code.
fn is_totp_code(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Logs in: [`Accounts::authenticate`] (lockout, rehash), then the second
/// factor if the account has MFA enabled, then a new session and its `login`
/// audit entry, written in one transaction. A refused attempt is audited
/// with outcome `failure` (the failure itself is in `failed_login_attempts`).
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed IP address or user agent (nothing
/// recorded); as [`Accounts::authenticate`]; [`Error::MfaRequired`] when the account has
/// MFA and no second factor was given; as [`Mfa::verify_totp`] and
/// [`Mfa::verify_backup_code`] for a wrong one; as [`Sessions::create`].
pub async fn login<C, H>(
    db: &C,
    accounts: &Accounts<H>,
    sessions: &Sessions<'_>,
    mfa: &Mfa<'_>,
    request: LoginRequest<'_>,
    now: DateTime<Utc>,
) -> Result<LoggedIn, Error>
where
    C: ConnectionTrait + TransactionTrait,
    H: PasswordHasher,
{
    ClientInfo {
        ip_address: request.ip_address,
        user_agent: request.user_agent,
    }
    .validate()?;
    let result = login_steps(db, accounts, sessions, mfa, request, now).await;
    if let Err(err) = &result
        && refused(err)
    {
        AuditEntry::new(LOGIN, ACTION_PASSWORD)
            .outcome(AuditOutcome::Failure)
            .client(request.ip_address, request.user_agent)
            .metadata(serde_json::json!({ "reason": err.to_string() }))
            .record(db, now)
            .await?;
    }
    result
}

/// Errors that are a refused login (worth an audit row), not bad input.
fn refused(err: &Error) -> bool {
    matches!(
        err,
        Error::InvalidCredentials
            | Error::Locked { .. }
            | Error::MfaRequired
            | Error::Replayed
            | Error::Expired
            | Error::Revoked
    )
}

async fn login_steps<C, H>(
    db: &C,
    accounts: &Accounts<H>,
    sessions: &Sessions<'_>,
    mfa: &Mfa<'_>,
    request: LoginRequest<'_>,
    now: DateTime<Utc>,
) -> Result<LoggedIn, Error>
where
    C: ConnectionTrait + TransactionTrait,
    H: PasswordHasher,
{
    let credentials = Credentials {
        identifier: request.identifier,
        password: request.password,
        ip_address: request.ip_address,
        user_agent: request.user_agent,
    };
    let account = accounts.authenticate(db, credentials, now).await?;
    let second_factor = if mfa.is_enabled(db, account.id).await? {
        let code = request.second_factor.ok_or(Error::MfaRequired)?;
        let client = ClientInfo {
            ip_address: request.ip_address,
            user_agent: request.user_agent,
        };
        if is_totp_code(code) {
            mfa.verify_totp(db, account.id, code, client, now).await?;
            Some(SecondFactor::Totp)
        } else {
            mfa.verify_backup_code(db, account.id, code, client, now)
                .await?;
            Some(SecondFactor::BackupCode)
        }
    } else {
        None
    };
    let action = match second_factor {
        None => ACTION_PASSWORD,
        Some(SecondFactor::Totp) => ACTION_TOTP,
        Some(SecondFactor::BackupCode) => ACTION_BACKUP_CODE,
    };
    let client = Client {
        ip: request.ip_address,
        user_agent: request.user_agent,
    };
    let txn = db.begin().await?;
    let session = sessions.create(&txn, account.id, client, now).await?;
    AuditEntry::new(LOGIN, action)
        .user(account.id)
        .session(session.session.id)
        .client(request.ip_address, request.user_agent)
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(LoggedIn {
        account,
        session,
        second_factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_are_a_totp_code_anything_else_a_backup_code() {
        assert!(is_totp_code("123456"));
        assert!(is_totp_code("123 456"));
        assert!(!is_totp_code("12345"));
        assert!(!is_totp_code("ABCD-EFGH-JK"));
        assert!(!is_totp_code("1234567"));
    }

    #[test]
    fn debug_leaves_out_password_and_code() {
        let request = LoginRequest {
            identifier: "ada@example.com",
            password: "correct horse battery staple",
            second_factor: Some("654321"),
            ip_address: None,
            user_agent: None,
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("horse"));
        assert!(!shown.contains("654321"));
        assert!(shown.contains("ada@example.com"));
    }
}
