//! `gatehouse mfa enroll|verify`: TOTP enrollment with the otpauth URI drawn
//! as a terminal QR code, confirmation (which issues the backup codes, shown
//! once) and code checks.

use std::process::ExitCode;

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use secrecy::ExposeSecret;
use serde_json::json;

use super::context::{Access, Context, Failure, Group, config};
use super::{input, output};
use crate::mfa::{ClientInfo, Mfa};

/// Issuer shown in authenticator apps unless `--issuer` says otherwise.
pub const DEFAULT_ISSUER: &str = "gatehouse";

/// The `Args` command line: options and subcommand.
pub type Args = Group<Action>;

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Start TOTP enrollment: prints the secret, its otpauth:// URI and a QR code.
    Enroll {
        /// User id, email or username.
        user: String,
        /// Issuer name the authenticator app shows.
        #[arg(long, default_value = DEFAULT_ISSUER)]
        issuer: String,
    },
    /// Check a code read from stdin. The first valid code after `enroll`
    /// confirms the enrollment and prints ten backup codes, once.
    Verify {
        /// User id, email or username.
        user: String,
    },
}

pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    let config = config()?;
    // Both actions write (the key records, the enrollment, the used step).
    let ctx = Context::open(&args.common, Access::Write).await?;
    let mfa = Mfa::new(&config);
    mfa.ensure_keys(&ctx.db).await?;
    match args.action {
        Action::Enroll { user, issuer } => {
            let user = ctx.user(&user).await?;
            let enrollment = mfa
                .enroll(&ctx.db, user.id, &issuer, &user.email, ctx.now)
                .await?;
            let uri = enrollment.otpauth_uri();
            let secret = enrollment.secret().expose_base32();
            let qr = QrCode::new(uri.as_bytes())
                .map_err(|err| Failure::Denied(format!("cannot draw the QR code: {err}")))?
                .render::<Dense1x2>()
                .quiet_zone(true)
                .build();
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "otpauth_uri": uri, "secret": secret,
                         "confirmed": false }),
                &format!(
                    "Scan this with an authenticator app (or enter the secret by hand):\n\n{qr}\n\n\
                     {}\nThen confirm with a code it shows: gatehouse mfa verify {}\n",
                    output::fields(&[("secret", secret.clone()), ("uri", uri.to_owned())]),
                    user.username
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Verify { user } => {
            let user = ctx.user(&user).await?;
            let code = input::secret("code", false)?;
            if mfa.is_enabled(&ctx.db, user.id).await? {
                mfa.verify_totp(
                    &ctx.db,
                    user.id,
                    code.expose_secret(),
                    ClientInfo::default(),
                    ctx.now,
                )
                .await?;
                output::emit(
                    ctx.format,
                    &json!({ "user_id": user.id, "valid": true }),
                    "valid",
                );
                return Ok(ExitCode::SUCCESS);
            }
            let backup_codes = mfa
                .confirm(&ctx.db, user.id, code.expose_secret(), None, ctx.now)
                .await
                .map_err(|err| match err {
                    crate::Error::NotFound(_) => Failure::Denied(format!(
                        "{} has no MFA enrollment; run `gatehouse mfa enroll {}` first",
                        user.email, user.username
                    )),
                    other => other.into(),
                })?;
            let codes = backup_codes.expose();
            output::emit(
                ctx.format,
                &json!({ "user_id": user.id, "valid": true, "confirmed": true,
                         "backup_codes": codes }),
                &format!(
                    "MFA is now on for {}.\n\nBackup codes, each usable once; shown only now:\n{}",
                    user.email,
                    codes.iter().map(|c| format!("  {c}\n")).collect::<String>()
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
