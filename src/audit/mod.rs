//! Audit and monitoring: audit entries with request context (one at a time or
//! ingested in bulk, by binary COPY on PostgreSQL), security events and their resolution, daily security
//! metrics, retention pruning and data classification lookups.
//!
//! Every entry point checks its input against the column sizes and returns
//! [`Error::InvalidInput`] instead of letting a backend truncate or fail.

pub mod classification;
pub mod copy;
pub mod entries;
pub mod ingest;
pub mod metrics;
pub mod partitions;
pub mod retention;
pub mod security_events;

use std::net::IpAddr;

use sea_orm::prelude::Json;

pub use copy::ingest_pooled;
pub use entries::{AuditEntry, AuditQuery, BasicEntry, event_types, find_entries, log_basic};
pub use ingest::ingest;
pub use metrics::rollup;
pub use retention::{Pruned, RetentionPolicy};
pub use security_events::{NewSecurityEvent, Resolution};

use crate::Error;

/// Longest IP address text (the columns' size).
const MAX_IP_CHARS: usize = 45;
/// Largest JSON document accepted in `metadata` / `details`, serialized.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Whether line breaks and tabs are allowed in a text value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Many,
}

/// Checks a text value: not empty, at most `max_chars` characters, no NUL
/// or other control characters (line breaks and tabs only with [`Lines::Many`]).
fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    lines: Lines,
) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidInput { field, reason };
    if value.is_empty() {
        return Err(invalid("must not be empty (leave it out instead)".into()));
    }
    if value.len() > 4 * max_chars || value.chars().count() > max_chars {
        return Err(invalid(format!("longer than {max_chars} characters")));
    }
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(())
}

fn check_opt_text(field: &'static str, value: Option<&str>, max_chars: usize) -> Result<(), Error> {
    value.map_or(Ok(()), |v| check_text(field, v, max_chars, Lines::One))
}

fn check_ip(value: Option<&str>) -> Result<(), Error> {
    match value {
        Some(ip) if ip.len() > MAX_IP_CHARS || ip.parse::<IpAddr>().is_err() => {
            Err(Error::InvalidInput {
                field: "ip_address",
                reason: "not an IP address".into(),
            })
        }
        _ => Ok(()),
    }
}

/// Checks a JSON document: at most [`MAX_JSON_BYTES`] serialized and no NUL
/// in any key or string (PostgreSQL's `jsonb` refuses `\u0000`).
fn check_json(field: &'static str, value: &Json) -> Result<(), Error> {
    fn has_nul(value: &Json) -> bool {
        match value {
            Json::String(s) => s.contains('\0'),
            Json::Array(items) => items.iter().any(has_nul),
            Json::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > MAX_JSON_BYTES {
        return Err(Error::InvalidInput {
            field,
            reason: format!("larger than {MAX_JSON_BYTES} bytes"),
        });
    }
    if has_nul(value) {
        return Err(Error::InvalidInput {
            field,
            reason: "must not contain NUL characters".into(),
        });
    }
    Ok(())
}
