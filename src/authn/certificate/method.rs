//! The certificate method: the person signs the transaction's challenge with the key of an EDS
//! certificate or ID card; `pki` validates the certificate and the signature, `resolve` finds
//! (or makes, or links) the account.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ResolveError, authenticated, challenge, resolve};
use crate::audit::Audit;
use crate::audit::{Event, Kind, Outcome, ReasonCode};
use crate::authn::Acr;
use crate::authn::login::{Begin, Completion, LoginMethod, MethodFailure};
use crate::authn::throttle::LoginKey;
use crate::authn::transaction::LoginTransaction;
use crate::clock::Clock;
use crate::pki::cert::leaf_of_bundle;
use crate::pki::trust::Trust;
use crate::pki::verify::{Proof, verify_signed};
use crate::pki::{PkiError, Reason};
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::web::RequestMeta;

/// What `POST /login/certificate` carries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    #[serde(default)]
    pub tx: Option<String>,
    pub certificate: String,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub signature_raw: Option<String>,
}

pub fn parse_body(body: &[u8]) -> Result<LoginBody, PkiError> {
    let b: LoginBody = serde_json::from_slice(body).map_err(|e| {
        PkiError::malformed(format!(
            "the body must be JSON with certificate and signature or signature_raw: {e}"
        ))
    })?;
    if b.signature.is_some() == b.signature_raw.is_some() {
        return Err(PkiError::malformed(
            "give exactly one of signature (CMS) and signature_raw (hex)",
        ));
    }
    Ok(b)
}

/// A refused certificate login, with the certificate it presented (it may be anyone's).
#[derive(Debug)]
pub struct CertificateFailure {
    pub error: PkiError,
    certificate: Option<Value>,
}

impl ReasonCode for CertificateFailure {
    fn code(&self) -> &'static str {
        self.error.reason.as_str()
    }
}

impl MethodFailure for CertificateFailure {
    /// A spent challenge or a saturated verifier says nothing about the certificate.
    fn is_guess(&self) -> bool {
        !matches!(self.error.reason, Reason::BadChallenge | Reason::Busy)
    }

    fn details(&self) -> Option<Value> {
        Some(json!({"detail": self.error.detail, "certificate": self.certificate}))
    }
}

/// What the certificate check needs: the challenge, the trust anchors and their CRLs (fetched
/// over `http`), the accounts and identities, the time, and the audit of links and creations.
pub struct Certificate<'a> {
    pub eph: &'a Ephemeral,
    pub db: &'a Db,
    pub trust: &'a Trust,
    pub http: &'a reqwest::Client,
    pub clock: &'a Clock,
    pub audit: &'a Audit,
}

impl LoginMethod for Certificate<'_> {
    /// The parsed body, or why it did not parse (the attempt still spends the challenge).
    type Input = Result<LoginBody, PkiError>;
    type Failure = CertificateFailure;
    const NAME: &'static str = "certificate";
    const MAX_ACR: Acr = Acr::High;
    const BEGINS: Begin = Begin::Challenge;

    /// A certificate names no login: failures count for the address.
    fn login_key(&self, _input: &Self::Input) -> Option<LoginKey> {
        None
    }

    async fn complete(
        &self,
        meta: &RequestMeta,
        tx: &LoginTransaction,
        body: Self::Input,
    ) -> Completion<CertificateFailure> {
        // Who tried, as far as the certificate they sent says.
        let certificate = body
            .as_ref()
            .ok()
            .and_then(|b| leaf_of_bundle(b.certificate.as_bytes()))
            .map(|c| {
                json!({
                    "subject": c.subject(), "issuer": c.issuer(),
                    "serial": c.serial_hex(), "sha256": hex::encode(c.fingerprint),
                })
            });
        let (validated, resolved) = match check(self, tx, body).await {
            Ok(v) => v,
            Err(Failed::Store) => return Completion::Unavailable,
            Err(Failed::Refused(error)) => {
                return Completion::Failed {
                    failure: CertificateFailure { error, certificate },
                    account_id: None,
                };
            }
        };
        if resolved.linked || resolved.created {
            let kind = if resolved.linked {
                Kind::CertificateLinked
            } else {
                Kind::AccountCreated
            };
            self.audit
                .enqueue(
                    Event::new(kind, Outcome::Success)
                        .subject(Some(&resolved.account_id))
                        .method(Self::NAME)
                        .from(meta)
                        .details(json!({"certificate": validated.identity.fingerprint})),
                )
                .await;
        }
        Completion::Authenticated(authenticated(
            resolved.account_id,
            &validated,
            self.clock.now(),
        ))
    }
}

enum Failed {
    Refused(PkiError),
    Store,
}

async fn check(
    with: &Certificate<'_>,
    tx: &LoginTransaction,
    body: Result<LoginBody, PkiError>,
) -> Result<(crate::pki::trust::Validated, super::Resolved), Failed> {
    // The challenge is spent by any attempt, good or bad: a signature is tried once.
    let challenge = match challenge::take(with.eph, &tx.id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Failed::Refused(PkiError::new(
                Reason::BadChallenge,
                "no current challenge for this sign-in: it expired, was used, or was never issued",
            )));
        }
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            return Err(Failed::Store);
        }
    };
    let body = body.map_err(Failed::Refused)?;
    let raw;
    let proof = match (&body.signature, &body.signature_raw) {
        (Some(cms), _) => Proof::Cms(cms.as_bytes()),
        (None, Some(h)) => {
            raw = hex::decode(h.trim())
                .map_err(|_| Failed::Refused(PkiError::malformed("signature_raw is not hex")))?;
            Proof::Raw(&raw)
        }
        (None, None) => return Err(Failed::Refused(PkiError::malformed("no signature"))),
    };
    let validated = verify_signed(
        with.trust,
        Some(body.certificate.as_bytes()),
        proof,
        &challenge,
        with.clock.now(),
        with.http,
    )
    .await
    .map_err(Failed::Refused)?;
    match resolve(with.db, &validated, tx.step_up.as_deref()).await {
        Ok(r) => Ok((validated, r)),
        Err(ResolveError::Refused(e)) => Err(Failed::Refused(e)),
        Err(ResolveError::Store(e)) => {
            tracing::error!(error = %e, "database failed");
            Err(Failed::Store)
        }
    }
}
