//! One file per resource, each with its own `router`.

pub mod admin;
pub mod arrangements;
pub mod auth;
pub mod consents;
pub mod corrections;
pub mod downloads;
pub mod intake;
pub mod officer;
pub mod ops;
pub mod requests;
pub mod sources;
pub mod verification;
