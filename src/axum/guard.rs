//! The permission guard: [`RequirePermission<P>`] admits a request only when
//! its session's user holds the permission `P` names.

use std::fmt;
use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::AuthSession;
use crate::{Error, Gatehouse};

/// A permission known at compile time, named `resource.action`:
///
/// ```
/// struct AuditRead;
/// # #[cfg(feature = "axum")]
/// impl gatehouse::axum::Permission for AuditRead {
///     const NAME: &'static str = "audit.read";
/// }
/// ```
pub trait Permission {
    /// The permission's name, as in `permissions.name`.
    const NAME: &'static str;
}

/// An extractor: the request's [`AuthSession`], whose user holds `P` now
/// (checked by [`Gatehouse::has_permission`] on each request, so a revoked
/// role takes effect at once). Without a valid session: 401; without the
/// permission: a bare 403 that does not name it.
pub struct RequirePermission<P> {
    /// The session that passed.
    pub session: AuthSession,
    _permission: PhantomData<fn() -> P>,
}

impl<P: Permission> fmt::Debug for RequirePermission<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePermission")
            .field("permission", &P::NAME)
            .field("session", &self.session)
            .finish()
    }
}

impl<S, P> FromRequestParts<S> for RequirePermission<P>
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
    P: Permission,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gate = Gatehouse::from_ref(state);
        let session = AuthSession::from_parts(parts, &gate).await?;
        session.require(&gate, P::NAME).await?;
        Ok(Self {
            session,
            _permission: PhantomData,
        })
    }
}
