//! Who exists: accounts (people) and clients (relying subsystems). Later: organisations,
//! roles and delegations.

pub mod account;
pub mod certificate;
pub mod client;
pub mod contact;
pub mod redirect_uri;
