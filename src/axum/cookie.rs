//! The session cookie: `__Host-gatehouse_session`, written with `HttpOnly`,
//! `Secure`, `SameSite=Lax` and `Path=/`, read from `Cookie` headers.

use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Utc};

use crate::sessions::CreatedSession;

/// The cookie's name. The `__Host-` prefix makes browsers accept it only
/// with `Secure`, `Path=/` and no `Domain`: a sibling subdomain cannot set
/// or overwrite it (cookie tossing), and it never travels over plain HTTP.
pub const SESSION_COOKIE: &str = "__Host-gatehouse_session";

/// The attributes every write of the cookie carries. `HttpOnly`: scripts
/// cannot read the token. `Secure`: HTTPS only. `SameSite=Lax`: browsers
/// leave it off cross-site subrequests and cross-site `POST`s (the first
/// layer of CSRF protection; [`super::check_same_origin`] is the second).
const ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Lax";

/// The `Set-Cookie` value that hands `created`'s token to a browser; it
/// expires with the session (`expires_at`, the absolute timeout).
pub fn session_cookie(created: &CreatedSession, now: DateTime<Utc>) -> HeaderValue {
    let max_age = (created.session.expires_at - now).num_seconds().max(0);
    let value = format!(
        "{SESSION_COOKIE}={}; Max-Age={max_age}; {ATTRIBUTES}",
        created.token.expose()
    );
    let mut value =
        HeaderValue::try_from(value).expect("session tokens are base64url, valid header text");
    value.set_sensitive(true);
    value
}

/// The `Set-Cookie` value that removes the session cookie (empty, `Max-Age=0`).
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-gatehouse_session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax",
    )
}

/// The session token from the request's `Cookie` headers, if one is there
/// and not empty (the first, if several are).
pub fn session_token_from_cookies(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(cookie: &str) -> Vec<String> {
        cookie
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn the_cleared_cookie_has_every_attribute_and_expires_now() {
        let cookie = clear_session_cookie();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.starts_with("__Host-gatehouse_session=;"));
        let attrs = attributes(cookie);
        for want in ["httponly", "secure", "samesite=lax", "path=/", "max-age=0"] {
            assert!(attrs.iter().any(|a| a == want), "{want} missing: {cookie}");
        }
        assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{cookie}");
    }

    #[test]
    fn the_attributes_are_those_a_host_cookie_needs() {
        let attrs = attributes(&format!("x=y; {ATTRIBUTES}"));
        assert_eq!(attrs, ["path=/", "httponly", "secure", "samesite=lax"]);
        assert!(SESSION_COOKIE.starts_with("__Host-"));
    }

    #[test]
    fn the_token_is_read_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(session_token_from_cookies(&headers), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; __Host-gatehouse_session=abc_-1 ; x=y"),
        );
        assert_eq!(session_token_from_cookies(&headers), Some("abc_-1"));
        let mut empty = HeaderMap::new();
        empty.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-gatehouse_session="),
        );
        assert_eq!(session_token_from_cookies(&empty), None);
        let mut unprefixed = HeaderMap::new();
        unprefixed.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse_session=abc"),
        );
        assert_eq!(session_token_from_cookies(&unprefixed), None);
    }
}
