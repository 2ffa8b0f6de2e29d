//! The example application: a small axum service that embeds gatehouse.
//!
//! It shows the wiring an application needs: one [`Gatehouse`] in the state,
//! [`AuthSession`], [`RequirePermission`] and [`ApiKeyAuth`] as extractors,
//! gatehouse's `Error` as every handler's error (one status mapping), a
//! request body limit, and one migrator ([`AppMigrator`]) for gatehouse's
//! tables and the application's own `posts`.

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use example_app_entity::posts;
use example_app_migration::{AppMigrator, MigratorTrait};
use gatehouse::api_keys::{self, DEFAULT_RATE_LIMIT_PER_MINUTE, NewApiKey};
use gatehouse::audit::AuditQuery;
use gatehouse::axum::{
    ApiKeyAuth, AuthSession, Client, LoggedOut, Permission, RequirePermission, check_same_origin,
    session_cookie,
};
use gatehouse::{Error, Gatehouse, LoginRequest, NewAccount};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Largest request body accepted; larger ones get 413 before any handler runs.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Longest post title, in characters (the column's size).
const TITLE_CHARS: usize = 200;
/// Longest post body, in characters.
const BODY_CHARS: usize = 10_000;
/// The issuer shown in authenticator apps.
const TOTP_ISSUER: &str = "gatehouse example";

/// The router's state: the application's own parts would sit beside `gate`.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every gatehouse service, and the connection pool.
    pub gate: Gatehouse,
}

impl FromRef<AppState> for Gatehouse {
    fn from_ref(state: &AppState) -> Self {
        state.gate.clone()
    }
}

/// Reading the audit trail (`GET /api/admin/audit`).
pub struct AuditRead;

impl Permission for AuditRead {
    const NAME: &'static str = "audit.read";
}

/// Migrates `db` (gatehouse's migrations, then `posts`) and adds the default
/// roles and permissions that are missing.
///
/// # Errors
/// A migration or the seed failed.
pub async fn prepare(db: &DatabaseConnection) -> Result<(), Error> {
    AppMigrator::up(db, None).await?;
    gatehouse::seed(db).await
}

/// Every route, with the body limit.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/mfa/enroll", post(mfa_enroll))
        .route("/api/auth/mfa/verify", post(mfa_verify))
        .route("/api/me", get(me))
        .route("/api/keys", post(issue_key))
        .route("/api/posts", post(create_post))
        .route("/api/admin/audit", get(audit))
        .route("/api/v1/me", get(me_by_key))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves `router(state)` on `listener`, with the peer address available
/// to the extractors (the client IP gatehouse records).
///
/// # Errors
/// The listener failed.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

#[derive(Deserialize)]
struct Register {
    email: String,
    username: String,
    password: String,
}

#[derive(Serialize)]
struct UserView {
    id: Uuid,
    email: String,
    username: String,
}

async fn register(
    State(state): State<AppState>,
    Json(body): Json<Register>,
) -> Result<impl IntoResponse, Error> {
    let account = state
        .gate
        .register(NewAccount {
            email: &body.email,
            username: &body.username,
            password: &body.password,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            id: account.id,
            email: account.email,
            username: account.username,
        }),
    ))
}

#[derive(Deserialize)]
struct Login {
    /// Email or username.
    #[serde(alias = "email", alias = "username")]
    identifier: String,
    password: String,
    /// A TOTP code or a backup code, when the account has MFA.
    code: Option<String>,
    /// Also return the token, for `Authorization: Bearer` (API clients). A
    /// browser leaves it out and keeps only the `HttpOnly` cookie.
    #[serde(default)]
    bearer: bool,
}

/// Signs in. The same-origin check guards it too (login CSRF: a page
/// signing the visitor into the attacker's account).
async fn login(
    State(state): State<AppState>,
    client: Client,
    method: Method,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<impl IntoResponse, Error> {
    check_same_origin(&method, &headers)?;
    let done = state
        .gate
        .login(LoginRequest {
            identifier: &body.identifier,
            password: &body.password,
            second_factor: body.code.as_deref(),
            client: client.info(),
        })
        .await?;
    let cookie = session_cookie(&done.session, Utc::now());
    let mut answer = json!({
        "user_id": done.account.id,
        "expires_at": done.session.session.expires_at,
        "second_factor": done.second_factor.map(|f| format!("{f:?}")),
    });
    if body.bearer {
        answer["token"] = Value::from(done.session.token.expose());
    }
    Ok(([(header::SET_COOKIE, cookie)], Json(answer)))
}

async fn logout(State(state): State<AppState>, session: AuthSession) -> Result<LoggedOut, Error> {
    session.logout(&state.gate).await
}

async fn me(State(state): State<AppState>, session: AuthSession) -> Result<Json<UserView>, Error> {
    let account = gatehouse::accounts::get(state.gate.db(), session.user_id()).await?;
    Ok(Json(UserView {
        id: account.id,
        email: account.email,
        username: account.username,
    }))
}

fn mfa(gate: &Gatehouse) -> Result<&gatehouse::mfa::Mfa, Error> {
    gate.mfa().ok_or(Error::Config {
        var: gatehouse::config::DATA_KEY_VAR,
        reason: "MFA needs the data encryption key".into(),
    })
}

async fn mfa_enroll(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<Value>, Error> {
    let gate = &state.gate;
    let account = gatehouse::accounts::get(gate.db(), session.user_id()).await?;
    let enrollment = mfa(gate)?
        .enroll(
            gate.db(),
            account.id,
            TOTP_ISSUER,
            &account.username,
            Utc::now(),
        )
        .await?;
    Ok(Json(json!({
        "secret": enrollment.secret().expose_base32(),
        "otpauth_uri": enrollment.otpauth_uri(),
    })))
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

async fn mfa_verify(
    State(state): State<AppState>,
    session: AuthSession,
    Json(body): Json<Code>,
) -> Result<Json<Value>, Error> {
    let gate = &state.gate;
    let codes = mfa(gate)?
        .confirm(
            gate.db(),
            session.user_id(),
            &body.code,
            Some(session.session_id()),
            Utc::now(),
        )
        .await?;
    Ok(Json(json!({ "backup_codes": codes.expose() })))
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

async fn issue_key(
    State(state): State<AppState>,
    session: AuthSession,
    Json(body): Json<NewKey>,
) -> Result<impl IntoResponse, Error> {
    let gate = &state.gate;
    session.require(gate, "api_keys.create").await?;
    let scopes: Vec<&str> = body.scopes.iter().map(String::as_str).collect();
    let issued = api_keys::issue(
        gate.db(),
        NewApiKey {
            user_id: session.user_id(),
            name: &body.name,
            scopes: &scopes,
            rate_limit_per_minute: Some(DEFAULT_RATE_LIMIT_PER_MINUTE),
            expires_at: None,
        },
        Utc::now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": issued.record.id, "key": issued.key.expose() })),
    ))
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
    body: String,
}

#[derive(Serialize)]
struct PostView {
    id: Uuid,
    user_id: Uuid,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
}

fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidInput { field, reason };
    if value.trim().is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(format!("longer than {max_chars} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(())
}

async fn create_post(
    State(state): State<AppState>,
    session: AuthSession,
    Json(body): Json<NewPost>,
) -> Result<impl IntoResponse, Error> {
    check_text("title", &body.title, TITLE_CHARS)?;
    check_text("body", &body.body, BODY_CHARS)?;
    let post = PostView {
        id: Uuid::now_v7(),
        user_id: session.user_id(),
        title: body.title,
        body: body.body,
        created_at: Utc::now(),
    };
    posts::Entity::insert(posts::ActiveModel {
        id: Set(post.id),
        user_id: Set(post.user_id),
        title: Set(post.title.clone()),
        body: Set(post.body.clone()),
        created_at: Set(post.created_at),
    })
    .exec_without_returning(state.gate.db())
    .await?;
    Ok((StatusCode::CREATED, Json(post)))
}

async fn audit(
    State(state): State<AppState>,
    _: RequirePermission<AuditRead>,
) -> Result<Json<Value>, Error> {
    let entries = gatehouse::audit::find_entries(
        state.gate.db(),
        &AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        },
    )
    .await?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "created_at": e.created_at,
                "event_type": e.event_type,
                "action": e.action,
                "user_id": e.user_id,
                "outcome": format!("{:?}", e.outcome),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

/// The API-key route: the key's owner and how many posts they wrote; the key
/// needs scope `users.read`.
async fn me_by_key(
    State(state): State<AppState>,
    ApiKeyAuth(key): ApiKeyAuth,
) -> Result<Json<Value>, Error> {
    key.require("users.read")?;
    let posts = posts::Entity::find()
        .filter(posts::Column::UserId.eq(key.user_id))
        .count(state.gate.db())
        .await?;
    Ok(Json(json!({
        "user_id": key.user_id,
        "key": key.name,
        "posts": posts,
    })))
}
