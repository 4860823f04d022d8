//! Linking an upstream identity to an existing account is its owner's deliberate act: from the
//! profile, with a fresh proof of the account (a password or certificate sign-in, or the
//! password entered again), then a fresh login at the upstream. What binds the two is a link
//! proof: for that account, that upstream, that SSO session, that one flow; single-use (taken
//! by the upstream's answer), short-lived, and void once used or once the account unlinks an
//! identity. The upstream's answer goes through the same checks as a login (`prove`), and the
//! identity is linked only under `identity::upstream::link_to`'s rules.

use serde::{Deserialize, Serialize};

use super::{Failure, Flow, Proven};
use crate::identity::upstream::{self as links, LinkError, Linked};
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, keys};
use crate::store::sql::Db;

/// How long an owner has, from pressing «link», to come back from the upstream.
pub const LINK_TTL: u64 = 600;

/// The pending link of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkProof {
    pub upstream: String,
    /// The SSO session that proved the account: the answer must come back to it.
    pub sid: String,
    /// The flow it was made for (its `state`'s hash).
    pub flow: String,
}

fn flow_id(flow: &Flow) -> String {
    crate::secrets::token_hash(&flow.secrets.state)
}

/// Records the link the owner of `account_id` has set off on (replacing any earlier one).
pub async fn offer(
    eph: &Ephemeral,
    account_id: &str,
    sid: &str,
    flow: &Flow,
) -> Result<(), StoreError> {
    let proof = LinkProof {
        upstream: flow.upstream.clone(),
        sid: sid.to_string(),
        flow: flow_id(flow),
    };
    let ttl = std::time::Duration::from_secs(LINK_TTL);
    eph.put_json(&keys::upstream_link(account_id), &proof, ttl)
        .await
}

/// Voids the account's pending link (an unlink does).
pub async fn void(eph: &Ephemeral, account_id: &str) -> Result<(), StoreError> {
    eph.delete(&keys::upstream_link(account_id)).await
}

/// Why a link was not made.
#[derive(Debug)]
pub enum Refusal {
    Failed(Failure),
    Store(StoreError),
}

impl From<Failure> for Refusal {
    fn from(f: Failure) -> Self {
        Refusal::Failed(f)
    }
}

/// The upstream's answer for the link of `account_id`, the browser's SSO session being `sid`:
/// the account's pending proof is taken (it counts once) and must be this flow's and this
/// session's; then the identity the answer proves is linked.
pub async fn finish(
    db: &Db,
    eph: &Ephemeral,
    account_id: &str,
    sid: Option<&str>,
    flow: &Flow,
    proven: impl Future<Output = Result<Proven, Failure>>,
    up: &crate::config::upstream::Upstream,
) -> Result<(Linked, Proven), Refusal> {
    let proof: Option<LinkProof> = eph
        .take_json(&keys::upstream_link(account_id))
        .await
        .map_err(Refusal::Store)?;
    let valid = proof.is_some_and(|p| {
        p.upstream == flow.upstream && p.flow == flow_id(flow) && Some(p.sid.as_str()) == sid
    });
    if !valid {
        return Err(Failure::LinkProofInvalid.into());
    }
    let proven = proven.await?;
    match links::link_to(db, &proven.key(up), account_id, &proven.person).await {
        Ok(linked) => Ok((linked, proven)),
        Err(LinkError::OtherAccount) => Err(Failure::OtherAccount.into()),
        Err(LinkError::NumberMismatch) => Err(Failure::NumberMismatch.into()),
        Err(LinkError::Store(e)) => Err(Refusal::Store(e)),
    }
}

/// Tells the account's owner, by each confirmed channel, that an upstream identity now signs in
/// to the account: if it was not them, they learn of it (a link outlives a password reset).
pub async fn tell_owner(
    db: &Db,
    proofs: &crate::authn::contact_proof::Proofs<'_>,
    meta: &crate::web::RequestMeta,
    account_id: &str,
    upstream_label: &str,
    lang: crate::web::i18n::Lang,
) {
    use crate::authn::contact_proof::{send_notice_email, send_notice_sms};
    use crate::identity::contact::PhoneNumber;
    use crate::web::i18n;
    let acc = match crate::identity::account::find_by_id(db, account_id).await {
        Ok(Some(a)) => a,
        _ => return,
    };
    let text = i18n::text(lang, "upstream_linked_notice").replace("{name}", upstream_label);
    const KIND: &str = "upstream_linked";
    let phone = (acc.phone.as_deref())
        .filter(|_| acc.phone_verified)
        .and_then(|p| PhoneNumber::parse(p).ok());
    if let Some(phone) = phone {
        let _ = send_notice_sms(proofs, meta, KIND, &acc.id, &phone, &text).await;
    }
    if let Some(email) = acc.email.as_deref().filter(|_| acc.email_verified) {
        let subject = i18n::text(lang, "upstream_linked_notice_subject");
        let _ = send_notice_email(proofs, meta, KIND, &acc.id, email, (subject, &text)).await;
    }
}
