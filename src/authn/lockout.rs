//! Telling a person that their account was locked after repeated failed logins, by every
//! confirmed channel: if it was not them, they learn that someone is guessing their password.
//!
//! At most once per lock episode (the caller passes only the failure that started one) and once
//! a day, so a guesser cannot make us message someone every lock period for ever; the SMS takes
//! from the operator prefix's and global SMS budgets. A day's notice that could not go out at
//! all (no budget left) is not counted, so the next lock tries again. Sent in the background: the failed login's answer
//! neither waits for it nor differs from an unknown login's.

use super::contact_proof::{self, Proofs};
use super::throttle;
use crate::audit::{Event, Kind, Outcome};
use crate::identity::account;
use crate::identity::contact::PhoneNumber;
use crate::store::sql::Db;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};

pub async fn notify_locked(
    db: &Db,
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    account_id: &str,
    lang: Lang,
) {
    let acc = match account::find_by_id(db, account_id).await {
        Ok(Some(a)) => a,
        _ => return,
    };
    let first_today = match throttle::first_today(proofs.eph, "lock-notice", account_id).await {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!(error = %e, "could not check the lock-out notice budget");
            false
        }
    };
    let mut sent = Vec::new();
    if first_today {
        let minutes = (proofs.settings.limits.lockout_seconds / 60)
            .max(1)
            .to_string();
        let text = i18n::text(lang, "lock_text").replace("{minutes}", &minutes);
        let phone = acc
            .phone
            .as_deref()
            .filter(|_| acc.phone_verified)
            .and_then(|p| PhoneNumber::parse(p).ok());
        if let Some(phone) = phone
            && contact_proof::send_notice_sms(
                proofs,
                meta,
                "account_locked",
                &acc.id,
                &phone,
                &text,
            )
            .await
            .is_ok()
        {
            sent.push("sms");
        }
        if let Some(email) = acc.email.as_deref().filter(|_| acc.email_verified)
            && contact_proof::send_notice_email(
                proofs,
                meta,
                "account_locked",
                &acc.id,
                email,
                (i18n::text(lang, "lock_subject"), &text),
            )
            .await
            .is_ok()
        {
            sent.push("email");
        }
    }
    if first_today
        && sent.is_empty()
        && let Err(e) = throttle::forget_today(proofs.eph, "lock-notice", account_id).await
    {
        tracing::warn!(error = %e, "could not release the lock-out notice budget");
    }
    let ev = Event::new(Kind::AccountLocked, Outcome::Success)
        .subject(Some(account_id))
        .from(meta)
        .details(serde_json::json!({
            "lockout_seconds": proofs.settings.limits.lockout_seconds,
            "notified": sent,
            "already_told_today": !first_today,
        }));
    if let Err(e) = proofs.audit.write(ev).await {
        tracing::error!(error = %e, "audit write failed");
    }
}
