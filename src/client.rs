//! What a request tells about its client: the IP address and the user agent,
//! checked and normalised by one set of rules for sessions, sign-in, MFA and
//! API keys.

use std::net::IpAddr;

use crate::Error;

/// Longest user agent kept (the columns' size).
pub(crate) const MAX_USER_AGENT: usize = 512;
/// Longest text accepted as an IP address before parsing.
const MAX_IP_TEXT: usize = 64;

/// What the request tells about the client; both parts are optional.
///
/// The IP is an IPv4 or IPv6 address as text; IPv4-mapped IPv6
/// (`::ffff:192.0.2.1`) counts as the IPv4 address, so one client is stored
/// in one form everywhere.
///
/// ```
/// use gatehouse::ClientInfo;
///
/// let client = ClientInfo { ip: Some("::ffff:192.0.2.1"), user_agent: Some("curl/8.5") };
/// assert!(client.validate().is_ok());
/// assert!(ClientInfo { ip: Some("not an ip"), user_agent: None }.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    /// The client's IP address.
    pub ip: Option<&'a str>,
    /// The client's `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// [`ClientInfo`] checked and normalised.
pub(crate) struct CheckedClient {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo<'_> {
    /// Checks the IP address and user agent as every service does, so a
    /// caller can refuse them before doing anything else.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `ip_address` or `user_agent`.
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map(|_| ())
    }

    /// The IP parsed and normalised, an empty user agent as none.
    pub(crate) fn check(&self) -> Result<CheckedClient, Error> {
        let ip = self.ip.map(parse_ip).transpose()?;
        let user_agent = match self.user_agent {
            None | Some("") => None,
            Some(ua) if ua.chars().count() > MAX_USER_AGENT => {
                return Err(Error::InvalidInput {
                    field: "user_agent",
                    reason: format!("longer than {MAX_USER_AGENT} characters"),
                });
            }
            Some(ua) if ua.chars().any(crate::accounts::validate::is_unprintable) => {
                return Err(Error::InvalidInput {
                    field: "user_agent",
                    reason: "contains control or invisible formatting characters".into(),
                });
            }
            Some(ua) => Some(ua.to_owned()),
        };
        Ok(CheckedClient { ip, user_agent })
    }

    /// The IP in its normal form, when it parses.
    pub(crate) fn normalized_ip(&self) -> Option<String> {
        self.ip
            .and_then(|text| parse_ip(text).ok())
            .map(|ip| ip.to_string())
    }
}

/// Parses an IP address, IPv4-mapped IPv6 becoming IPv4.
///
/// # Errors
/// [`Error::InvalidInput`] for anything but an IPv4 or IPv6 address.
pub(crate) fn parse_ip(text: &str) -> Result<IpAddr, Error> {
    let invalid = || Error::InvalidInput {
        field: "ip_address",
        reason: "not an IPv4 or IPv6 address".into(),
    };
    if text.len() > MAX_IP_TEXT {
        return Err(invalid());
    }
    let ip: IpAddr = text.parse().map_err(|_| invalid())?;
    Ok(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ip_addresses_are_normalized() {
        assert_eq!(
            parse_ip("::ffff:192.0.2.1").unwrap(),
            parse_ip("192.0.2.1").unwrap()
        );
        assert_eq!(parse_ip("2001:DB8::1").unwrap().to_string(), "2001:db8::1");
        for bad in ["", "192.0.2.256", "192.0.2.1 ", "localhost", "1.2.3.4\0"] {
            assert!(
                matches!(
                    parse_ip(bad),
                    Err(Error::InvalidInput {
                        field: "ip_address",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,100}") {
            let _ = parse_ip(&text);
        }
    }
}
