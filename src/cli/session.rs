//! `gatehouse login` and `gatehouse session validate|revoke|cleanup`.

use std::process::ExitCode;

use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::context::{Access, CommonArgs, Context, Failure, Group, config};
use super::{input, output};
use crate::accounts::{Accounts, Argon2idHasher};
use crate::client::ClientInfo;
use crate::login::{LoginRequest, login};
use crate::mfa::Mfa;
use crate::sessions::{SessionPolicy, Sessions};

/// Reason recorded when an operator revokes sessions.
pub const OPERATOR_REASON: &str = "revoked by operator";

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Email or username.
    identifier: String,
    /// Client IP address to record.
    #[arg(long)]
    ip: Option<String>,
    /// Client user agent to record.
    #[arg(long)]
    user_agent: Option<String>,
}

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Validate a session token read from stdin: exit 0 valid, 1 refused.
    Validate {
        /// Client IP of the request (a change raises the risk score).
        #[arg(long)]
        ip: Option<String>,
        /// Client user agent of the request.
        #[arg(long)]
        user_agent: Option<String>,
    },
    /// Revoke one session by id, or every session of a user.
    Revoke {
        /// The session's id.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        session_id: Option<Uuid>,
        /// Revoke all sessions of this user (id, email or username).
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete expired, revoked and risky sessions in batches, auditing each, and stale login throttles.
    Cleanup,
}

/// Refuses a malformed `--ip` or `--user-agent` before anything is read or written.
fn check_client(ip: Option<&str>, user_agent: Option<&str>) -> Result<(), Failure> {
    ClientInfo { ip, user_agent }
        .validate()
        .map_err(|err| Failure::Usage(format!("{err} (--ip, --user-agent)")))
}

pub async fn run_login(args: LoginArgs) -> Result<ExitCode, Failure> {
    check_client(args.ip.as_deref(), args.user_agent.as_deref())?;
    let config = config()?;
    let ctx = Context::open(&args.common, Access::Write).await?;
    let accounts = Accounts::new(Argon2idHasher::default()).await?;
    let sessions = Sessions::load_with_previous(
        &ctx.db,
        &config.hmac_key,
        &config.hmac_previous,
        SessionPolicy::default(),
    )
    .await?;
    let mfa = Mfa::new(&config);
    mfa.ensure_keys(&ctx.db).await?;
    let password = input::secret("password", false)?;
    // Ask for the second factor up front when the account has MFA: the
    // operator reads the database anyway, so this reveals nothing new.
    let needs_code = match ctx.user(&args.identifier).await {
        Ok(user) => mfa.is_enabled(&ctx.db, user.id).await?,
        Err(_) => false,
    };
    let code = if needs_code {
        Some(input::secret("TOTP or backup code", false)?)
    } else {
        None
    };
    let logged_in = login(
        &ctx.db,
        &accounts,
        &sessions,
        Some(&mfa),
        LoginRequest {
            identifier: &args.identifier,
            password: password.expose_secret(),
            second_factor: code.as_ref().map(|c| c.expose_secret()),
            client: ClientInfo {
                ip: args.ip.as_deref(),
                user_agent: args.user_agent.as_deref(),
            },
        },
        ctx.now,
    )
    .await?;
    let session = &logged_in.session.session;
    let token = logged_in.session.token.expose();
    output::emit(
        ctx.format,
        &json!({
            "user_id": logged_in.account.id,
            "session_id": session.id,
            "token": token,
            "expires_at": session.expires_at.to_rfc3339(),
            "second_factor": logged_in.second_factor.map(|f| format!("{f:?}").to_lowercase()),
        }),
        &format!(
            "{token}\n\nThe session token above is shown only now.\n{}",
            output::fields(&[
                ("user", logged_in.account.email.clone()),
                ("session", session.id.to_string()),
                ("expires", session.expires_at.to_rfc3339()),
            ])
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    if let Action::Validate { ip, user_agent } = &args.action {
        check_client(ip.as_deref(), user_agent.as_deref())?;
    }
    let config = config()?;
    // Every action writes: validate records the use (last activity, risk score).
    let ctx = Context::open(&args.common, Access::Write).await?;
    let sessions = Sessions::load_with_previous(
        &ctx.db,
        &config.hmac_key,
        &config.hmac_previous,
        SessionPolicy::default(),
    )
    .await?;
    match args.action {
        Action::Validate { ip, user_agent } => {
            let token = input::secret("session token", false)?;
            let client = ClientInfo {
                ip: ip.as_deref(),
                user_agent: user_agent.as_deref(),
            };
            let session = sessions
                .validate(&ctx.db, token.expose_secret(), client, ctx.now)
                .await?;
            output::emit(
                ctx.format,
                &json!({
                    "valid": true,
                    "session_id": session.id,
                    "user_id": session.user_id,
                    "expires_at": session.expires_at.to_rfc3339(),
                    "risk_score": session.risk_score,
                }),
                &format!(
                    "valid\n{}",
                    output::fields(&[
                        ("session", session.id.to_string()),
                        ("user", session.user_id.to_string()),
                        ("expires", session.expires_at.to_rfc3339()),
                        ("risk score", session.risk_score.to_string()),
                    ])
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Revoke {
            session_id: Some(id),
            ..
        } => {
            let revoked = sessions
                .revoke(&ctx.db, id, OPERATOR_REASON, ctx.now)
                .await?;
            let text = if revoked {
                format!("revoked session {id}")
            } else {
                format!("session {id} was revoked already")
            };
            output::emit(
                ctx.format,
                &json!({ "session_id": id, "revoked": 1, "was_active": revoked }),
                &text,
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Revoke { user, .. } => {
            let user = ctx
                .user(
                    user.as_deref()
                        .expect("clap requires a session id or --user"),
                )
                .await?;
            let count = sessions
                .revoke_all(&ctx.db, user.id, None, OPERATOR_REASON, ctx.now)
                .await?;
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "revoked": count }),
                &format!("revoked {count} session(s) of {}", user.email),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Cleanup => {
            eprintln!(
                "deleting expired, revoked and risky sessions in batches of {} ...",
                sessions.policy().cleanup_batch
            );
            let report = sessions.cleanup(&ctx.db, ctx.now).await?;
            let throttles =
                crate::lockout::prune(&ctx.db, &crate::lockout::LockoutPolicy::default(), ctx.now)
                    .await?;
            output::emit(
                ctx.format,
                &json!({
                    "expired": report.expired,
                    "revoked": report.revoked,
                    "risky": report.risky,
                    "total": report.total(),
                    "batches": report.batches,
                    "login_throttles_pruned": throttles,
                }),
                &format!(
                    "deleted {} session(s): {} expired, {} revoked, {} risky ({} batch(es)); \
                     {throttles} stale login throttle row(s)",
                    report.total(),
                    report.expired,
                    report.revoked,
                    report.risky,
                    report.batches
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
