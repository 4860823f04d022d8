//! Telling a person at once that their account was locked after repeated failed logins, by every
//! confirmed channel: if it was not them, they learn that someone is guessing their password.

use crate::audit::Event;
use crate::identity::account;
use crate::notify::Message;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};

pub async fn notify_locked(app: &App, meta: &RequestMeta, account_id: &str, lang: Lang) {
    let acc = match account::find_by_id(&app.db, account_id).await {
        Ok(Some(a)) => a,
        _ => return,
    };
    let minutes = (app.settings.limits.lockout_seconds / 60)
        .max(1)
        .to_string();
    let text = i18n::text(lang, "lock_text").replace("{minutes}", &minutes);
    let mut sent = Vec::new();
    if let Some(phone) = acc.phone.as_deref().filter(|_| acc.phone_verified) {
        if app
            .notifier
            .send(&Message::sms(phone, text.clone()))
            .await
            .is_ok()
        {
            sent.push("sms");
        }
    }
    if let Some(email) = acc.email.as_deref().filter(|_| acc.email_verified) {
        let msg = Message::email(email, i18n::text(lang, "lock_subject"), text.clone());
        if app.notifier.send(&msg).await.is_ok() {
            sent.push("email");
        }
    }
    let ev = Event::new("account_locked", "success")
        .subject(Some(account_id))
        .from(meta)
        .details(serde_json::json!({
            "lockout_seconds": app.settings.limits.lockout_seconds,
            "notified": sent,
        }));
    if let Err(e) = app.audit.write(ev).await {
        tracing::error!(error = %e, "audit write failed");
    }
}
