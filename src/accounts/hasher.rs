//! Password hashing: the [`PasswordHasher`] seam and its Argon2id implementation,
//! which writes standard PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).

use argon2::password_hash::{self, PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};

use crate::Error;

/// OWASP's minimum Argon2id memory cost, in KiB (19 MiB).
pub const OWASP_MIN_M_COST: u32 = 19_456;
/// OWASP's minimum Argon2id iterations at that memory cost.
pub const OWASP_MIN_T_COST: u32 = 2;
/// OWASP's Argon2id parallelism.
pub const OWASP_MIN_P_COST: u32 = 1;

/// Hashes and verifies passwords. Implementations do CPU-heavy work: the
/// accounts service calls them on tokio's blocking pool, never on the runtime.
pub trait PasswordHasher: Send + Sync + 'static {
    /// A PHC string of `password` under the current parameters, with a fresh random salt.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters cannot be used.
    fn hash(&self, password: &str) -> Result<String, Error>;

    /// Whether `password` matches the PHC string `phc`.
    ///
    /// # Errors
    /// [`Error::Integrity`] when `phc` is not a password hash this hasher reads.
    fn verify(&self, password: &str, phc: &str) -> Result<bool, Error>;

    /// Whether `phc` was made with other parameters than the current ones
    /// (or cannot be read), so that it should be replaced at the next login.
    fn needs_rehash(&self, phc: &str) -> bool;
}

/// The memory, time and parallelism costs of Argon2id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Costs {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Costs {
    /// OWASP's minimum: m=19456 KiB, t=2, p=1.
    pub const OWASP_MIN: Self = Self {
        m_cost: OWASP_MIN_M_COST,
        t_cost: OWASP_MIN_T_COST,
        p_cost: OWASP_MIN_P_COST,
    };
}

impl Default for Argon2Costs {
    fn default() -> Self {
        Self::OWASP_MIN
    }
}

/// Argon2id (version 0x13) with a 16-byte random salt and a 32-byte output.
#[derive(Clone, Debug)]
pub struct Argon2idHasher {
    params: Params,
}

impl Default for Argon2idHasher {
    /// OWASP's minimum parameters.
    fn default() -> Self {
        Self::new(Argon2Costs::OWASP_MIN).expect("OWASP's parameters are valid Argon2 parameters")
    }
}

impl Argon2idHasher {
    /// A hasher with the given costs, which must be at least OWASP's minimum
    /// in memory and iterations (m=19456 KiB, t=2, p>=1).
    ///
    /// # Errors
    /// [`Error::Config`] when a cost is below that minimum or Argon2 refuses it.
    pub fn new(costs: Argon2Costs) -> Result<Self, Error> {
        if costs.m_cost < OWASP_MIN_M_COST
            || costs.t_cost < OWASP_MIN_T_COST
            || costs.p_cost < OWASP_MIN_P_COST
        {
            return Err(Error::Config {
                var: "argon2 costs",
                reason: format!(
                    "{costs:?} is below OWASP's minimum m={OWASP_MIN_M_COST}, t={OWASP_MIN_T_COST}, p={OWASP_MIN_P_COST}"
                ),
            });
        }
        let params = Params::new(costs.m_cost, costs.t_cost, costs.p_cost, None).map_err(|e| {
            Error::Config {
                var: "argon2 costs",
                reason: e.to_string(),
            }
        })?;
        Ok(Self { params })
    }

    /// The costs new hashes are made with.
    pub fn costs(&self) -> Argon2Costs {
        Argon2Costs {
            m_cost: self.params.m_cost(),
            t_cost: self.params.t_cost(),
            p_cost: self.params.p_cost(),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl PasswordHasher for Argon2idHasher {
    fn hash(&self, password: &str) -> Result<String, Error> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Config {
                var: "argon2 costs",
                reason: e.to_string(),
            })
    }

    fn verify(&self, password: &str, phc: &str) -> Result<bool, Error> {
        let parsed = PasswordHash::new(phc).map_err(|e| unreadable(&e))?;
        if parsed.algorithm.as_str() != Algorithm::Argon2id.as_str() {
            return Err(Error::Integrity(format!(
                "stored password hash uses {}, not argon2id",
                parsed.algorithm
            )));
        }
        // The parameters come from the stored hash, not from `self`.
        match self.argon2().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(unreadable(&e)),
        }
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != Algorithm::Argon2id.as_str()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }
}

fn unreadable(e: &dyn std::fmt::Display) -> Error {
    Error::Integrity(format!("stored password hash cannot be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_below_owasp_are_refused() {
        for costs in [
            Argon2Costs {
                m_cost: 8_192,
                ..Argon2Costs::OWASP_MIN
            },
            Argon2Costs {
                t_cost: 1,
                ..Argon2Costs::OWASP_MIN
            },
        ] {
            assert!(matches!(
                Argon2idHasher::new(costs),
                Err(Error::Config { .. })
            ));
        }
        assert_eq!(Argon2idHasher::default().costs(), Argon2Costs::OWASP_MIN);
    }

    #[test]
    fn hashes_verify_and_report_their_parameters() {
        let hasher = Argon2idHasher::default();
        let phc = hasher.hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse battery staple", &phc).unwrap());
        assert!(!hasher.verify("correct horse battery stapl", &phc).unwrap());
        assert!(!hasher.needs_rehash(&phc));
        let stronger = Argon2idHasher::new(Argon2Costs {
            t_cost: 3,
            ..Argon2Costs::OWASP_MIN
        })
        .unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(
            stronger
                .verify("correct horse battery staple", &phc)
                .unwrap(),
            "verification uses the stored parameters"
        );
    }

    #[test]
    fn unreadable_hashes_are_integrity_errors() {
        let hasher = Argon2idHasher::default();
        assert!(matches!(
            hasher.verify("x", "not a hash"),
            Err(Error::Integrity(_))
        ));
        assert!(matches!(
            hasher.verify("x", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
            Err(Error::Integrity(_))
        ));
        assert!(hasher.needs_rehash("not a hash"));
    }
}
