//! Who exists: accounts (people), the certificate and upstream identities that sign in to
//! them, and clients (relying subsystems); organisations, roles, delegations, and an account's
//! standing (what it holds where, at a moment).

pub mod account;
pub mod certificate;
pub mod client;
pub mod contact;
pub mod delegation;
pub mod org;
pub mod redirect_uri;
pub mod roles;
pub mod standing;
pub mod upstream;
pub mod username;
