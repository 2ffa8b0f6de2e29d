//! Accounts (`users`): registration, password login with lockout, password
//! changes and single-use resets, administrative lock, listing and soft deletion.

mod hasher;
pub mod validate;

pub use hasher::{
    Argon2Costs, Argon2idHasher, OWASP_MIN_M_COST, OWASP_MIN_P_COST, OWASP_MIN_T_COST,
    PasswordHasher,
};
pub use validate::Identifier;
