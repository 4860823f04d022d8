//! vhod — the single sign-on provider (OpenID Connect) of the national appeals system.
//!
//! The module map (README.md explains each room):
//! `oidc` the protocol, `authn` login methods, `identity` accounts and clients, `tokens` keys and JWTs,
//! `store` SQL and ephemeral state, `policy` sign-in decisions, `audit` the event trail,
//! `web` pages and browser plumbing, `cli` the `vhod` commands, `config` settings.

pub mod admin;
pub mod audit;
pub mod authn;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dev;
pub mod identity;
pub mod notify;
pub mod oidc;
pub mod pki;
pub mod policy;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tokens;
pub mod web;
