//! Public-key infrastructure for signing in with an EDS certificate or ID card. Belarusian
//! national cryptography first: bign signatures (STB 34.101.45) over belt-hash (STB 34.101.31).
//! Certificate paths, CRLs and CMS build on these primitives.

pub mod bign;
