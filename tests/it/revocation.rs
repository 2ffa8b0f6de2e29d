//! Every way a session ends goes through one revocation: the seal is cleared
//! and a `session_audit_log` row written, so a session flipped back to
//! `is_revoked = false` in the database fails as tampered. Account changes
//! also end trusted devices; MFA changes end the user's other sessions.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use gatehouse::ClientInfo;
use gatehouse::accounts::{self, Accounts, Argon2idHasher, NewAccount};
use gatehouse::mfa::{Mfa, TotpSecret, devices};
use gatehouse::rbac::{self, Actor};
use gatehouse::sessions::{SessionPolicy, Sessions};
use gatehouse::{Config, Error};
use gatehouse_entity::users;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use uuid::Uuid;

use crate::accounts::PASSPHRASE;
use crate::support::TestDb;

backend_tests!(run_migrated: every_revocation_clears_the_seal_and_is_audited);

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";
const NEW_PASSPHRASE: &str = "copper kettle over quiet embers";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Operator,
    Logout,
    SignOutEverywhere,
    Lock,
    Delete,
    PasswordChange,
    PasswordReset,
    MfaEnabled,
    MfaDisabled,
    RoleRevoked,
}

struct Fixture<'a> {
    t: &'a TestDb,
    accounts: &'a Accounts<Argon2idHasher>,
    sessions: &'a Sessions,
    mfa: &'a Mfa,
    now: DateTime<Utc>,
}

impl Fixture<'_> {
    async fn user(&self, name: &str) -> users::Model {
        let account = self
            .accounts
            .register(
                &self.t.db,
                NewAccount {
                    email: &format!("{name}@example.com"),
                    username: name,
                    password: PASSPHRASE,
                },
                self.now,
            )
            .await
            .unwrap();
        users::Entity::find_by_id(account.id)
            .one(&self.t.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn session(&self, user_id: Uuid) -> (Uuid, String) {
        let created = self
            .sessions
            .create(&self.t.db, user_id, ClientInfo::default(), self.now)
            .await
            .unwrap();
        (created.session.id, created.token.expose().to_owned())
    }

    async fn enable_mfa(&self, user: &users::Model, keep: Option<Uuid>) -> TotpSecret {
        let enrollment = self
            .mfa
            .enroll(&self.t.db, user.id, "gatehouse", &user.username, self.now)
            .await
            .unwrap();
        let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
        self.mfa
            .confirm(
                &self.t.db,
                user.id,
                &format!("{:06}", secret.code_at(self.now)),
                keep,
                self.now,
            )
            .await
            .unwrap();
        secret
    }

    async fn count(&self, tail: String) -> i64 {
        self.t.count(&tail).await
    }
}

fn id_literal(t: &TestDb, id: Uuid) -> String {
    match t.backend {
        crate::support::Backend::Postgres => format!("'{id}'"),
        crate::support::Backend::MySql => format!("X'{}'", id.simple()),
        crate::support::Backend::Sqlite => format!("X'{}'", id.simple()),
    }
}

async fn every_revocation_clears_the_seal_and_is_audited(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let accounts = Accounts::new(Argon2idHasher::default()).await.unwrap();
    let sessions = Sessions::load(&t.db, &config.hmac_key, SessionPolicy::default())
        .await
        .unwrap();
    let mfa = Mfa::new(&config);
    let now = Utc::now().trunc_subsecs(0);
    let f = Fixture {
        t: &t,
        accounts: &accounts,
        sessions: &sessions,
        mfa: &mfa,
        now,
    };
    for kind in [
        Kind::Operator,
        Kind::Logout,
        Kind::SignOutEverywhere,
        Kind::Lock,
        Kind::Delete,
        Kind::PasswordChange,
        Kind::PasswordReset,
        Kind::MfaEnabled,
        Kind::MfaDisabled,
        Kind::RoleRevoked,
    ] {
        let name = format!("{kind:?}").to_lowercase();
        let user = f.user(&name).await;
        let (kept, kept_token) = f.session(user.id).await;
        let (victim, victim_token) = f.session(user.id).await;
        devices::trust(
            &t.db,
            user.id,
            Some("laptop"),
            ClientInfo::default(),
            Duration::days(30),
            now,
        )
        .await
        .unwrap();
        // To disable MFA it must be on; enabling it kept only the caller's
        // session, so the victim is a session opened after.
        let (victim, victim_token) = if kind == Kind::MfaDisabled {
            f.enable_mfa(&user, Some(kept)).await;
            f.session(user.id).await
        } else {
            (victim, victim_token)
        };
        let at = now + Duration::seconds(1);
        match kind {
            Kind::Operator => {
                assert!(
                    sessions
                        .revoke(&t.db, victim, "operator", at)
                        .await
                        .unwrap()
                );
            }
            Kind::Logout => sessions.logout(&t.db, &victim_token, at).await.unwrap(),
            Kind::SignOutEverywhere => {
                assert_eq!(
                    sessions
                        .revoke_all(&t.db, user.id, Some(kept), "everywhere", at)
                        .await
                        .unwrap(),
                    1
                );
            }
            Kind::Lock => accounts::lock(&t.db, Actor::System, user.id, at)
                .await
                .unwrap(),
            Kind::Delete => accounts::soft_delete(&t.db, Actor::System, user.id, at)
                .await
                .unwrap(),
            Kind::PasswordChange => accounts
                .change_password(&t.db, user.id, PASSPHRASE, NEW_PASSPHRASE, at)
                .await
                .unwrap(),
            Kind::PasswordReset => {
                let reset = accounts
                    .request_password_reset(&t.db, &user.email, at)
                    .await
                    .unwrap()
                    .unwrap();
                accounts
                    .reset_password(&t.db, reset.token.expose(), NEW_PASSPHRASE, at)
                    .await
                    .unwrap();
            }
            Kind::MfaEnabled => {
                f.enable_mfa(&user, Some(kept)).await;
            }
            Kind::MfaDisabled => mfa.disable(&t.db, user.id, Some(kept), at).await.unwrap(),
            Kind::RoleRevoked => {
                let moderator = rbac::find_role(&t.db, "moderator").await.unwrap();
                rbac::grant_role(&t.db, Actor::System, user.id, moderator.id, None, now)
                    .await
                    .unwrap();
                rbac::revoke_role(&t.db, Actor::System, user.id, moderator.id, at)
                    .await
                    .unwrap();
            }
        }
        let victim_lit = id_literal(&t, victim);
        assert_eq!(
            f.count(format!(
                "sessions WHERE id = {victim_lit} AND is_revoked = {} AND security_hash IS NULL",
                if t.backend == crate::support::Backend::Postgres {
                    "true"
                } else {
                    "1"
                }
            ))
            .await,
            1,
            "{kind:?}: revoked with its seal cleared"
        );
        assert_eq!(
            f.count(format!(
                "session_audit_log WHERE session_id = {victim_lit} AND event = 'revoked'"
            ))
            .await,
            1,
            "{kind:?}: one revocation audit row"
        );
        // Flipped back in the database: refused as tampered.
        t.db.execute_raw(Statement::from_string(
            t.db_backend(),
            format!(
                "UPDATE sessions SET is_revoked = {} WHERE id = {victim_lit}",
                if t.backend == crate::support::Backend::Postgres {
                    "false"
                } else {
                    "0"
                }
            ),
        ))
        .await
        .unwrap();
        let err = sessions
            .validate(&t.db, &victim_token, ClientInfo::default(), at)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Integrity(_)), "{kind:?}: {err}");
        assert_eq!(
            f.count(format!(
                "session_audit_log WHERE session_id = {victim_lit} AND event = 'tamper_detected'"
            ))
            .await,
            1,
            "{kind:?}"
        );
        // What survives: the caller's own session for the kinds that keep it.
        let keeps = matches!(
            kind,
            Kind::Operator
                | Kind::Logout
                | Kind::SignOutEverywhere
                | Kind::MfaEnabled
                | Kind::MfaDisabled
        );
        assert_eq!(
            sessions
                .validate(&t.db, &kept_token, ClientInfo::default(), at)
                .await
                .is_ok(),
            keeps,
            "{kind:?}: the caller's session"
        );
        let devices_left = devices::list(&t.db, user.id, at).await.unwrap().len();
        let ends_devices = matches!(
            kind,
            Kind::Lock
                | Kind::Delete
                | Kind::PasswordChange
                | Kind::PasswordReset
                | Kind::MfaDisabled
        );
        assert_eq!(
            devices_left,
            usize::from(!ends_devices),
            "{kind:?}: trusted devices"
        );
    }
}
