//! Extractors: [`Client`] (peer IP and user agent), [`AuthSession`] (a
//! session from `Authorization: Bearer` or the cookie) and [`ApiKeyAuth`]
//! (an API key from `X-Api-Key` or `Authorization: Bearer ghk_…`).

use std::fmt;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::cookie::{clear_session_cookie, session_token_from_cookies};
use super::csrf::check_same_origin;
use crate::api_keys::VerifiedKey;
use crate::client::{ClientInfo, MAX_USER_AGENT};
use crate::{Error, Gatehouse};

/// The header an API key may come in (besides `Authorization: Bearer`).
pub const API_KEY_HEADER: &str = "x-api-key";

/// What the request tells about its client: the TCP peer's IP (from
/// [`ConnectInfo<SocketAddr>`]; see the module docs on proxies) and the
/// `User-Agent` (cut to the length gatehouse stores). Never rejects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// The peer's IP address, when the server records it.
    pub ip: Option<String>,
    /// The `User-Agent` header, when it is text.
    pub user_agent: Option<String>,
}

impl Client {
    /// Reads the client from request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|ua| ua.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>())
            // A user agent gatehouse would refuse is dropped, not an error:
            // a client's odd header must not stop it from signing in.
            .filter(|ua| {
                ClientInfo {
                    ip: None,
                    user_agent: Some(ua),
                }
                .validate()
                .is_ok()
            });
        Self { ip, user_agent }
    }

    /// As the services take it.
    pub fn info(&self) -> ClientInfo<'_> {
        ClientInfo {
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// Where a session token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <token>`: exempt from the CSRF check.
    Bearer,
    /// The `__Host-gatehouse_session` cookie: non-safe methods pass
    /// [`check_same_origin`] first.
    Cookie,
}

/// The bearer token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A request with a valid session, validated by
/// [`Gatehouse::validate_session`] with the client's IP and user agent.
///
/// The token is taken from `Authorization: Bearer` when present, otherwise
/// from the session cookie; a cookie-authenticated request with a non-safe
/// method must pass [`check_same_origin`] (CSRF). Rejections: 401 with
/// `WWW-Authenticate: Bearer` when there is no valid session, 403 for a
/// cross-origin request; the response never says which check failed.
/// `Debug` prints neither the token nor the session's digests.
pub struct AuthSession {
    /// The session as validated (its activity just recorded).
    pub session: gatehouse_entity::sessions::Model,
    /// Where the token came from.
    pub via: Credential,
    token: SecretString,
}

impl fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSession")
            .field("session_id", &self.session.id)
            .field("user_id", &self.session.user_id)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    /// The signed-in user.
    pub fn user_id(&self) -> Uuid {
        self.session.user_id
    }

    /// The session's id (not its token).
    pub fn session_id(&self) -> Uuid {
        self.session.id
    }

    /// When the session ends at the latest (its absolute timeout).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.session.expires_at
    }

    /// Checks a permission inside a handler, when it is not known statically
    /// (otherwise use [`super::RequirePermission`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the user does not hold `permission` now;
    /// [`Error::InvalidInput`] for a malformed name; a database error.
    pub async fn require(&self, gate: &Gatehouse, permission: &str) -> Result<(), Error> {
        if gate.has_permission(self.user_id(), permission).await? {
            Ok(())
        } else {
            Err(Error::Forbidden(String::new()))
        }
    }

    /// Ends the session (revoked in the database) and answers with the
    /// cookie cleared.
    ///
    /// # Errors
    /// As [`Gatehouse::logout`].
    pub async fn logout(self, gate: &Gatehouse) -> Result<LoggedOut, Error> {
        gate.logout(self.token.expose_secret()).await?;
        Ok(LoggedOut)
    }

    /// Extracts and validates the session from request parts (what the
    /// extractor does), for middleware.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] without a token; [`Error::Forbidden`]
    /// for a cross-origin cookie request; as [`Gatehouse::validate_session`].
    pub async fn from_parts(parts: &Parts, gate: &Gatehouse) -> Result<Self, Error> {
        let (token, via) = match bearer(&parts.headers) {
            Some(token) => (token, Credential::Bearer),
            None => match session_token_from_cookies(&parts.headers) {
                Some(token) => {
                    check_same_origin(&parts.method, &parts.headers)?;
                    (token, Credential::Cookie)
                }
                None => return Err(Error::InvalidCredentials),
            },
        };
        let client = Client::from_parts(parts);
        let session = gate.validate_session(token, client.info()).await?;
        Ok(Self {
            session,
            via,
            token: SecretString::from(token),
        })
    }
}

impl<S> FromRequestParts<S> for AuthSession
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts, &Gatehouse::from_ref(state)).await
    }
}

/// The answer to a logout: 204 with the session cookie cleared.
#[derive(Clone, Copy, Debug)]
pub struct LoggedOut;

impl IntoResponse for LoggedOut {
    fn into_response(self) -> Response {
        (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, clear_session_cookie())],
        )
            .into_response()
    }
}

/// A request authenticated by an API key, verified (and its use counted)
/// by [`Gatehouse::verify_api_key`] with the client's IP.
///
/// The key comes from the `X-Api-Key` header or `Authorization: Bearer
/// ghk_…`. Rejections: 401 with `WWW-Authenticate: Bearer` for a missing,
/// malformed, unknown, revoked or expired key; 403 when its owner may no
/// longer act; 429 with `Retry-After` over the key's per-minute limit.
/// Check scopes with [`VerifiedKey::require`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyAuth(pub VerifiedKey);

impl<S> FromRequestParts<S> for ApiKeyAuth
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| bearer(&parts.headers).filter(|t| t.starts_with("ghk_")))
            .ok_or(Error::InvalidCredentials)?;
        let client = Client::from_parts(parts);
        let gate = Gatehouse::from_ref(state);
        let verified = gate.verify_api_key(key, client.ip.as_deref()).await?;
        Ok(Self(verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn odd_user_agents_are_dropped_and_long_ones_cut() {
        let parts = |ua: &'static str| {
            let (parts, ()) = axum::http::Request::builder()
                .header(header::USER_AGENT, ua)
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        assert_eq!(
            Client::from_parts(&parts("curl/8.5")).user_agent.as_deref(),
            Some("curl/8.5")
        );
        assert_eq!(Client::from_parts(&parts("curl\t8")).user_agent, None);
        let long: &'static str = "x".repeat(2000).leak();
        let cut = Client::from_parts(&parts(long)).user_agent.unwrap();
        assert_eq!(cut.len(), MAX_USER_AGENT);
        assert_eq!(Client::from_parts(&parts("")).ip, None);
    }

    #[test]
    fn bearer_tokens_are_read_in_any_case_of_the_scheme() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
