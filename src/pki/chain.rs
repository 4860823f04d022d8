//! Certification path building and validation (RFC 5280 §6, the parts a sign-in needs):
//! from the end entity through the certificates the client sent to an anchor the operator
//! configured. Anchors never come from the client.
//!
//! Order, each failure its own reason: a path exists (`untrusted`), every signature on it
//! verifies (`bad_signature`), every certificate is within its validity (`expired`,
//! `not_yet_valid`), CA constraints and key usages hold (`key_usage`). Revocation follows in
//! `trust`, after the proof of possession, because it may need the network.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::budget::Budget;
use super::cert::Cert;
use super::{PkiError, Reason};

/// Longest path looked for, anchor included; national PKIs use three.
pub const MAX_DEPTH: usize = 6;

/// Tolerated clock difference when comparing validity periods.
pub const SKEW_SECS: i64 = 60;

/// Finds a path from `leaf` to one of `anchors` through `pool`, every link's signature checked.
///
/// Breadth first over the certificates, each reached once: a certificate already on some path
/// is never tried again as an issuer, so each (child, issuer) pair costs at most one signature
/// verification, and the work is at most pool × (pool + anchors) verifications, however the
/// pool is built (a depth-first search over orderings tried each ordering of look-alike CAs
/// sharing a name and key: factorial). Every verification is charged to `budget`. The path
/// found is a shortest one; among issuers of one certificate the configured anchors come first,
/// so a client cannot displace the anchor with a look-alike.
pub fn build(
    leaf: Arc<Cert>,
    pool: &[Arc<Cert>],
    anchors: &[Arc<Cert>],
    budget: &mut Budget,
) -> Result<Vec<Arc<Cert>>, PkiError> {
    let is_anchor = |c: &Cert| anchors.iter().any(|a| a.fingerprint == c.fingerprint);
    if is_anchor(&leaf) {
        return Ok(vec![leaf]);
    }
    // Reached certificates, each with the index of the one it issued (None for the leaf).
    let mut reached: Vec<(Arc<Cert>, Option<usize>, usize)> = vec![(leaf.clone(), None, 1)];
    let mut seen: HashSet<[u8; 32]> = HashSet::from([leaf.fingerprint]);
    let mut queue = VecDeque::from([0usize]);
    let mut bad_signature = None;
    while let Some(i) = queue.pop_front() {
        let (current, _, depth) = reached[i].clone();
        if depth >= MAX_DEPTH {
            continue;
        }
        for candidate in anchors.iter().chain(pool.iter()) {
            if seen.contains(&candidate.fingerprint) || !current.named_issuer_is(candidate) {
                continue;
            }
            budget.spend()?;
            if !current.signed_by(candidate) {
                bad_signature = Some(format!(
                    "the signature of \"{}\" does not verify under \"{}\"",
                    current.subject(),
                    candidate.subject()
                ));
                continue;
            }
            seen.insert(candidate.fingerprint);
            reached.push((candidate.clone(), Some(i), depth + 1));
            let at = reached.len() - 1;
            if is_anchor(candidate) {
                return Ok(path_to(&reached, at));
            }
            queue.push_back(at);
        }
    }
    match bad_signature {
        Some(d) => Err(PkiError::new(Reason::BadSignature, d)),
        None => Err(PkiError::new(
            Reason::Untrusted,
            format!(
                "no trusted issuer for \"{}\" (issuer \"{}\")",
                leaf.subject(),
                leaf.issuer()
            ),
        )),
    }
}

/// The path from the leaf to `reached[at]`, leaf first.
fn path_to(reached: &[(Arc<Cert>, Option<usize>, usize)], at: usize) -> Vec<Arc<Cert>> {
    let mut path = Vec::new();
    let mut next = Some(at);
    while let Some(i) = next {
        path.push(reached[i].0.clone());
        next = reached[i].1;
    }
    path.reverse();
    path
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
