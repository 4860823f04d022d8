//! Sign-in through an upstream identity provider (НПЭС, ЕС ИФЮЛ): vhod is its relying party.
//! The browser leaves for the upstream from `GET /login/upstream/{name}` and comes back to
//! `GET /login/upstream/{name}/callback`; the callback's checks run in this order:
//!
//! 1. `state`: known, unused, of this upstream, and set off from this browser (`routes`);
//! 2. the upstream's own answer: an `error` refuses, a missing code too;
//! 3. RFC 9207 `iss`, when sent or promised;
//! 4. the code redeemed with PKCE and our client authentication (`connector`);
//! 5. the ID token: signature by the upstream's keys (refetched once on an unknown key),
//!    issuer, audience, expiry, nonce; userinfo when needed, with the same `sub`;
//! 6. the mapped claims a login needs (`claims`);
//! 7. the assurance: what the mapping gives, which must reach what the sign-in needs;
//! 8. whose account: by (upstream, issuer, sub), else by a vouched-for personal number, else a
//!    new applicant account (`identity::upstream`).
//!
//! Each refusal is a [`Failure`] with its own audited reason; the runner does the rest of the
//! lifecycle as for every method.

pub mod backchannel;
pub mod claims;
pub mod connector;
pub mod link;
pub mod routes;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::claims::Documents;
use self::connector::{Connector, FlowSecrets};
use super::login::{Begin, Completion, LoginMethod, MethodFailure};
use super::throttle::LoginKey;
use super::transaction::LoginTransaction;
use super::{Acr, AuthFacts, Authenticated};
use crate::audit::{Audit, Event, Kind, Outcome, ReasonCode};
use crate::clock::Clock;
use crate::config::upstream::{Upstream, UpstreamKind};
use crate::identity::upstream::{self as links, Resolution, ResolveError, UpstreamKey};
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, keys};
use crate::store::sql::Db;
use crate::web::RequestMeta;

/// Why a login through an upstream was refused; each is its own audit reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The callback's `state` is unknown, used, another upstream's or another browser's.
    StateMismatch,
    /// The person declined at the upstream (`error=access_denied`).
    Denied,
    /// Any other `error` from the upstream, or a callback without a code.
    UpstreamError(String),
    /// RFC 9207: the authorization response's `iss` is not the upstream's (or is missing
    /// where the upstream promised it).
    IssuerMismatch,
    /// The upstream did not answer in time, or not understandably (our side of it).
    Unavailable(String),
    /// The token endpoint refused the code.
    TokenRefused(String),
    NoIdToken,
    InvalidIdToken(String),
    BadSignature(String),
    /// The ID token's key is not in the upstream's JWKS, even fetched again.
    UnknownKey,
    WrongIssuer,
    WrongAudience,
    Expired,
    NonceMismatch,
    Userinfo(String),
    /// Userinfo is about another `sub` than the ID token.
    UserinfoSubject,
    /// Claims a login needs are not in what the upstream released.
    MissingClaims(Vec<String>),
    /// What the upstream asserted maps below what the sign-in needs.
    AcrTooLow {
        have: Acr,
        need: Acr,
    },
    /// Several accounts hold the vouched-for personal number.
    Ambiguous(usize),
    /// The identity is not the account this browser is stepping up (or linking).
    OtherAccount,
    /// A fresh authentication was asked of the upstream, and its `auth_time` does not show one.
    StaleLogin,
    /// A link's proof is missing, used, voided by an unlink, or another session's or flow's.
    LinkProofInvalid,
    /// The upstream vouches for a personal number that is not the linking account's.
    NumberMismatch,
}

impl ReasonCode for Failure {
    fn code(&self) -> &'static str {
        match self {
            Failure::StateMismatch => "state_mismatch",
            Failure::Denied => "upstream_denied",
            Failure::UpstreamError(_) => "upstream_error",
            Failure::IssuerMismatch => "issuer_mismatch",
            Failure::Unavailable(_) => "upstream_unavailable",
            Failure::TokenRefused(_) => "token_refused",
            Failure::NoIdToken => "no_id_token",
            Failure::InvalidIdToken(_) => "invalid_id_token",
            Failure::BadSignature(_) => "bad_signature",
            Failure::UnknownKey => "unknown_key",
            Failure::WrongIssuer => "wrong_issuer",
            Failure::WrongAudience => "wrong_audience",
            Failure::Expired => "id_token_expired",
            Failure::NonceMismatch => "nonce_mismatch",
            Failure::Userinfo(_) => "userinfo_failed",
            Failure::UserinfoSubject => "userinfo_sub_mismatch",
            Failure::MissingClaims(_) => "missing_claims",
            Failure::AcrTooLow { .. } => "acr_too_low",
            Failure::Ambiguous(_) => "ambiguous_match",
            Failure::OtherAccount => "other_account",
            Failure::StaleLogin => "stale_login",
            Failure::LinkProofInvalid => "link_proof_invalid",
            Failure::NumberMismatch => "personal_number_mismatch",
        }
    }
}

impl Failure {
    /// What the audit records of it besides the reason (never a token or code).
    fn detail(&self) -> Value {
        match self {
            Failure::UpstreamError(d)
            | Failure::Unavailable(d)
            | Failure::TokenRefused(d)
            | Failure::InvalidIdToken(d)
            | Failure::BadSignature(d)
            | Failure::Userinfo(d) => json!(d.chars().take(300).collect::<String>()),
            Failure::MissingClaims(c) => json!(c),
            Failure::AcrTooLow { have, need } => json!({"have": have, "need": need}),
            Failure::Ambiguous(n) => json!({"accounts": n}),
            _ => Value::Null,
        }
    }

    /// The message key of the page that tells the person.
    pub fn message_key(&self) -> &'static str {
        match self {
            Failure::StateMismatch => "upstream_err_state",
            Failure::Denied => "upstream_err_denied",
            Failure::Unavailable(_) => "upstream_err_unavailable",
            Failure::MissingClaims(_) => "upstream_err_missing_claims",
            Failure::AcrTooLow { .. } => "upstream_err_acr",
            Failure::Ambiguous(_) => "upstream_err_ambiguous",
            Failure::OtherAccount => "upstream_err_other_account",
            Failure::StaleLogin => "upstream_err_stale",
            Failure::LinkProofInvalid => "upstream_err_link_proof",
            Failure::NumberMismatch => "upstream_err_number",
            _ => "upstream_err_failed",
        }
    }
}

/// A refusal, with the upstream it concerned.
#[derive(Debug)]
pub struct Refused {
    pub upstream: String,
    pub failure: Failure,
}

impl ReasonCode for Refused {
    fn code(&self) -> &'static str {
        self.failure.code()
    }
}

impl MethodFailure for Refused {
    /// Nothing an upstream answers is a guess at a credential of ours.
    fn is_guess(&self) -> bool {
        false
    }

    fn details(&self) -> Option<Value> {
        Some(json!({"upstream": self.upstream, "detail": self.failure.detail()}))
    }
}

/// A login on its way to the upstream and back, kept under its `state` until the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub upstream: String,
    pub purpose: Purpose,
    pub secrets: FlowSecrets,
    /// The assurance the sign-in needs (asked of the upstream in its own values).
    pub need: Acr,
    /// The language of the page the person set off from: the page of the answer speaks it
    /// (the upstream's redirect back carries none). Absent in a flow stored before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<crate::web::i18n::Lang>,
    /// The upstream's authentication must be at most this many seconds older than the flow
    /// (0: made for it): asked of the upstream (`prompt=login`, `max_age`) and checked in its
    /// `auth_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_within: Option<i64>,
    /// When the browser set off.
    #[serde(default)]
    pub created_at: i64,
}

/// What the browser went to the upstream for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    /// To sign in, for this login transaction.
    Login { tx_id: String },
    /// To link the identity to this account, from its profile (see [`link`]).
    Link { account_id: String },
}

pub async fn save_flow(eph: &Ephemeral, flow: &Flow, ttl: u64) -> Result<(), StoreError> {
    let ttl = std::time::Duration::from_secs(ttl.max(1));
    eph.put_json(&keys::upstream_flow(&flow.secrets.state), flow, ttl)
        .await
}

/// Takes the flow of `state`: a state is answered once.
pub async fn take_flow(eph: &Ephemeral, state: &str) -> Result<Option<Flow>, StoreError> {
    if state.is_empty() || state.len() > 512 {
        return Ok(None);
    }
    eph.take_json(&keys::upstream_flow(state)).await
}

/// The configured upstreams, in the settings' order.
#[derive(Default)]
pub struct Connectors(Vec<Arc<Connector>>);

impl Connectors {
    pub fn new(upstreams: &[Upstream]) -> anyhow::Result<Connectors> {
        upstreams
            .iter()
            .map(|u| {
                Connector::new(u.clone())
                    .map(Arc::new)
                    .map_err(|e| anyhow::anyhow!("[[upstream]] {:?}: {e:#}", u.name))
            })
            .collect::<anyhow::Result<_>>()
            .map(Connectors)
    }

    pub fn all(&self) -> impl Iterator<Item = &Upstream> {
        self.0.iter().map(|c| &c.config)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Connector>> {
        self.0.iter().find(|c| c.config.name == name)
    }

    /// The upstreams a sign-in that needs `need` can be made through.
    pub fn able(&self, need: Acr) -> impl Iterator<Item = &Upstream> {
        self.0
            .iter()
            .map(|c| &c.config)
            .filter(move |u| claims::acr_values_for(u, need).is_some())
    }
}

/// The redirect URI registered at every upstream: `<issuer>/login/upstream/{name}/callback`.
pub fn redirect_uri(issuer: &str, name: &str) -> String {
    format!(
        "{}/login/upstream/{name}/callback",
        issuer.trim_end_matches('/')
    )
}

/// What the upstream login said of itself, kept with the session it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    pub upstream: String,
    pub issuer: String,
    pub subject: String,
    /// The upstream's session id (`sid`), for its back-channel logout.
    pub sid: Option<String>,
}

/// The upstream's answer at the callback.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub code: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

/// The callback's parameters, with the flow its `state` named.
pub struct Callback {
    pub flow: Flow,
    pub answer: Answer,
}

/// What an upstream's answer proved, every check passed: who the person is there and what the
/// mapping makes of it.
#[derive(Debug, Clone)]
pub struct Proven {
    pub subject: String,
    pub person: crate::identity::upstream::Person,
    pub legal_entity: Option<super::LegalEntity>,
    pub acr: Acr,
    pub amr: Vec<String>,
    pub auth_time: i64,
    /// The upstream's session id (`sid` of its ID token).
    pub sid: Option<String>,
}

impl Proven {
    pub fn key<'a>(&'a self, up: &'a Upstream) -> UpstreamKey<'a> {
        UpstreamKey {
            upstream: &up.name,
            issuer: up.link_issuer(),
            subject: &self.subject,
        }
    }
}

/// Ends the sessions `sids` that logins through `upstream` made, as a logout does (each with
/// its grants, except offline ones), for `cause`: each end audited (`logout`, `details.cause`)
/// and its clients told.
pub async fn end_sessions(
    db: &Db,
    audit: &Audit,
    ended: &dyn crate::authn::session::EndedSessions,
    sids: &[String],
    meta: &RequestMeta,
    cause: &str,
    upstream: &str,
) -> Result<(), StoreError> {
    for sid in sids {
        let sso = crate::authn::session::find_not_ended(db, sid).await?;
        let revoked = crate::store::units::logout(db, sid).await?.grants_revoked;
        let account = sso.map(|s| s.account_id);
        let ev = Event::new(Kind::Logout, Outcome::Success)
            .subject(account.clone())
            .method(<Federated<'_> as LoginMethod>::NAME)
            .from(meta)
            .details(json!({
                "sid": sid, "grants_revoked": revoked, "cause": cause, "upstream": upstream,
            }));
        audit
            .write(ev)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if let Some(account) = account {
            ended.ended(sid.clone(), account);
        }
    }
    Ok(())
}

/// Clock skew allowed between an upstream and us.
const SKEW: i64 = 60;

/// Did the upstream authenticate the person recently enough for the flow? An OpenID upstream
/// asked for it must say when in `auth_time` (OpenID Connect Core §3.1.2.1 makes it required
/// once `max_age` is sent); a plain OAuth 2.0 upstream has no standard way to, and is taken at
/// its word when it says nothing.
fn fresh_enough(kind: UpstreamKind, flow: &Flow, auth_time: Option<i64>) -> bool {
    let Some(within) = flow.fresh_within else {
        return true;
    };
    match (auth_time, kind) {
        (Some(t), _) => t >= flow.created_at - within - SKEW,
        (None, UpstreamKind::OAuth2) => true,
        (None, UpstreamKind::Oidc) => false,
    }
}

/// The checks of an upstream's answer, 2 to 7 of the module's list, at `now`; `issuer` is
/// ours (the redirect URI is made from it).
pub async fn prove(
    c: &Connector,
    issuer: &str,
    answer: Answer,
    flow: &Flow,
    now: i64,
) -> Result<Proven, Failure> {
    let up = &c.config;
    if let Some(error) = answer.error {
        return Err(match error.as_str() {
            "access_denied" => Failure::Denied,
            _ => Failure::UpstreamError(error.chars().take(100).collect()),
        });
    }
    let code = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| Failure::UpstreamError("the callback has no code".into()))?;
    c.check_iss_parameter(answer.iss.as_deref()).await?;
    let redirect = redirect_uri(issuer, &up.name);
    let lacks = |id: &serde_json::Map<String, Value>| {
        Documents {
            id_token: Some(id.clone()),
            userinfo: None,
        }
        .id_token_lacks(up)
    };
    let asserted = c
        .redeem(&redirect, &code, &flow.secrets, lacks, now)
        .await?;
    let docs = Documents {
        id_token: asserted.id_token,
        userinfo: asserted.userinfo,
    };
    let (person, legal_entity) = claims::person(up, &docs).map_err(Failure::MissingClaims)?;
    let (acr, amr) = claims::assurance(up, &docs);
    if acr < flow.need {
        return Err(Failure::AcrTooLow {
            have: acr,
            need: flow.need,
        });
    }
    // The upstream's own time of authentication, when it says one that is not ahead of ours.
    let said = docs
        .text("auth_time")
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t <= now + SKEW);
    if !fresh_enough(up.kind, flow, said) {
        return Err(Failure::StaleLogin);
    }
    let auth_time = said.map_or(now, |t| t.min(now));
    let sid = (docs.id_token.as_ref())
        .and_then(|d| d.get("sid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Proven {
        subject: asserted.subject,
        person,
        legal_entity,
        acr,
        amr,
        auth_time,
        sid,
    })
}

/// The method: one upstream, and what its checks need.
pub struct Federated<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub clock: &'a Clock,
    pub connector: &'a Connector,
    pub issuer: &'a str,
}

impl LoginMethod for Federated<'_> {
    type Input = Callback;
    type Failure = Refused;
    const NAME: &'static str = "upstream";
    const MAX_ACR: Acr = Acr::High;
    const BEGINS: Begin = Begin::Redirect;

    /// An upstream's answer names no login of ours.
    fn login_key(&self, _: &Callback) -> Option<LoginKey> {
        None
    }

    async fn complete(
        &self,
        meta: &RequestMeta,
        tx: &LoginTransaction,
        cb: Callback,
    ) -> Completion<Refused> {
        let refused = |failure| Completion::Failed {
            failure: Refused {
                upstream: self.connector.config.name.clone(),
                failure,
            },
            account_id: None,
        };
        let (who, resolution) = match self.check(tx, cb).await {
            Ok(v) => v,
            Err(Checked::Refused(f)) => return refused(f),
            Err(Checked::Store(e)) => {
                tracing::error!(error = %e, "database failed");
                return Completion::Unavailable;
            }
        };
        let kind = match resolution {
            Resolution::Known(_) => None,
            Resolution::LinkedByNumber(_) => Some(Kind::UpstreamLinked),
            Resolution::Created(_) => Some(Kind::AccountCreated),
        };
        if let Some(kind) = kind {
            let up = who.upstream.as_ref();
            self.audit
                .enqueue(
                    Event::new(kind, Outcome::Success)
                        .subject(Some(&who.account_id))
                        .method(Self::NAME)
                        .from(meta)
                        .details(json!({
                            "upstream": up.map(|u| &u.upstream),
                            "issuer": up.map(|u| &u.issuer),
                            "by": if kind == Kind::UpstreamLinked { "personal_number" } else { "new" },
                        })),
                )
                .await;
        }
        Completion::Authenticated(who)
    }
}

enum Checked {
    Refused(Failure),
    Store(StoreError),
}

impl From<Failure> for Checked {
    fn from(f: Failure) -> Self {
        Checked::Refused(f)
    }
}

impl Federated<'_> {
    async fn check(
        &self,
        tx: &LoginTransaction,
        cb: Callback,
    ) -> Result<(Authenticated, Resolution), Checked> {
        let up = &self.connector.config;
        let now = self.clock.now();
        let proven = prove(self.connector, self.issuer, cb.answer, &cb.flow, now).await?;
        let key = proven.key(up);
        let step_up = tx.step_up.as_deref();
        let resolution = match links::resolve(self.db, &key, &proven.person, step_up).await {
            Ok(r) => r,
            Err(ResolveError::Ambiguous(n)) => return Err(Failure::Ambiguous(n).into()),
            Err(ResolveError::OtherAccount) => return Err(Failure::OtherAccount.into()),
            Err(ResolveError::Store(e)) => return Err(Checked::Store(e)),
        };
        let who = Authenticated {
            account_id: resolution.account_id().to_string(),
            facts: AuthFacts {
                auth_time: proven.auth_time,
                acr: proven.acr,
                amr: proven.amr.clone(),
                legal_entity: proven.legal_entity.clone(),
            },
            method: Self::NAME,
            upstream: Some(UpstreamLogin {
                upstream: up.name.clone(),
                issuer: up.link_issuer().to_string(),
                subject: proven.subject.clone(),
                sid: proven.sid.clone(),
            }),
        };
        Ok((who, resolution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(fresh_within: Option<i64>) -> Flow {
        Flow {
            upstream: "npes".into(),
            purpose: Purpose::Link {
                account_id: "a".into(),
            },
            secrets: FlowSecrets {
                state: "s".into(),
                nonce: "n".into(),
                pkce_verifier: "v".into(),
            },
            need: Acr::Low,
            lang: None,
            fresh_within,
            created_at: 1_800_000_000,
        }
    }

    /// Asked for a fresh authentication, an OpenID upstream must show one in auth_time.
    #[test]
    fn a_fresh_login_is_one_the_upstream_dates_after_the_flow() {
        let start = 1_800_000_000;
        let oidc = UpstreamKind::Oidc;
        assert!(fresh_enough(oidc, &flow(None), None), "nothing asked");
        assert!(fresh_enough(oidc, &flow(Some(0)), Some(start + 5)));
        assert!(
            fresh_enough(oidc, &flow(Some(0)), Some(start - 30)),
            "clock skew"
        );
        assert!(!fresh_enough(oidc, &flow(Some(0)), Some(start - 3600)));
        assert!(!fresh_enough(oidc, &flow(Some(0)), None), "not dated");
        assert!(
            fresh_enough(oidc, &flow(Some(7200)), Some(start - 3600)),
            "max_age"
        );
        assert!(fresh_enough(UpstreamKind::OAuth2, &flow(Some(0)), None));
        assert!(!fresh_enough(
            UpstreamKind::OAuth2,
            &flow(Some(0)),
            Some(start - 3600)
        ));
    }
}
