//! axum 0.8 integration (feature `axum`): extractors for a signed-in session
//! and an API key, a permission guard, the session cookie, CSRF protection of
//! cookie-authenticated requests, and the one mapping of [`Error`] to HTTP.
//!
//! The extractors find the [`Gatehouse`] in the router's state through
//! [`FromRef`](axum::extract::FromRef), so an application keeps its own state
//! type and adds a `Gatehouse` field to it:
//!
//! ```no_run
//! # #[cfg(feature = "axum")] {
//! use axum::{Json, Router, extract::FromRef, routing::get};
//! use gatehouse::Gatehouse;
//! use gatehouse::axum::{AuthSession, Permission, RequirePermission};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     gate: Gatehouse,
//! }
//!
//! impl FromRef<AppState> for Gatehouse {
//!     fn from_ref(state: &AppState) -> Self {
//!         state.gate.clone()
//!     }
//! }
//!
//! struct AuditRead;
//! impl Permission for AuditRead {
//!     const NAME: &'static str = "audit.read";
//! }
//!
//! async fn me(session: AuthSession) -> Json<uuid::Uuid> {
//!     Json(session.user_id())
//! }
//!
//! async fn audit(_: RequirePermission<AuditRead>) -> &'static str {
//!     "the audit trail"
//! }
//!
//! fn router(gate: Gatehouse) -> Router {
//!     Router::new()
//!         .route("/api/me", get(me))
//!         .route("/api/admin/audit", get(audit))
//!         .with_state(AppState { gate })
//! }
//! # }
//! ```
//!
//! # Client address and proxies
//! The client IP handed to sessions, sign-in throttling and API keys is the
//! TCP peer from [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo)
//! (serve with `into_make_service_with_connect_info::<SocketAddr>()`); without
//! it, no IP is recorded. `X-Forwarded-For` and `Forwarded` are never read:
//! anyone can send them. Behind a reverse proxy you trust, insert a
//! `ConnectInfo<SocketAddr>` built from the proxy's header in a middleware
//! placed before these extractors run, and make sure the proxy overwrites the
//! header rather than appending to what the client sent.
//!
//! # Responses
//! Every rejection is an [`Error`]; [`status`] and `Error`'s
//! [`IntoResponse`](axum::response::IntoResponse) are the one place where an
//! error becomes a status code, headers and a JSON body. Credentials that fail
//! are a bare 401 with `WWW-Authenticate: Bearer`, missing rights a bare 403:
//! neither says which check failed.

mod cookie;
mod csrf;
mod extract;
mod guard;
mod response;

pub use cookie::{
    SESSION_COOKIE, clear_session_cookie, session_cookie, session_token_from_cookies,
};
pub use csrf::check_same_origin;
pub use extract::{API_KEY_HEADER, ApiKeyAuth, AuthSession, Client, Credential, LoggedOut};
pub use guard::{Permission, RequirePermission};
pub use response::status;

#[allow(unused_imports)]
use crate::{Error, Gatehouse};
