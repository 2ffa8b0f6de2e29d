//! The `Gatehouse` handle as an application holds it: cloned into tasks,
//! built with or without MFA, failing closed when an account has MFA and the
//! handle cannot check it.

use chrono::Utc;
use gatehouse::mfa::{Mfa, TotpSecret};
use gatehouse::{
    Accounts, Argon2idHasher, ClientInfo, Config, Error, Gatehouse, LoginRequest, NewAccount,
    Sessions,
};

use crate::accounts::PASSPHRASE;
use crate::support::TestDb;

const HMAC_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const DATA_HEX: &str = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40";

/// What an application's state needs of a type (axum's `State`, a
/// `tokio::spawn`ed task).
fn app_state<T: Clone + Send + Sync + 'static>() {}

#[test]
fn services_can_live_in_application_state() {
    app_state::<Gatehouse>();
    app_state::<Sessions>();
    app_state::<Mfa>();
    app_state::<Accounts<Argon2idHasher>>();
    app_state::<Config>();
}

fn request<'a>(identifier: &'a str, second_factor: Option<&'a str>) -> LoginRequest<'a> {
    LoginRequest {
        identifier,
        password: PASSPHRASE,
        second_factor,
        client: ClientInfo {
            ip: Some("192.0.2.10"),
            user_agent: Some("handle tests"),
        },
    }
}

async fn register(gate: &Gatehouse, name: &str) -> gatehouse::Account {
    gate.register(NewAccount {
        email: &format!("{name}@example.com"),
        username: name,
        password: PASSPHRASE,
    })
    .await
    .unwrap()
}

async fn a_handle_without_mfa_signs_in_and_its_clones_validate_in_other_tasks(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let gate = Gatehouse::builder(t.db.clone())
        .hmac_key(config.hmac_key.clone())
        .build()
        .await
        .unwrap();
    assert!(gate.mfa().is_none());
    let ada = register(&gate, "ada").await;
    let done = gate.login(request("ada", None)).await.unwrap();
    assert_eq!(done.account.id, ada.id);
    let token = done.session.token.expose().to_owned();
    let clone = gate.clone();
    let session =
        tokio::spawn(async move { clone.validate_session(&token, ClientInfo::default()).await })
            .await
            .unwrap()
            .unwrap();
    assert_eq!(session.user_id, ada.id);
    assert!(!gate.has_permission(ada.id, "audit.read").await.unwrap());
    gate.logout(done.session.token.expose()).await.unwrap();
    assert!(matches!(
        gate.validate_session(done.session.token.expose(), ClientInfo::default())
            .await,
        Err(Error::Revoked)
    ));
}

async fn a_handle_without_mfa_refuses_an_account_with_mfa(t: TestDb) {
    let config = Config::from_values(HMAC_HEX, DATA_HEX).unwrap();
    let full = Gatehouse::from_config(t.db.clone(), &config).await.unwrap();
    let bea = register(&full, "bea").await;
    let now = Utc::now();
    let mfa = full.mfa().expect("from_config enables MFA");
    let enrollment = mfa
        .enroll(&t.db, bea.id, "gatehouse", "bea", now)
        .await
        .unwrap();
    let secret = TotpSecret::from_bytes(*enrollment.secret().expose());
    mfa.confirm(
        &t.db,
        bea.id,
        &format!("{:06}", secret.code_at(now)),
        None,
        now,
    )
    .await
    .unwrap();

    let partial = Gatehouse::builder(t.db.clone())
        .hmac_key(config.hmac_key.clone())
        .build()
        .await
        .unwrap();
    let sessions_before = t.count("sessions").await;
    // Without a code it asks for one; given one, the handle that cannot
    // check it refuses, naming the key it lacks.
    assert!(matches!(
        partial.login(request("bea", None)).await,
        Err(Error::MfaRequired)
    ));
    let code = format!("{:06}", secret.code_at(Utc::now()));
    assert!(matches!(
        partial.login(request("bea", Some(&code))).await,
        Err(Error::Config {
            var: "DATA_ENCRYPTION_KEY",
            ..
        })
    ));
    assert_eq!(
        t.count("sessions").await,
        sessions_before,
        "no session was created"
    );
    // The handle with MFA asks for the code too.
    assert!(matches!(
        full.login(request("bea", None)).await,
        Err(Error::MfaRequired)
    ));
}

backend_tests!(run_migrated:
    a_handle_without_mfa_signs_in_and_its_clones_validate_in_other_tasks,
    a_handle_without_mfa_refuses_an_account_with_mfa,
);
