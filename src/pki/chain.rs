//! Certification path building and validation (RFC 5280 §6, the parts a sign-in needs):
//! from the end entity through the certificates the client sent to an anchor the operator
//! configured. Anchors never come from the client.
//!
//! Order, each failure its own reason: a path exists (`untrusted`), every signature on it
//! verifies (`bad_signature`), every certificate is within its validity (`expired`,
//! `not_yet_valid`), CA constraints and key usages hold (`key_usage`). Revocation follows in
//! `trust`, because it may need the network.

use std::sync::Arc;

use super::cert::Cert;
use super::{PkiError, Reason};

/// Longest path looked for, anchor included; national PKIs use three.
pub const MAX_DEPTH: usize = 6;

/// Tolerated clock difference when comparing validity periods.
pub const SKEW_SECS: i64 = 60;

enum Search {
    Found(Vec<Arc<Cert>>),
    /// Some issuer named by the chain was found, but a signature failed.
    BadSignature(String),
    NoIssuer(String),
}

fn search(path: &mut Vec<Arc<Cert>>, pool: &[Arc<Cert>], anchors: &[Arc<Cert>]) -> Search {
    let Some(current) = path.last().cloned() else {
        return Search::NoIssuer("empty path".into());
    };
    if anchors.iter().any(|a| a.fingerprint == current.fingerprint) {
        return Search::Found(path.clone());
    }
    if path.len() >= MAX_DEPTH {
        return Search::NoIssuer("the path is too long".into());
    }
    let mut bad_signature = None;
    // Anchors first: a client cannot displace the configured anchor with a look-alike.
    let candidates: Vec<Arc<Cert>> = anchors
        .iter()
        .chain(pool.iter())
        .filter(|c| {
            current.named_issuer_is(c) && !path.iter().any(|p| p.fingerprint == c.fingerprint)
        })
        .cloned()
        .collect();
    for candidate in candidates {
        if !current.signed_by(&candidate) {
            bad_signature = Some(format!(
                "the signature of \"{}\" does not verify under \"{}\"",
                current.subject(),
                candidate.subject()
            ));
            continue;
        }
        path.push(candidate);
        match search(path, pool, anchors) {
            Search::Found(p) => return Search::Found(p),
            Search::BadSignature(d) => bad_signature = Some(d),
            Search::NoIssuer(_) => {}
        }
        path.pop();
    }
    match bad_signature {
        Some(d) => Search::BadSignature(d),
        None => Search::NoIssuer(format!(
            "no trusted issuer for \"{}\" (issuer \"{}\")",
            current.subject(),
            current.issuer()
        )),
    }
}

/// Finds a path from `leaf` to one of `anchors` through `pool`, every link's signature checked.
pub fn build(
    leaf: Arc<Cert>,
    pool: &[Arc<Cert>],
    anchors: &[Arc<Cert>],
) -> Result<Vec<Arc<Cert>>, PkiError> {
    let mut path = vec![leaf];
    match search(&mut path, pool, anchors) {
        Search::Found(p) => Ok(p),
        Search::BadSignature(d) => Err(PkiError::new(Reason::BadSignature, d)),
        Search::NoIssuer(d) => Err(PkiError::new(Reason::Untrusted, d)),
    }
}

/// Validity of every certificate on the path, the anchor's too (an expired root signs nothing).
pub fn check_validity(path: &[Arc<Cert>], now: i64) -> Result<(), PkiError> {
    for c in path {
        if now + SKEW_SECS < c.not_before {
            return Err(PkiError::new(
                Reason::NotYetValid,
                format!("\"{}\" is not valid yet", c.subject()),
            ));
        }
        if now - SKEW_SECS > c.not_after {
            return Err(PkiError::new(
                Reason::Expired,
                format!("\"{}\" has expired", c.subject()),
            ));
        }
    }
    Ok(())
}

/// basicConstraints, pathLenConstraint and keyUsage along the path (RFC 5280 §6.1.4).
pub fn check_constraints(path: &[Arc<Cert>]) -> Result<(), PkiError> {
    let Some((leaf, issuers)) = path.split_first() else {
        return Err(PkiError::new(Reason::Untrusted, "empty path"));
    };
    let usage = |d: String| PkiError::new(Reason::KeyUsage, d);
    if leaf.is_ca() {
        return Err(usage(format!(
            "\"{}\" is a CA certificate, not a person's",
            leaf.subject()
        )));
    }
    match &leaf.key_usage {
        Some(ku) if ku.digital_signature() => {}
        Some(_) => {
            return Err(usage(
                "the certificate's key usage does not allow digital signatures".into(),
            ));
        }
        None => {
            return Err(usage(
                "the certificate has no key usage; a sign-in certificate must allow digital signatures"
                    .into(),
            ));
        }
    }
    // Intermediate CAs below the one being checked; self-issued ones do not count (§4.2.1.9).
    let mut below = 0usize;
    for (i, ca) in issuers.iter().enumerate() {
        let is_anchor = i + 1 == issuers.len();
        match ca.ca {
            Some(limit) => {
                if let Some(limit) = limit
                    && below > usize::from(limit)
                {
                    return Err(usage(format!(
                        "\"{}\" allows {limit} intermediate CA(s) below it",
                        ca.subject()
                    )));
                }
            }
            // A v1 anchor carries no extensions at all; anything else must say it is a CA.
            None if is_anchor && ca.parsed.tbs_certificate.extensions.is_none() => {}
            None => {
                return Err(usage(format!(
                    "\"{}\" is not a CA certificate",
                    ca.subject()
                )));
            }
        }
        if let Some(ku) = &ca.key_usage
            && !ku.key_cert_sign()
        {
            return Err(usage(format!(
                "\"{}\" may not sign certificates",
                ca.subject()
            )));
        }
        if !ca.is_self_issued() {
            below += 1;
        }
    }
    Ok(())
}
