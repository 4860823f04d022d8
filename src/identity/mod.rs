//! Who exists: accounts (people), the certificate and upstream identities that sign in to
//! them, and clients (relying subsystems). Later: organisations, roles and delegations.

pub mod account;
pub mod certificate;
pub mod client;
pub mod contact;
pub mod redirect_uri;
pub mod upstream;
pub mod username;
