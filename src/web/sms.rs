//! SMS texts: a code SMS says what the code is for and who sends it, and fits one SMS segment
//! (160 GSM 03.38 characters, or 70 UCS-2 characters once any other character is used, as
//! Cyrillic is): a longer text is split and billed as several messages, and may arrive in
//! pieces.

use super::i18n::{self, Lang};
use crate::authn::otp::Purpose;
use crate::config::Localized;

/// What a code SMS confirms; each has its own wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFor {
    /// The phone number given at registration.
    Registration,
    /// A new phone number on the profile page.
    PhoneChange,
    /// Resetting a forgotten password.
    Recovery,
}

impl CodeFor {
    pub const ALL: [CodeFor; 3] = [
        CodeFor::Registration,
        CodeFor::PhoneChange,
        CodeFor::Recovery,
    ];

    /// The code's namespace: a registration code and a change-of-number code both prove a
    /// number; neither resets a password.
    pub fn purpose(self) -> Purpose {
        match self {
            CodeFor::Registration | CodeFor::PhoneChange => Purpose::Phone,
            CodeFor::Recovery => Purpose::Recovery,
        }
    }

    fn text_key(self) -> &'static str {
        match self {
            CodeFor::Registration => "sms_code_registration",
            CodeFor::PhoneChange => "sms_code_phone_change",
            CodeFor::Recovery => "sms_code_recovery",
        }
    }
}

/// The text of a code SMS from `sender` (the service's short name).
pub fn code_text(lang: Lang, what: CodeFor, sender: &str, code: &str) -> String {
    i18n::text(lang, what.text_key())
        .replace("{name}", sender)
        .replace("{code}", code)
}

/// The GSM 03.38 default alphabet (one septet each) and its extension table (two septets).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Does `text` fit one SMS segment?
pub fn fits_one_segment(text: &str) -> bool {
    let mut septets = 0;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            // Any other character makes the whole message UCS-2.
            return text.encode_utf16().count() <= 70;
        }
    }
    septets <= 160
}

/// A sender name for the settings: every code SMS with it fits one segment in every language.
pub fn check_sender_name(name: &Localized) -> Result<(), String> {
    for lang in [Lang::Ru, Lang::Be, Lang::En] {
        let Some(n) = name.get(lang) else { continue };
        for what in CodeFor::ALL {
            let text = code_text(lang, what, n, "000000");
            if !fits_one_segment(&text) {
                return Err(format!(
                    "VHOD_SMS_NAME {n:?} makes the {lang:?} SMS {text:?} longer than one SMS segment: choose a shorter name"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_counted_as_phones_do() {
        assert!(fits_one_segment(&"a".repeat(160)));
        assert!(!fits_one_segment(&"a".repeat(161)));
        assert!(
            fits_one_segment(&"[".repeat(80)),
            "extension characters count twice"
        );
        assert!(!fits_one_segment(&"[".repeat(81)));
        assert!(fits_one_segment(&"я".repeat(70)));
        assert!(!fits_one_segment(&"я".repeat(71)));
        assert!(!fits_one_segment(&format!("{}ў", "a".repeat(70))));
    }

    #[test]
    fn every_code_sms_names_its_purpose_and_sender_in_one_segment() {
        for lang in [Lang::Ru, Lang::Be, Lang::En] {
            let sender = i18n::text(lang, "sms_name");
            let mut seen = Vec::new();
            for what in CodeFor::ALL {
                let text = code_text(lang, what, sender, "123456");
                assert!(text.contains(sender) && text.contains("123456"), "{text}");
                assert!(fits_one_segment(&text), "{lang:?} {what:?}: {text}");
                seen.push(text);
            }
            seen.dedup();
            assert_eq!(seen.len(), 3, "three different texts: {seen:?}");
        }
        assert!(check_sender_name(&Localized::default()).is_ok());
        let long = Localized {
            ru: Some("Очень длинное название системы".into()),
            ..Localized::default()
        };
        assert!(check_sender_name(&long).is_err());
    }
}
