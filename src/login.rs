//! Sign-in as one state machine: every factor is checked before anything
//! about the account changes, and a completed login is recorded at once.
//!
//! 1. The request's form is checked (identifier, password, second factor,
//!    client): malformed input is [`Error::InvalidInput`] and records nothing.
//! 2. One query reads the account and its MFA configuration.
//! 3. The attempt takes its slot (`lockout::claim`) before any secret is
//!    verified: a throttled source gets [`Error::RateLimited`] and no hash runs.
//! 4. Exactly one Argon2 verification: against the account's hash when it is
//!    live, unlocked and under its ceiling, otherwise against the dummy hash.
//!    Unknown, disabled, locked and wrong-password attempts run the same
//!    statements and give the same [`Error::InvalidCredentials`].
//! 5. The second factor when the account has MFA: without one,
//!    [`Error::MfaRequired`] (and the slot is given back: a right password is
//!    no failure); a TOTP code is matched against the decrypted secret. A
//!    used code or step is [`Error::Replayed`] and no guess either.
//! 6. One transaction completes the login: the TOTP step or backup code is
//!    consumed by a conditional `UPDATE`, the account's `last_login_*` set and
//!    its count cleared (only if it is still live and unlocked), the session
//!    created and the `login` audit row written. If any of it does not hold,
//!    nothing of it stays.
//!
//! A failure of any factor is recorded in one transaction of its own: a
//! `failed_login_attempts` row with the factor, the account lock when its
//! ceiling is reached, and a `login` audit row with outcome `failure`, the
//! account's id when known, the factor and the normalized identifier.
//!
//! On a pool, each write above (each slot statement, the failure transaction,
//! the completion transaction) is retried on its own after a concurrent
//! conflict, never the login as a whole: see [`db::retry`](mod@crate::db::retry) for why.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use gatehouse_entity::sea_orm_active_enums::{AttemptKind, AuditOutcome};
use gatehouse_entity::{mfa_configurations, users};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, TransactionSession,
    TransactionTrait,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::Error;
use crate::accounts::{Account, Accounts, Identifier, PasswordHasher, validate};
use crate::audit::{AuditEntry, event_types::LOGIN};
use crate::client::ClientInfo;
use crate::db::retry;
use crate::lockout::{self, Failure};
use crate::mfa::{Mfa, backup, totp};
use crate::sessions::{CreatedSession, Sessions};

/// Audit action of a login with a password only (and of a failed password).
pub const ACTION_PASSWORD: &str = "password_login";
/// Audit action of a login with a password and a TOTP code (and of a failed code).
pub const ACTION_TOTP: &str = "password_totp_login";
/// Audit action of a login with a password and a backup code (and of a failed one).
pub const ACTION_BACKUP_CODE: &str = "password_backup_code_login";

/// A login attempt. `Debug` leaves the password and the code out.
#[derive(Clone, Copy)]
pub struct LoginRequest<'a> {
    /// Email or username.
    pub identifier: &'a str,
    /// The password as typed.
    pub password: &'a str,
    /// A TOTP code (six digits) or a backup code, needed when the account has MFA.
    pub second_factor: Option<&'a str>,
    /// Where the attempt comes from (the source the lockout counts).
    pub client: ClientInfo<'a>,
}

impl fmt::Debug for LoginRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("identifier", &self.identifier)
            .field("password", &"(redacted)")
            .field("second_factor", &self.second_factor.map(|_| "(redacted)"))
            .field("client", &self.client)
            .finish()
    }
}

/// Which second factor a login used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    /// A six-digit TOTP code from the authenticator app.
    Totp,
    /// One of the single-use backup codes.
    BackupCode,
}

/// A successful login: the account, its new session (the token is shown once)
/// and the second factor used, if any.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account signed in, as of the login.
    pub account: Account,
    /// The new session; its token goes to the client once.
    pub session: CreatedSession,
    /// The second factor used; `None` for an account without MFA.
    pub second_factor: Option<SecondFactor>,
}

/// Whether `text` has the shape of a TOTP code rather than a backup code.
fn is_totp_code(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Logs in (see the module docs): credentials, the second factor when the
/// account has MFA, then in one transaction the completed login, a new
/// session and its `login` audit entry.
///
/// # Errors
/// [`Error::InvalidInput`] for malformed input (nothing recorded);
/// [`Error::RateLimited`] when this source must wait or is shut out of the
/// account; [`Error::InvalidCredentials`] for a wrong, unknown, disabled or
/// locked account or a wrong code; [`Error::MfaRequired`] when the account
/// has MFA and no second factor was given; [`Error::Replayed`] for a used
/// TOTP step or backup code; [`Error::Integrity`] when the TOTP secret does
/// not decrypt; a database error.
#[tracing::instrument(name = "gatehouse.login", skip_all, fields(identifier = request.identifier), err(level = "debug"))]
pub async fn login<C, H>(
    db: &C,
    accounts: &Accounts<H>,
    sessions: &Sessions,
    mfa: Option<&Mfa>,
    request: LoginRequest<'_>,
    now: DateTime<Utc>,
) -> Result<LoggedIn, Error>
where
    C: ConnectionTrait + TransactionTrait,
    H: PasswordHasher,
{
    let done = sign_in(db, accounts, mfa, Some(sessions), request, now).await?;
    Ok(LoggedIn {
        account: done.account,
        session: done.session.expect("a session was asked for"),
        second_factor: done.second_factor,
    })
}

/// What [`sign_in`] completed.
pub(crate) struct SignedIn {
    pub account: Account,
    pub session: Option<CreatedSession>,
    pub second_factor: Option<SecondFactor>,
}

/// A second factor as typed, checked for form.
enum Factor {
    Totp(u32),
    BackupCode(String),
}

/// A second factor that matched, still to be consumed when the login completes.
enum Pending {
    Step { config_id: Uuid, step: i64 },
    Backup(String),
}

/// The state machine behind [`login`] and [`Accounts::authenticate`]
/// (which passes no MFA service and no sessions: an account with MFA then
/// needs [`login`]).
pub(crate) async fn sign_in<C, H>(
    db: &C,
    accounts: &Accounts<H>,
    mfa: Option<&Mfa>,
    sessions: Option<&Sessions>,
    request: LoginRequest<'_>,
    now: DateTime<Utc>,
) -> Result<SignedIn, Error>
where
    C: ConnectionTrait + TransactionTrait,
    H: PasswordHasher,
{
    // 1. Form.
    // The session's own rules, so that a login never fails at its last step.
    let checked = request.client.check()?;
    let ip: Option<IpAddr> = checked.ip;
    let identifier = validate::identifier(request.identifier)?;
    let password: SecretString = validate::password_form(request.password)?.into();
    let factor = match request.second_factor {
        None => None,
        Some(code) if is_totp_code(code) => Some(Factor::Totp(totp::parse_code(code)?)),
        Some(code) => Some(Factor::BackupCode(backup::normalize(code)?)),
    };
    let client = Attempted {
        identifier: &identifier,
        ip: ip.map(|ip| ip.to_string()),
        user_agent: request.client.user_agent.filter(|ua| !ua.is_empty()),
    };

    // 2. The account and its MFA configuration, in one query.
    let found = users::Entity::find()
        .filter(crate::accounts::identifier_condition(&identifier))
        .find_also_related(mfa_configurations::Entity)
        .one(db)
        .await?;
    let (user, mfa_config) = match found {
        Some((user, config)) => (Some(user), config.filter(|c| c.is_enabled && c.is_verified)),
        None => (None, None),
    };

    // 3. The slot.
    let source = lockout::source_key(ip);
    // The source's count is the typed identifier's, known account or not; the
    // ceiling is the account's.
    let subject = lockout::unknown_subject(identifier.as_str());
    let account = user.as_ref().map_or(subject, |u| u.id);
    let last_success = user.as_ref().and_then(|u| {
        let from = u.last_login_ip.as_deref().and_then(|t| t.parse().ok());
        (lockout::source_key(from) == source)
            .then_some(u.last_login_at)
            .flatten()
    });
    let policy = accounts.policy().lockout;
    let attempt = lockout::claim(db, &policy, subject, account, &source, last_success, now).await?;

    // 4. One verification.
    let usable = user
        .as_ref()
        .filter(|u| attempt.account_counted && is_live(u) && !u.is_locked);
    let phc = usable.map_or_else(|| accounts.dummy_hash(), |u| u.password_hash.clone());
    let verified = accounts.verify(password.clone(), phc).await?;
    let Some(user) = usable.filter(|_| verified) else {
        let reason = match &user {
            None => "unknown account",
            Some(u) if !is_live(u) => "account disabled",
            Some(u) if u.is_locked || !attempt.account_counted => "account locked",
            Some(_) => "wrong password",
        };
        return Err(fail(
            db,
            accounts,
            user.as_ref(),
            &client,
            AttemptKind::Password,
            reason,
            Error::InvalidCredentials,
            now,
        )
        .await?);
    };

    // 5. The second factor.
    let pending = match (&mfa_config, factor) {
        (None, _) => None,
        (Some(_), None) => {
            lockout::release(db, &attempt).await?;
            return Err(Error::MfaRequired);
        }
        (Some(config), Some(factor)) => {
            let Some(mfa) = mfa else {
                // Fail closed: the account has MFA, this service cannot check it.
                lockout::release(db, &attempt).await?;
                return Err(Error::Config {
                    var: crate::config::DATA_KEY_VAR,
                    reason: "the account has MFA enabled, and this service was built \
                             without MFA: give it the data encryption key to check \
                             second factors"
                        .into(),
                });
            };
            match factor {
                Factor::Totp(code) => match match mfa.match_code(db, config, code, now).await {
                    Ok(found) => found,
                    Err(err) => {
                        // A secret that does not open says nothing about the code.
                        lockout::release(db, &attempt).await?;
                        return Err(err);
                    }
                } {
                    totp::StepMatch::Fresh(step) => Some(Pending::Step {
                        config_id: config.id,
                        step,
                    }),
                    totp::StepMatch::Replayed => {
                        // A used code is no guess: the slot goes back.
                        lockout::release(db, &attempt).await?;
                        return Err(audit_replay(db, user, &client, AttemptKind::Otp, now).await?);
                    }
                    totp::StepMatch::NoMatch => {
                        return Err(fail(
                            db,
                            accounts,
                            Some(user),
                            &client,
                            AttemptKind::Otp,
                            "wrong one-time code",
                            Error::InvalidCredentials,
                            now,
                        )
                        .await?);
                    }
                },
                Factor::BackupCode(code) => Some(Pending::Backup(code)),
            }
        }
    };

    // A renewed hash when the hasher's parameters changed (rare), written
    // with the completed login.
    let renewed = if accounts.hasher().needs_rehash(&user.password_hash) {
        Some(accounts.hash(password).await?)
    } else {
        None
    };

    // 6. Completion, in one transaction: a unit of its own (`db::retry`),
    // whose conditional writes check everything again when it runs again.
    let completed = retry(db, "login.complete", || async {
        let txn = db.begin().await?;
        let second_factor = match &pending {
            None => None,
            Some(Pending::Step { config_id, step }) => {
                if !Mfa::use_step(&txn, *config_id, *step, now).await? {
                    txn.rollback().await?;
                    return Ok(Completion::Replayed(AttemptKind::Otp));
                }
                Some(SecondFactor::Totp)
            }
            Some(Pending::Backup(code)) => {
                let mfa = mfa.expect("a pending backup code comes with the MFA service");
                match mfa.use_backup_code(&txn, user.id, code, now).await? {
                    backup::Consumed::Now => Some(SecondFactor::BackupCode),
                    backup::Consumed::Before => {
                        txn.rollback().await?;
                        return Ok(Completion::Replayed(AttemptKind::BackupCode));
                    }
                    backup::Consumed::Unknown => {
                        txn.rollback().await?;
                        return Ok(Completion::WrongBackupCode);
                    }
                }
            }
        };
        let mut completion = users::Entity::update_many()
            .col_expr(users::Column::FailedLoginCount, Expr::value(0))
            .col_expr(users::Column::LastLoginAt, Expr::value(now))
            .col_expr(users::Column::LastLoginIp, Expr::value(client.ip.clone()))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user.id))
            .filter(live_and_unlocked(now))
            // The password verified is still the account's: a change or reset
            // that committed meanwhile (and revoked the sessions it saw) wins.
            .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()));
        if let Some(renewed) = &renewed {
            completion =
                completion.col_expr(users::Column::PasswordHash, Expr::value(renewed.as_str()));
        }
        if mfa_config.is_none() {
            use sea_orm::sea_query::ExprTrait;
            // Nor was MFA turned on meanwhile.
            completion = completion.filter(
                Condition::all().not().add(Expr::exists(
                    sea_orm::sea_query::Query::select()
                        .expr(Expr::val(1))
                        .from(mfa_configurations::Entity)
                        .and_where(
                            Expr::col((
                                mfa_configurations::Entity,
                                mfa_configurations::Column::UserId,
                            ))
                            .equals((users::Entity, users::Column::Id)),
                        )
                        .and_where(
                            Expr::col((
                                mfa_configurations::Entity,
                                mfa_configurations::Column::IsEnabled,
                            ))
                            .eq(true),
                        )
                        .to_owned(),
                )),
            );
        }
        if completion.exec(&txn).await?.rows_affected != 1 {
            // Locked, disabled, deleted, its password changed or MFA turned on
            // while the login ran.
            txn.rollback().await?;
            return Ok(Completion::AccountChanged);
        }
        let session = match sessions {
            Some(sessions) => Some(
                sessions
                    .insert(
                        &txn,
                        user.id,
                        ClientInfo {
                            ip: client.ip.as_deref(),
                            user_agent: client.user_agent,
                        },
                        now,
                    )
                    .await?,
            ),
            None => None,
        };
        let mut entry = AuditEntry::new(LOGIN, action(second_factor))
            .user(user.id)
            .client(client.ip.as_deref(), client.user_agent);
        if let Some(created) = &session {
            entry = entry.session(created.session.id);
        }
        entry.record(&txn, now).await?;
        txn.commit().await?;
        Ok(Completion::Done {
            session,
            second_factor,
        })
    })
    .await?;
    // Outside the unit: a refusal is recorded once, however often it ran.
    let (session, second_factor) = match completed {
        Completion::Done {
            session,
            second_factor,
        } => (session, second_factor),
        Completion::Replayed(kind) => {
            lockout::release(db, &attempt).await?;
            return Err(audit_replay(db, user, &client, kind, now).await?);
        }
        Completion::WrongBackupCode => {
            return Err(fail(
                db,
                accounts,
                Some(user),
                &client,
                AttemptKind::BackupCode,
                "wrong backup code",
                Error::InvalidCredentials,
                now,
            )
            .await?);
        }
        Completion::AccountChanged => {
            return Err(fail(
                db,
                accounts,
                Some(user),
                &client,
                AttemptKind::Password,
                "account changed during login",
                Error::InvalidCredentials,
                now,
            )
            .await?);
        }
    };
    let mut account = Account::from(user.clone());
    account.failed_login_count = 0;
    account.last_login_at = Some(now);
    account.last_login_ip = client.ip.clone();
    account.updated_at = now;
    Ok(SignedIn {
        account,
        session,
        second_factor,
    })
}

/// How the completion unit ended.
enum Completion {
    /// The login completed, with its session when one was asked for.
    Done {
        session: Option<CreatedSession>,
        second_factor: Option<SecondFactor>,
    },
    /// The TOTP step or backup code was used meanwhile.
    Replayed(AttemptKind),
    /// The backup code is not one of the account's.
    WrongBackupCode,
    /// The account was locked, disabled, deleted, its password changed or MFA
    /// turned on while the login ran.
    AccountChanged,
}

/// The client and identifier of an attempt, normalized, as failures record them.
struct Attempted<'a> {
    identifier: &'a Identifier,
    ip: Option<String>,
    user_agent: Option<&'a str>,
}

fn action(factor: Option<SecondFactor>) -> &'static str {
    match factor {
        None => ACTION_PASSWORD,
        Some(SecondFactor::Totp) => ACTION_TOTP,
        Some(SecondFactor::BackupCode) => ACTION_BACKUP_CODE,
    }
}

/// Whether the account may sign in at all (locks aside).
fn is_live(user: &users::Model) -> bool {
    user.deleted_at.is_none() && user.is_active
}

/// `is_active AND deleted_at IS NULL AND NOT is_locked AND` no running automatic lock.
fn live_and_unlocked(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(users::Column::IsActive.eq(true))
        .add(users::Column::DeletedAt.is_null())
        .add(users::Column::IsLocked.eq(false))
        .add(
            Condition::any()
                .add(users::Column::LockedUntil.is_null())
                .add(users::Column::LockedUntil.lte(now)),
        )
}

/// Audits a used code or step presented again (not counted as a guess) and
/// gives back [`Error::Replayed`].
async fn audit_replay<C: ConnectionTrait>(
    db: &C,
    user: &users::Model,
    client: &Attempted<'_>,
    kind: AttemptKind,
    now: DateTime<Utc>,
) -> Result<Error, Error> {
    failure_entry(Some(user.id), client, kind, "used code presented again")
        .record(db, now)
        .await?;
    Ok(Error::Replayed)
}

/// The `login` audit row of a refused factor.
fn failure_entry(
    user_id: Option<Uuid>,
    client: &Attempted<'_>,
    kind: AttemptKind,
    reason: &str,
) -> AuditEntry {
    let (action, factor) = match kind {
        AttemptKind::Otp => (ACTION_TOTP, "otp"),
        AttemptKind::BackupCode => (ACTION_BACKUP_CODE, "backup_code"),
        _ => (ACTION_PASSWORD, "password"),
    };
    let mut entry = AuditEntry::new(LOGIN, action)
        .outcome(AuditOutcome::Failure)
        .client(client.ip.as_deref(), client.user_agent)
        .metadata(serde_json::json!({
            "factor": factor,
            "identifier": client.identifier.as_str(),
            "reason": reason,
        }));
    if let Some(id) = user_id {
        entry = entry.user(id);
    }
    entry
}

/// Records a failed factor (see the module docs) and gives back `answer`,
/// the error the caller returns.
#[allow(clippy::too_many_arguments)]
async fn fail<C, H>(
    db: &C,
    accounts: &Accounts<H>,
    user: Option<&users::Model>,
    client: &Attempted<'_>,
    kind: AttemptKind,
    reason: &str,
    answer: Error,
    now: DateTime<Utc>,
) -> Result<Error, Error>
where
    C: ConnectionTrait + TransactionTrait,
    H: PasswordHasher,
{
    let user_id = user.map(|u| u.id);
    retry(db, "login.fail", || async {
        let txn = db.begin().await?;
        lockout::record_failure(
            &txn,
            &accounts.policy().lockout,
            Failure {
                user_id,
                identifier: client.identifier.as_str(),
                kind,
                ip_address: client.ip.as_deref(),
                user_agent: client.user_agent,
                reason,
            },
            now,
        )
        .await?;
        failure_entry(user_id, client, kind, reason)
            .record(&txn, now)
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await?;
    Ok(answer)
}

/// The password as the caller typed it, for [`Accounts::authenticate`].
pub(crate) fn password_only<'a>(
    identifier: &'a str,
    password: &'a str,
    client: ClientInfo<'a>,
) -> LoginRequest<'a> {
    LoginRequest {
        identifier,
        password,
        second_factor: None,
        client,
    }
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
            client: ClientInfo {
                ip: None,
                user_agent: None,
            },
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("horse"));
        assert!(!shown.contains("654321"));
        assert!(shown.contains("ada@example.com"));
    }
}
