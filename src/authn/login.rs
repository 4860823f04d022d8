//! The login-method framework. A method ([`LoginMethod`]) says only what is its own: its name,
//! the assurance it can give, how it begins, and how it checks what the person presented. One
//! runner ([`Runner::attempt`]) does the lifecycle around it for every method, in this order:
//!
//! 1. the page's CSRF token (a redirect method's: the `state` bound to the browser);
//! 2. the address gate (too many failures from this IP: refused, audited);
//! 3. the method's check;
//! 4. a lock of the login it names: while locked, even a right answer is answered as a wrong
//!    one, after the same work, so a lock tells a guesser nothing;
//! 5. a failure: audited before the answer, counted when it is a guess (address, login
//!    identifier, account), slowed down as the run grows, and the account's owner told when
//!    it starts a lock;
//! 6. a success: the failure run ends; policy, the SSO session and the way back to the client
//!    go through [`Resume`], which the assembly plugs the protocol into (OpenID Connect's
//!    authorization), so sign-in does not know the protocol that asked for it.
//!
//! Each transport (an HTML form, a JSON call, an upstream's redirect) turns the [`Refusal`] into
//! its own answer. Federation (`upstream`) is the third method; passkeys and an SMS second
//! factor will each be one more.
//!
//! The file is long because half of it is the runner's lifecycle test beside it: a scripted
//! method driven through the whole sequence (CSRF, our own trouble, guesses up to the lock, the
//! lock hiding a right answer, the address gate), which reads best in one piece.

use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use tower_sessions::Session;

use super::throttle::{self, Gate, LoginKey};
use super::transaction::LoginTransaction;
use super::{Acr, Authenticated, browser};
use crate::audit::{Audit, Event, Kind, Outcome, Reason, ReasonCode};
use crate::config::Limits;
use crate::pki::trust::Trust;
use crate::store::ephemeral::Ephemeral;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;

/// How a method begins, as the login page offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Fields posted from the login page (a password).
    Form,
    /// A challenge fetched first, then answered (a signature with a certificate).
    Challenge,
    /// A redirect to another identity provider and back (federation).
    Redirect,
}

/// What a method's failure must tell the runner.
pub trait MethodFailure: ReasonCode + Send {
    /// Counts towards the brute-force limits: a guess, not our own trouble or a stale form.
    fn is_guess(&self) -> bool;
    /// Answered as a lock when the login is locked (so the lock hides which it was).
    fn hidden_by_lock(&self) -> bool {
        self.is_guess()
    }
    /// What the audit event records besides the reason (never a secret).
    fn details(&self) -> Option<Value> {
        None
    }
}

/// How a method's check ended.
pub enum Completion<F> {
    Authenticated(Authenticated),
    /// Refused; `account_id` is the account the presented login names, if any (audited as the
    /// subject, counted, told of a lock).
    Failed {
        failure: F,
        account_id: Option<String>,
    },
    /// Our own storage failed: nothing is audited or counted, the person may retry.
    Unavailable,
}

/// A login method. It holds what its check needs (stores, keys, trust anchors).
pub trait LoginMethod {
    /// What the person presents.
    type Input: Send;
    type Failure: MethodFailure;
    /// Its name in the audit trail and the session ("password", "certificate").
    const NAME: &'static str;
    /// The strongest assurance it can give.
    const MAX_ACR: Acr;
    const BEGINS: Begin;

    /// The login identifier the input names, when the method has one (failures are counted
    /// and locks kept under it, whether an account has it or not).
    fn login_key(&self, input: &Self::Input) -> Option<LoginKey>;

    /// Checks what was presented, for this login transaction.
    fn complete(
        &self,
        meta: &RequestMeta,
        tx: &LoginTransaction,
        input: Self::Input,
    ) -> impl Future<Output = Completion<Self::Failure>> + Send;
}

/// Why the login cannot continue to what asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// The login transaction expired or was already finished.
    TxExpired,
    UnknownClient,
    Server,
}

impl ResumeError {
    /// The message key, also the JSON `error`.
    pub fn key(self) -> &'static str {
        match self {
            ResumeError::TxExpired => "tx_expired",
            ResumeError::UnknownClient => "unknown_client",
            ResumeError::Server => "server_error",
        }
    }
}

/// The way back, once a method has said who the person is: apply policy, sign the browser in,
/// and continue the request the login transaction holds. Answers where the browser goes next.
pub trait Resume: Send + Sync {
    fn resume<'a>(
        &'a self,
        session: &'a Session,
        tx_id: &'a str,
        who: Authenticated,
        meta: &'a RequestMeta,
    ) -> Pin<Box<dyn Future<Output = Result<Next, ResumeError>> + Send + 'a>>;

    /// The person gives up signing in (after a failure they cannot get past here): end the
    /// login transaction and answer what asked for it that nobody signed in.
    fn abandon<'a>(
        &'a self,
        session: &'a Session,
        tx_id: &'a str,
        meta: &'a RequestMeta,
    ) -> Pin<Box<dyn Future<Output = Result<Next, ResumeError>> + Send + 'a>>;
}

/// Who tells an account's owner that its login has just locked (in the background: the
/// failed login's answer neither waits for it nor differs from an unknown login's).
pub trait LockNotices: Send + Sync {
    fn locked(&self, meta: RequestMeta, account_id: String, lang: Lang);
}

/// What the runner needs around every method: the counters, the audit trail, the limits, the
/// owner's lock notice, and the way back.
pub struct Runner<'a> {
    pub eph: &'a Ephemeral,
    pub audit: &'a Audit,
    pub limits: &'a Limits,
    pub locks: &'a dyn LockNotices,
    pub resume: &'a dyn Resume,
}

/// Why an attempt did not sign the person in.
#[derive(Debug)]
pub enum Refusal<F> {
    /// The page's CSRF token is missing or wrong.
    Csrf,
    /// Too many failures from this address.
    IpLocked,
    /// The method refused.
    Failed {
        failure: F,
        account_id: Option<String>,
    },
    /// The login is locked: whatever the method said, answer as to a wrong guess.
    Locked { account_id: Option<String> },
    /// Signed in, but the authorization cannot go on.
    Resume(ResumeError),
    /// Storage or the audit trail failed; nothing was decided.
    Unavailable,
}

/// Where the browser goes after a sign-in: the client, or the login page again (step-up).
pub type Next = String;

/// Where an attempt is made: the request around it.
pub struct Attempt<'a> {
    pub session: &'a Session,
    pub meta: &'a RequestMeta,
    /// The login transaction this browser is signing in for.
    pub tx: &'a LoginTransaction,
    /// The CSRF token the page sent.
    pub csrf: &'a str,
    /// The page's language (for messages sent because of the attempt: a lock notice).
    pub lang: Lang,
}

impl Runner<'_> {
    /// One attempt of `method` with what the person presented.
    pub async fn attempt<M: LoginMethod>(
        &self,
        at: Attempt<'_>,
        method: &M,
        input: M::Input,
    ) -> Result<Next, Refusal<M::Failure>> {
        let Attempt {
            session,
            meta,
            tx,
            csrf,
            lang,
        } = at;
        // A redirect method comes back with its own proof that this browser set off on it (an
        // upstream's `state`, bound to the cookie session), checked before the attempt: that
        // is its CSRF token.
        if M::BEGINS != Begin::Redirect {
            match browser::csrf_ok(session, csrf).await {
                Ok(true) => {}
                Ok(false) => return Err(Refusal::Csrf),
                Err(e) => return Err(unavailable("browser session store", &e)),
            }
        }
        let failure_event = |reason: &dyn ReasonCode, subject: Option<String>| {
            Event::new(Kind::Login, Outcome::Failure)
                .reason(reason)
                .subject(subject)
                .client(&tx.request.client_id)
                .method(M::NAME)
                .from(meta)
        };
        match throttle::login_gate(self.eph, &meta.ip).await {
            Ok(Gate::Open) => {}
            Ok(Gate::IpLocked) => {
                let ev = failure_event(&Reason::IpLocked, None);
                self.audit
                    .write(ev)
                    .await
                    .map_err(|e| unavailable("audit", &e))?;
                return Err(Refusal::IpLocked);
            }
            Err(e) => return Err(unavailable("ephemeral store", &e)),
        }
        let key = method.login_key(&input);
        let (result, account_id) = match method.complete(meta, tx, input).await {
            Completion::Authenticated(who) => {
                let id = who.account_id.clone();
                (Ok(who), Some(id))
            }
            Completion::Failed {
                failure,
                account_id,
            } => (Err(failure), account_id),
            Completion::Unavailable => return Err(Refusal::Unavailable),
        };
        let lockable = match &result {
            Ok(_) => true,
            Err(failure) => failure.hidden_by_lock(),
        };
        let locked = match &key {
            Some(key) if lockable => matches!(
                throttle::login_locked(self.eph, key, account_id.as_deref()).await,
                Ok(true)
            ),
            _ => false,
        };
        let failure = match result {
            Ok(who) if !locked => {
                if let Some(key) = &key
                    && let Err(e) = throttle::record_success(self.eph, key, &who.account_id).await
                {
                    tracing::warn!(error = %e, "could not reset the failure counter");
                }
                return self
                    .resume
                    .resume(session, &tx.id, who, meta)
                    .await
                    .map_err(Refusal::Resume);
            }
            Ok(_) => None,
            Err(failure) => (!locked).then_some(failure),
        };
        self.failed(
            meta,
            lang,
            key.as_ref(),
            &failure_event,
            failure,
            account_id,
        )
        .await
    }

    /// A refused attempt: `failure` is None when a lock hid the method's answer.
    async fn failed<F: MethodFailure>(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        key: Option<&LoginKey>,
        failure_event: &impl Fn(&dyn ReasonCode, Option<String>) -> Event,
        failure: Option<F>,
        account_id: Option<String>,
    ) -> Result<Next, Refusal<F>> {
        let locked = failure.is_none();
        let reason: &dyn ReasonCode = match &failure {
            Some(f) => f,
            None => &Reason::AccountLocked,
        };
        let mut ev = failure_event(reason, account_id.clone());
        if let Some(key) = key {
            ev = ev.login_key(key.as_str());
        }
        if let Some(details) = failure.as_ref().and_then(|f| f.details()) {
            ev = ev.details(details);
        }
        self.audit
            .write(ev)
            .await
            .map_err(|e| unavailable("audit", &e))?;
        if locked || failure.as_ref().is_some_and(|f| f.is_guess()) {
            let limits = self.limits;
            let counted = match key {
                Some(key) => {
                    throttle::record_login_failure(
                        self.eph,
                        limits,
                        key,
                        account_id.as_deref(),
                        &meta.ip,
                    )
                    .await
                }
                None => {
                    throttle::record_failure(self.eph, limits, account_id.as_deref(), &meta.ip)
                        .await
                }
            };
            match counted {
                Ok(f) => {
                    if f.locked_now
                        && let Some(id) = &account_id
                    {
                        self.locks.locked(meta.clone(), id.clone(), lang);
                    }
                    tokio::time::sleep(f.delay(Duration::from_millis(limits.login_delay_ms))).await;
                }
                Err(e) => tracing::warn!(error = %e, "could not count a failed login"),
            }
        }
        Err(match failure {
            Some(failure) => Refusal::Failed {
                failure,
                account_id,
            },
            None => Refusal::Locked { account_id },
        })
    }
}

fn unavailable<F>(what: &str, e: &dyn std::fmt::Display) -> Refusal<F> {
    tracing::error!(error = %e, "{what} failed");
    Refusal::Unavailable
}

/// The methods this deployment offers on its login page, in the page's order.
pub fn offered(trust: &Trust, dev: bool) -> Vec<(&'static str, Begin)> {
    let mut methods = vec![(
        super::password::Password::NAME,
        super::password::Password::BEGINS,
    )];
    // Without a trust anchor no certificate can succeed; development shows the method anyway,
    // with the developer signer, so it can be tried with a test PKI.
    if trust.anchor_count() > 0 || dev {
        methods.push((
            super::certificate::method::Certificate::NAME,
            super::certificate::method::Certificate::BEGINS,
        ));
    }
    methods
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::Kind;
    use crate::authn::AuthFacts;
    use crate::authn::testkit::{self, ToldOfLocks, from};
    use crate::authn::transaction::Pending;
    use crate::store::sessions::BrowserSessionStore;

    /// A method that answers what the test tells it to.
    struct Scripted;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Said {
        Right,
        Wrong,
        OurTrouble,
        StoreDown,
    }

    #[derive(Debug, PartialEq, Eq)]
    struct ScriptedFailure(bool);

    impl ReasonCode for ScriptedFailure {
        fn code(&self) -> &'static str {
            if self.0 { "wrong_password" } else { "busy" }
        }
    }

    impl MethodFailure for ScriptedFailure {
        fn is_guess(&self) -> bool {
            self.0
        }
    }

    impl LoginMethod for Scripted {
        type Input = Said;
        type Failure = ScriptedFailure;
        const NAME: &'static str = "password";
        const MAX_ACR: Acr = Acr::Low;
        const BEGINS: Begin = Begin::Form;

        fn login_key(&self, _: &Said) -> Option<LoginKey> {
            Some(LoginKey::of("ivan"))
        }

        async fn complete(
            &self,
            _: &RequestMeta,
            _: &LoginTransaction,
            said: Said,
        ) -> Completion<ScriptedFailure> {
            let account_id = Some("acc".to_string());
            match said {
                Said::Right => Completion::Authenticated(Authenticated {
                    account_id: "acc".into(),
                    facts: AuthFacts {
                        auth_time: 1_700_000_000,
                        acr: Acr::Low,
                        amr: vec!["pwd".into()],
                        legal_entity: None,
                    },
                    method: Self::NAME,
                    upstream: None,
                }),
                Said::Wrong => Completion::Failed {
                    failure: ScriptedFailure(true),
                    account_id,
                },
                Said::OurTrouble => Completion::Failed {
                    failure: ScriptedFailure(false),
                    account_id,
                },
                Said::StoreDown => Completion::Unavailable,
            }
        }
    }

    /// The way back: to the client, or (for the transaction of `tx()`, that was never
    /// stored) nowhere.
    struct Back;

    impl Resume for Back {
        fn resume<'a>(
            &'a self,
            _: &'a Session,
            tx_id: &'a str,
            who: Authenticated,
            _: &'a RequestMeta,
        ) -> Pin<Box<dyn Future<Output = Result<Next, ResumeError>> + Send + 'a>> {
            let tx = tx();
            Box::pin(async move {
                assert_eq!(tx_id, tx.id);
                Ok(format!("https://rp.example/cb?for={}", who.account_id))
            })
        }

        fn abandon<'a>(
            &'a self,
            _: &'a Session,
            _: &'a str,
            _: &'a RequestMeta,
        ) -> Pin<Box<dyn Future<Output = Result<Next, ResumeError>> + Send + 'a>> {
            Box::pin(async { Ok("https://rp.example/cb?error=access_denied".into()) })
        }
    }

    type Ground = testkit::Ground<ToldOfLocks>;

    /// Failures lock a login after three and an address after five.
    const SETTINGS: &str = "lockout_threshold = 3\nip_failure_limit = 5\nlogin_delay_ms = 1\n";

    impl Ground {
        fn runner(&self) -> Runner<'_> {
            Runner {
                eph: &self.eph,
                audit: &self.audit,
                limits: &self.settings.limits,
                locks: &self.told,
                resume: &Back,
            }
        }
    }

    fn tx() -> LoginTransaction {
        LoginTransaction {
            id: "t".repeat(22),
            request: Pending {
                client_id: "rp".into(),
                redirect_uri: "https://rp.example/cb".into(),
                acr_values: Vec::new(),
                login_hint: None,
                ui_locales: None,
                fresh_within: None,
                protocol: Default::default(),
            },
            created_at: 0,
            step_up: None,
            refused: None,
        }
    }

    async fn run(
        g: &Ground,
        session: &Session,
        meta: &RequestMeta,
        csrf: &str,
        said: Said,
    ) -> Result<Next, Refusal<ScriptedFailure>> {
        let tx = tx();
        let at = Attempt {
            session,
            meta,
            tx: &tx,
            csrf,
            lang: Lang::Ru,
        };
        g.runner().attempt(at, &Scripted, said).await
    }

    async fn failures_audited(g: &Ground, reason: &str) -> usize {
        g.db.audit_log()
            .after(0, 1000)
            .await
            .expect("the audit log")
            .iter()
            .filter(|e| e.kind == Kind::Login.as_str() && e.reason.as_deref() == Some(reason))
            .count()
    }

    /// The lifecycle every method gets: CSRF first; our own trouble neither counted nor
    /// (when storage is down) audited; guesses audited and counted until the login locks;
    /// during the lock a right answer is refused as a wrong one; the address gate last.
    #[tokio::test]
    async fn the_runner_keeps_the_lifecycle_for_every_method() {
        let g = Ground::new(SETTINGS).await;
        let session = Session::new(None, Arc::new(BrowserSessionStore::Sql(g.db.clone())), None);
        let csrf = browser::csrf_token(&session).await.expect("a token");
        let meta = from("192.0.2.7");

        let r = run(&g, &session, &meta, "forged", Said::Right).await;
        assert!(matches!(r, Err(Refusal::Csrf)), "{r:?}");

        let r = run(&g, &session, &meta, &csrf, Said::StoreDown).await;
        assert!(matches!(r, Err(Refusal::Unavailable)), "{r:?}");
        let r = run(&g, &session, &meta, &csrf, Said::OurTrouble).await;
        assert!(matches!(
            r,
            Err(Refusal::Failed {
                failure: ScriptedFailure(false),
                ..
            })
        ));
        assert_eq!(
            failures_audited(&g, "busy").await,
            1,
            "audited, not counted"
        );

        // Right before any lock: through to the way back.
        let r = run(&g, &session, &meta, &csrf, Said::Right).await;
        assert_eq!(r.ok().as_deref(), Some("https://rp.example/cb?for=acc"));

        for _ in 0..3 {
            let r = run(&g, &session, &meta, &csrf, Said::Wrong).await;
            assert!(matches!(
                r,
                Err(Refusal::Failed {
                    failure: ScriptedFailure(true),
                    ..
                })
            ));
        }
        assert_eq!(failures_audited(&g, "wrong_password").await, 3);
        let told = || g.told.0.lock().expect("unpoisoned").clone();
        assert_eq!(told(), ["acc"], "the owner is told when the lock starts");
        let r = run(&g, &session, &meta, &csrf, Said::Right).await;
        assert!(matches!(r, Err(Refusal::Locked { .. })), "locked: {r:?}");
        assert_eq!(failures_audited(&g, "account_locked").await, 1);

        // A fifth counted failure from the address closes it, for any login and method.
        let r = run(&g, &session, &meta, &csrf, Said::Wrong).await;
        assert!(matches!(r, Err(Refusal::Locked { .. })), "{r:?}");
        let r = run(&g, &session, &meta, &csrf, Said::Right).await;
        assert!(matches!(r, Err(Refusal::IpLocked)), "{r:?}");
        assert_eq!(failures_audited(&g, "ip_locked").await, 1);
        let elsewhere = from("192.0.2.8");
        let r = run(&g, &session, &elsewhere, &csrf, Said::Wrong).await;
        assert!(
            matches!(r, Err(Refusal::Locked { .. })),
            "the login stays locked: {r:?}"
        );
        assert_eq!(told(), ["acc"], "and only then");
        g.worker.finish().await;
    }
}
