//! CSRF protection of cookie-authenticated requests: a state-changing request
//! whose session came from the cookie must come from the site's own pages.
//!
//! # Mechanism
//! Two layers, neither needing a token in the page:
//!
//! 1. The cookie is `SameSite=Lax`: browsers do not attach it to cross-site
//!    `POST`, `PUT`, `PATCH` or `DELETE` requests, nor to cross-site
//!    subrequests (images, scripts, `fetch`).
//! 2. [`check_same_origin`], which [`super::AuthSession`] runs whenever the
//!    session came from the cookie and the method is not safe (anything but
//!    `GET`, `HEAD`, `OPTIONS`, `TRACE`): the browser's own `Sec-Fetch-Site`
//!    header must say `same-origin` (or `none`: the user typed or bookmarked
//!    it); a browser too old to send it must send an `Origin` whose host and
//!    port equal the request's `Host`. A request with neither header did not
//!    come from a browser, so it carries no ambient credential a page could
//!    abuse, and passes. This is the check Go's `net/http`
//!    `CrossOriginProtection` makes, from the same reasoning.
//!
//! Requests authenticated with `Authorization: Bearer` (session token or API
//! key) are exempt: a browser never adds that header on its own, so a forged
//! request cannot carry it. Handlers must keep `GET` free of side effects for
//! layer 1 and 2 to hold. `Same-site` (a sibling subdomain) is refused too:
//! siblings are a different origin. Behind a proxy that rewrites `Host`, pass
//! the original host through (`Sec-Fetch-Site` works regardless).

use axum::http::{HeaderMap, Method, header};

use crate::Error;

/// Refuses a cross-origin state-changing request (see the module docs).
///
/// # Errors
/// [`Error::Forbidden`] for a non-safe method whose `Sec-Fetch-Site` is
/// neither `same-origin` nor `none`, or, without it, whose `Origin` does not
/// match `Host` (an `Origin` of `null` included).
pub fn check_same_origin(method: &Method, headers: &HeaderMap) -> Result<(), Error> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let refuse = || Err(Error::Forbidden("cross-origin request".into()));
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => refuse(),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(o), Some(h)) if !o.is_empty() && o.eq_ignore_ascii_case(h) => Ok(()),
        _ => refuse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn allowed(method: Method, pairs: &[(&'static str, &'static str)]) -> bool {
        check_same_origin(&method, &headers(pairs)).is_ok()
    }

    #[test]
    fn safe_methods_always_pass() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(allowed(method, &[("sec-fetch-site", "cross-site")]));
        }
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(allowed(Method::POST, &[("sec-fetch-site", "same-origin")]));
        assert!(allowed(Method::POST, &[("sec-fetch-site", "none")]));
        for site in ["cross-site", "same-site", "bogus"] {
            let h = [
                ("sec-fetch-site", site),
                ("origin", "https://app.example"),
                ("host", "app.example"),
            ];
            assert!(!allowed(Method::POST, &h), "{site}");
            assert!(!allowed(Method::DELETE, &h), "{site}");
        }
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_match_the_host() {
        let host = ("host", "app.example:8443");
        assert!(allowed(
            Method::POST,
            &[("origin", "https://app.example:8443"), host]
        ));
        assert!(allowed(
            Method::PUT,
            &[("origin", "https://APP.example:8443"), host]
        ));
        for origin in [
            "https://evil.example",
            "https://app.example",
            "https://app.example:8443.evil.example",
            "null",
            "",
        ] {
            assert!(
                !allowed(Method::POST, &[("origin", origin), host]),
                "{origin}"
            );
        }
        assert!(!allowed(Method::POST, &[("origin", "https://app.example")]));
    }

    #[test]
    fn requests_from_no_browser_pass() {
        assert!(allowed(Method::POST, &[("host", "app.example")]));
    }

    #[test]
    fn a_refusal_is_forbidden() {
        let err = check_same_origin(&Method::POST, &headers(&[("sec-fetch-site", "cross-site")]))
            .unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)));
    }
}
