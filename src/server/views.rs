//! The narrow views the assembly builds from its state for the services (each service states
//! what it needs, and only this file knows how the state provides it), and the interfaces
//! through which sign-in reaches what it must not know: the protocol (the resume, the
//! back-channel logout) and the lock notices.

use std::sync::Arc;

use super::App;
use crate::{authn, oidc, web};

// For sign-in, the authorization and the tokens.
impl App {
    pub fn authorization(self: &Arc<Self>) -> oidc::authorize::Authorization<'_> {
        oidc::authorize::Authorization {
            db: &self.db,
            eph: &self.eph,
            clients: &self.clients,
            audit: &self.audit,
            settings: &self.settings,
            clock: &self.clock,
            policies: &self.policies,
            ended: self,
        }
    }

    pub fn login_runner(self: &Arc<Self>) -> authn::login::Runner<'_> {
        authn::login::Runner {
            eph: &self.eph,
            audit: &self.audit,
            limits: &self.settings.limits,
            locks: self,
            resume: self,
        }
    }

    pub fn minter(&self) -> crate::tokens::mint::Minter<'_> {
        crate::tokens::mint::Minter {
            keys: &self.keys,
            settings: &self.settings,
            clock: &self.clock,
        }
    }

    /// A token request's context for the grants.
    pub fn grant_ctx<'a>(
        &'a self,
        client: &'a crate::identity::client::Client,
        params: &'a web::params::Params,
        meta: &'a web::RequestMeta,
    ) -> oidc::grants::GrantCtx<'a> {
        oidc::grants::GrantCtx {
            db: &self.db,
            eph: &self.eph,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            minter: self.minter(),
            client,
            policies: &self.policies,
            params,
            meta,
        }
    }

    pub fn password(&self) -> authn::password::Password<'_> {
        authn::password::Password {
            db: &self.db,
            hasher: &self.hasher,
            limits: &self.settings.limits,
        }
    }

    pub fn federated<'a>(
        &'a self,
        connector: &'a authn::upstream::connector::Connector,
    ) -> authn::upstream::Federated<'a> {
        authn::upstream::Federated {
            db: &self.db,
            audit: &self.audit,
            clock: &self.clock,
            connector,
            issuer: &self.settings.issuer,
        }
    }

    pub fn upstream_logout(self: &Arc<Self>) -> authn::upstream::backchannel::Backchannel<'_> {
        authn::upstream::backchannel::Backchannel {
            db: &self.db,
            eph: &self.eph,
            audit: &self.audit,
            clock: &self.clock,
            ended: self,
        }
    }

    pub fn certificate(&self) -> authn::certificate::method::Certificate<'_> {
        authn::certificate::method::Certificate {
            eph: &self.eph,
            db: &self.db,
            trust: &self.trust,
            http: &self.http,
            clock: &self.clock,
            audit: &self.audit,
        }
    }
}

/// The owner of a login that has just locked is told in the background.
impl authn::login::LockNotices for Arc<App> {
    fn locked(&self, meta: web::RequestMeta, account_id: String, lang: web::i18n::Lang) {
        let app = self.clone();
        tokio::spawn(async move {
            authn::lockout::notify_locked(&app.db, &app.proofs(), &meta, &account_id, lang).await
        });
    }
}

// For sending proofs and the self-service pages.
impl App {
    pub fn proofs(&self) -> authn::contact_proof::Proofs<'_> {
        authn::contact_proof::Proofs {
            eph: &self.eph,
            notifier: &self.notifier,
            audit: &self.audit,
            settings: &self.settings,
            pages: &self.pages,
        }
    }

    pub fn registrar(&self) -> authn::registration::Registrar<'_> {
        authn::registration::Registrar {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
        }
    }

    pub fn recovery(self: &Arc<Self>) -> authn::recovery::Recovery<'_> {
        authn::recovery::Recovery {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            ended: self,
        }
    }

    pub fn profile(self: &Arc<Self>) -> authn::profile::Profile<'_> {
        authn::profile::Profile {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            lock_notice: self,
            ended: self,
            policies: &self.policies,
        }
    }
}

/// The way back from a sign-in is OpenID Connect's authorization.
impl authn::login::Resume for Arc<App> {
    fn resume<'a>(
        &'a self,
        session: &'a tower_sessions::Session,
        tx_id: &'a str,
        who: authn::Authenticated,
        meta: &'a web::RequestMeta,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<authn::login::Next, authn::login::ResumeError>> + Send + 'a>,
    > {
        Box::pin(async move {
            let az = self.authorization();
            oidc::authorize::resume::complete(&az, session, tx_id, who, meta).await
        })
    }

    fn abandon<'a>(
        &'a self,
        session: &'a tower_sessions::Session,
        tx_id: &'a str,
        meta: &'a web::RequestMeta,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<authn::login::Next, authn::login::ResumeError>> + Send + 'a>,
    > {
        Box::pin(async move {
            let az = self.authorization();
            oidc::authorize::resume::abandon(&az, session, tx_id, meta).await
        })
    }
}

/// Sessions ended elsewhere are told to their clients by back-channel logout.
impl authn::session::EndedSessions for Arc<App> {
    fn ended(&self, sid: String, account_id: String) {
        let app = self.clone();
        tokio::spawn(async move {
            let b = oidc::backchannel_logout::Backchannel {
                db: &app.db,
                clients: &app.clients,
                minter: app.minter(),
                http: &app.http,
                audit: &app.audit,
            };
            oidc::backchannel_logout::notify(&b, &sid, &account_id).await
        });
    }
}
