//! The one mapping of [`Error`] to HTTP: status code, headers and a JSON body
//! `{"error": <code>, "message"?: <what to fix>, "field"?: <which input>}`.
//!
//! | error | status | body says |
//! |---|---|---|
//! | `InvalidInput`, `PolicyViolation`, `Invalid`, `Reference` | 422 | the field and the rule |
//! | `Conflict` | 409 | the field that is taken |
//! | `InvalidCredentials`, `Expired`, `Revoked`, `Replayed`, `Integrity` | 401 + `WWW-Authenticate: Bearer` | nothing more |
//! | `MfaRequired` | 401 + `WWW-Authenticate: Bearer` | that a second factor is needed |
//! | `Forbidden`, `Locked` | 403 | nothing more |
//! | `RateLimited` | 429 + `Retry-After` | the seconds to wait |
//! | `NotFound` | 404 | nothing more |
//! | `ReadOnly` | 503 | nothing more; logged with `tracing` (writes reach a standby) |
//! | `Config`, `Db` | 500 | nothing more; logged with `tracing` |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Error;

/// The status code `err` is answered with.
pub fn status(err: &Error) -> StatusCode {
    match err {
        Error::InvalidInput { .. }
        | Error::PolicyViolation(_)
        | Error::Invalid(_)
        | Error::Reference(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::InvalidCredentials
        | Error::Expired
        | Error::Revoked
        | Error::Replayed
        | Error::Integrity(_)
        | Error::MfaRequired => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::Locked { .. } => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::ReadOnly(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Config { .. } | Error::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body for `err`: what the client can act on and nothing else.
fn body(err: &Error) -> Value {
    match err {
        Error::InvalidInput { field, reason } => {
            json!({"error": "invalid_input", "field": field, "message": format!("{field}: {reason}")})
        }
        Error::PolicyViolation(rule) => json!({"error": "policy_violation", "message": rule}),
        Error::Invalid(message) | Error::Reference(message) => {
            json!({"error": "invalid_input", "message": message})
        }
        Error::Conflict { field, message } => {
            json!({"error": "conflict", "field": field, "message": message})
        }
        Error::MfaRequired => json!({
            "error": "mfa_required",
            "message": "a second factor is required: give a TOTP code or a backup code",
        }),
        Error::InvalidCredentials
        | Error::Expired
        | Error::Revoked
        | Error::Replayed
        | Error::Integrity(_) => json!({"error": "unauthorized"}),
        Error::Forbidden(_) | Error::Locked { .. } => json!({"error": "forbidden"}),
        Error::RateLimited { retry_after_secs } => {
            json!({"error": "rate_limited", "retry_after_secs": retry_after_secs})
        }
        Error::NotFound(_) => json!({"error": "not_found"}),
        Error::ReadOnly(_) => json!({"error": "unavailable"}),
        Error::Busy { .. } => json!({"error": "busy", "message": err.to_string()}),
        Error::Config { .. } | Error::Db(_) => json!({"error": "internal"}),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        match &self {
            Error::Config { .. } | Error::Db(_) | Error::ReadOnly(_) => {
                tracing::error!(error = %self, "request failed");
            }
            Error::Integrity(_) => tracing::warn!(error = %self, "integrity check failed"),
            _ => tracing::debug!(error = %self, %status, "request refused"),
        }
        let mut response = (status, Json(body(&self))).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Error::RateLimited { retry_after_secs } = self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadOnly;
    use sea_orm::DbErr;

    async fn answer(err: Error) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = err.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn input_errors_are_422_and_name_the_field_or_rule() {
        let (status, _, body) = answer(Error::InvalidInput {
            field: "email",
            reason: "not an email address".into(),
        })
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "email");
        let (status, _, body) = answer(Error::PolicyViolation(
            "a password needs at least 15 characters".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["message"].as_str().unwrap().contains("15 characters"));
    }

    #[tokio::test]
    async fn conflicts_are_409_naming_the_field() {
        let (status, _, body) = answer(Error::conflict("username", "taken")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["field"], "username");
    }

    #[tokio::test]
    async fn failed_credentials_are_a_bare_401_with_a_challenge() {
        for err in [
            Error::InvalidCredentials,
            Error::Expired,
            Error::Revoked,
            Error::Replayed,
            Error::Integrity("seal mismatch for session 42".into()),
        ] {
            let (status, headers, body) = answer(err).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(body, json!({"error": "unauthorized"}));
        }
    }

    #[tokio::test]
    async fn a_missing_second_factor_is_401_and_says_so() {
        let (status, headers, body) = answer(Error::MfaRequired).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["error"], "mfa_required");
        assert!(body["message"].as_str().unwrap().contains("second factor"));
    }

    #[tokio::test]
    async fn refusals_are_a_bare_403() {
        for err in [
            Error::Forbidden("the user lacks audit.read".into()),
            Error::Locked { until: None },
        ] {
            let (status, headers, body) = answer(err).await;
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(!headers.contains_key(header::WWW_AUTHENTICATE));
            assert_eq!(body, json!({"error": "forbidden"}));
        }
    }

    #[tokio::test]
    async fn rate_limits_are_429_with_retry_after() {
        let (status, headers, _) = answer(Error::RateLimited {
            retry_after_secs: 17,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "17");
    }

    #[tokio::test]
    async fn a_read_only_server_is_503_without_its_reason() {
        for read_only in [ReadOnly::Standby, ReadOnly::Refused] {
            let (status, _, body) = answer(Error::ReadOnly(read_only)).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(body, json!({"error": "unavailable"}));
        }
    }

    #[tokio::test]
    async fn database_failures_are_500_without_driver_text() {
        let (status, _, body) = answer(Error::Db(DbErr::Custom(
            "relation \"users\" does not exist".into(),
        )))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": "internal"}));
        let (status, _, body) = answer(Error::Config {
            var: "HMAC_KEY",
            reason: "not set".into(),
        })
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": "internal"}));
    }

    #[tokio::test]
    async fn not_found_is_a_bare_404() {
        let (status, _, body) = answer(Error::NotFound("user 42".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": "not_found"}));
    }
}
