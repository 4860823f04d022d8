//! Validated contact data. A [`PhoneNumber`] or an [`Email`] exists only after its `parse`
//! succeeded, so code holding one need not check it again.

use std::fmt;

use email_address::{EmailAddress, Options};
use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, Type};

/// Longest phone input accepted, in characters, before any parsing.
pub const MAX_PHONE_INPUT: usize = 32;
/// Longest email address accepted, in bytes (RFC 5321 §4.5.3.1.3 path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Numbers written without a country code are read as Belarusian.
const DEFAULT_REGION: Id = Id::BY;

/// Which contact a [`ContactError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Phone,
    Email,
}

impl fmt::Display for ContactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContactKind::Phone => "phone number",
            ContactKind::Email => "email address",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("no {0} given")]
    Empty(ContactKind),
    #[error("the {0} is too long")]
    TooLong(ContactKind),
    #[error("not a valid phone number")]
    NotAPhone,
    #[error("the phone number cannot receive SMS (not a mobile number)")]
    NotMobile,
    #[error("not a valid email address")]
    NotAnEmail,
}

impl ContactError {
    /// The i18n key of the message shown to the person.
    pub fn message_key(&self) -> &'static str {
        match self {
            ContactError::Empty(ContactKind::Phone) => "phone_empty",
            ContactError::Empty(ContactKind::Email) => "email_empty",
            ContactError::TooLong(ContactKind::Phone) => "phone_too_long",
            ContactError::TooLong(ContactKind::Email) => "email_too_long",
            ContactError::NotAPhone => "phone_invalid",
            ContactError::NotMobile => "phone_not_mobile",
            ContactError::NotAnEmail => "email_invalid",
        }
    }
}

/// Characters a written phone number may contain besides ASCII digits.
fn is_phone_punctuation(c: char) -> bool {
    matches!(c, ' ' | '+' | '-' | '(' | ')')
}

/// Whether a login looks like a phone number rather than a username: only ASCII digits,
/// spaces and `+ - ( )`, with at least 9 digits.
pub fn looks_like_phone(s: &str) -> bool {
    let t = s.trim();
    t.chars()
        .all(|c| c.is_ascii_digit() || is_phone_punctuation(c))
        && t.chars().filter(char::is_ascii_digit).count() >= 9
}

/// A phone number that can receive SMS, in E.164 (`+375291234567`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    /// Digits in the country code (3 for `+375`).
    code_len: usize,
}

impl PhoneNumber {
    /// Reads a number in any common writing; without a country code it is Belarusian
    /// (`8 029 …`, `80 29 …`). Twelve digits starting with `375` are read as international.
    pub fn parse(input: &str) -> Result<PhoneNumber, ContactError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(ContactError::Empty(ContactKind::Phone));
        }
        if t.chars().count() > MAX_PHONE_INPUT {
            return Err(ContactError::TooLong(ContactKind::Phone));
        }
        // Only ASCII digits and punctuation, a plus only in front: no letters (nor the
        // `ext.`/`tel:` forms the parser would accept), no other scripts' digits.
        if !t
            .chars()
            .all(|c| c.is_ascii_digit() || is_phone_punctuation(c))
            || t.rfind('+').is_some_and(|i| i > 0)
        {
            return Err(ContactError::NotAPhone);
        }
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err(ContactError::NotAPhone);
        }
        let text = if !t.starts_with('+') && digits.len() == 12 && digits.starts_with("375") {
            format!("+{digits}")
        } else {
            t.to_string()
        };
        let number =
            phonenumber::parse(Some(DEFAULT_REGION), &text).map_err(|_| ContactError::NotAPhone)?;
        if number.extension().is_some() || !phonenumber::is_valid(&number) {
            return Err(ContactError::NotAPhone);
        }
        match number.number_type(&DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => return Err(ContactError::NotMobile),
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        let code_len = number.code().value().to_string().len();
        // E.164 is `+`, the country code and the national number, all ASCII digits.
        if !e164.starts_with('+')
            || !e164[1..].bytes().all(|b| b.is_ascii_digit())
            || e164.len() < 1 + code_len + 4
        {
            return Err(ContactError::NotAPhone);
        }
        Ok(PhoneNumber { e164, code_len })
    }

    /// E.164: `+375291234567`.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The country code and the first two national digits (`+37529`), the operator prefix by
    /// which SMS are rate-limited.
    pub fn prefix(&self) -> &str {
        &self.e164[..1 + self.code_len + 2]
    }

    /// For display: `+375 29 ***-**-67`.
    pub fn masked(&self) -> String {
        let code = &self.e164[1..1 + self.code_len];
        let national = &self.e164[1 + self.code_len..];
        let (head, rest) = national.split_at(2);
        let n = rest.len();
        let hidden = if n >= 5 {
            format!("{}-**-{}", "*".repeat(n - 4), &rest[n - 2..])
        } else if n >= 3 {
            format!("{}{}", "*".repeat(n - 2), &rest[n - 2..])
        } else {
            "*".repeat(n)
        };
        format!("+{code} {head} {hidden}")
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Debug output is masked, so a number logged by accident is not disclosed.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

/// Zero-width and bidirectional formatting characters, which make an address display as
/// something it is not.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{AD}')
}

/// An email address: `local@domain`, lower-cased as a whole. Addresses are compared and stored
/// in this form: mail systems treat the domain, and in practice the local part, without regard
/// to case, and people expect `Ivan@Example.by` to be `ivan@example.by` (one account per
/// address, recovery in any case).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    address: String,
    local_len: usize,
}

impl Email {
    /// Accepts a plain address with a dotted domain; refuses display names (`Ivan <a@b.by>`),
    /// quoted local parts, comments, domain literals and whitespace.
    pub fn parse(input: &str) -> Result<Email, ContactError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(ContactError::Empty(ContactKind::Email));
        }
        if t.len() > MAX_EMAIL_LEN {
            return Err(ContactError::TooLong(ContactKind::Email));
        }
        // RFC 5322 specials are only legal inside quoted strings, comments and domain literals,
        // none of which we accept.
        if t.chars().any(|c| {
            c.is_whitespace() || c.is_control() || is_invisible(c) || "\"(),:;<>[\\]".contains(c)
        }) {
            return Err(ContactError::NotAnEmail);
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed =
            EmailAddress::parse_with_options(t, options).map_err(|_| ContactError::NotAnEmail)?;
        let local = parsed.local_part().to_lowercase();
        let domain = parsed.domain().to_lowercase();
        let tld = domain.rsplit('.').next().unwrap_or_default();
        if local.is_empty()
            || !domain.contains('.')
            || tld.is_empty()
            || tld.chars().all(|c| c.is_ascii_digit())
        {
            return Err(ContactError::NotAnEmail);
        }
        let address = format!("{local}@{domain}");
        if address.len() > MAX_EMAIL_LEN {
            return Err(ContactError::TooLong(ContactKind::Email));
        }
        Ok(Email {
            local_len: local.len(),
            address,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part before `@`, lower-cased.
    pub fn local_part(&self) -> &str {
        &self.address[..self.local_len]
    }

    /// The part after `@`, lower-cased.
    pub fn domain(&self) -> &str {
        &self.address[self.local_len + 1..]
    }

    /// For display: `iv***v@example.by`. Enough of the local part (its first one or two
    /// characters and its last) that the person can tell their old address from a new one,
    /// not enough to read it.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.local_part().chars().collect();
        let hidden = match chars.len() {
            0 => "*".to_string(),
            1 | 2 => format!("{}*", chars[0]),
            3 | 4 => format!("{}***{}", chars[0], chars[chars.len() - 1]),
            n => format!("{}{}***{}", chars[0], chars[1], chars[n - 1]),
        };
        format!("{hidden}@{}", self.domain())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// Debug output is masked, so an address logged by accident is not disclosed.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITINGS: [&str; 8] = [
        "+375 29 123-45-67",
        "+375(29)1234567",
        "+375291234567",
        "375291234567",
        "375 29 123 45 67",
        "80291234567",
        "8 (029) 123-45-67",
        "  8 029 123 45 67  ",
    ];

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn every_common_writing_of_a_belarusian_mobile_is_one_number() {
        for w in WRITINGS {
            assert_eq!(phone(w).as_str(), "+375291234567", "{w}");
            assert!(looks_like_phone(w), "{w}");
        }
        assert_eq!(phone(WRITINGS[0]), phone(WRITINGS[6]));
    }

    #[test]
    fn every_belarusian_operator_is_mobile() {
        for (w, e164, prefix) in [
            ("+375 29 123-45-67", "+375291234567", "+37529"),
            ("+375 33 612-34-56", "+375336123456", "+37533"),
            ("8 044 712-34-56", "+375447123456", "+37544"),
            ("80255123456", "+375255123456", "+37525"),
        ] {
            let p = phone(w);
            assert_eq!((p.as_str(), p.prefix()), (e164, prefix), "{w}");
        }
    }

    #[test]
    fn landlines_are_refused_with_their_own_error() {
        for w in ["+375 17 123-45-67", "8 017 123-45-67", "375171234567"] {
            assert_eq!(PhoneNumber::parse(w), Err(ContactError::NotMobile), "{w}");
        }
        assert_eq!(ContactError::NotMobile.message_key(), "phone_not_mobile");
        assert_ne!(
            ContactError::NotMobile.message_key(),
            ContactError::NotAPhone.message_key()
        );
    }

    #[test]
    fn foreign_mobiles_are_accepted() {
        let ru = phone("+7 912 345-67-89");
        assert_eq!((ru.as_str(), ru.prefix()), ("+79123456789", "+791"));
        assert_eq!(ru.masked(), "+7 91 ****-**-89");
        let pl = phone("+48 512 345 678");
        assert_eq!((pl.as_str(), pl.prefix()), ("+48512345678", "+4851"));
        assert_eq!(pl.masked(), "+48 51 ***-**-78");
    }

    #[test]
    fn accessors_and_masking() {
        let p = phone("8 (029) 123-45-67");
        assert_eq!(p.as_str(), "+375291234567");
        assert_eq!(p.to_string(), "+375291234567");
        assert_eq!(p.prefix(), "+37529");
        assert_eq!(p.masked(), "+375 29 ***-**-67");
        let debug = format!("{p:?}");
        assert!(!debug.contains("1234567"), "{debug}");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for w in [
            "+375 29 123-45-6",   // one digit short
            "+375 29 123-45-678", // one digit too many
            "+375 20 123-45-67",  // no such operator code
            "+375 29 023-45-67",  // mobile numbers do not start with 0 after the code
            "291234567890123456", // more than 15 digits
            "12",
            "123456",
            "+",
            "++375291234567",
            "+375+291234567",
            "375-",
            "()",
            "+000 00 000-00-00",
            "+999 29 123-45-67", // no such country code
            "8 10 ()",
        ] {
            assert_eq!(PhoneNumber::parse(w), Err(ContactError::NotAPhone), "{w}");
        }
    }

    #[test]
    fn hostile_phone_input_is_refused() {
        for w in [
            "ivan",
            "+375 29 ABC-45-67",
            "+375 29 123-45-67 ext. 89",
            "tel:+375291234567",
            "+375291234567;ext=1",
            "<script>alert(1)</script>",
            "+375291234567<b>",
            "'; DROP TABLE accounts; --",
            "375291234567' OR '1'='1",
            "+375291234567\n+375297654321",
            "+375\t29\t1234567",
            "+375\u{0}291234567",
            "٠٢٩١٢٣٤٥٦٧",                // Arabic-Indic digits
            "+٣٧٥٢٩١٢٣٤٥٦٧",             // the whole number in Arabic-Indic digits
            "+３７５２９１２３４５６７", // full-width digits
            "+375 29 123·45·67",
            "+375.29.123.45.67",
        ] {
            assert_eq!(PhoneNumber::parse(w), Err(ContactError::NotAPhone), "{w:?}");
        }
        // Empty and overlong input have their own errors.
        for w in ["", "   ", "\n\t"] {
            assert_eq!(
                PhoneNumber::parse(w),
                Err(ContactError::Empty(ContactKind::Phone))
            );
        }
        let long = format!("+375 29 123-45-67{}", " -".repeat(8));
        assert_eq!(long.chars().count(), 33);
        assert_eq!(
            PhoneNumber::parse(&long),
            Err(ContactError::TooLong(ContactKind::Phone))
        );
        assert_eq!(
            PhoneNumber::parse(&"9".repeat(100_000)),
            Err(ContactError::TooLong(ContactKind::Phone))
        );
        // 32 characters is still read.
        let max = format!(
            "+375 29 123-45-67{}",
            " ".repeat(7) + "-".repeat(8).as_str()
        );
        assert_eq!(max.chars().count(), 32);
        assert_eq!(phone(&max).as_str(), "+375291234567");
    }

    #[test]
    fn logins_that_look_like_phones() {
        for w in [
            "123456789",
            "+375 29 123-45-67",
            "(029) 1234567",
            "+7 912 345-67-89",
        ] {
            assert!(looks_like_phone(w), "{w}");
        }
        for w in [
            "",
            "ivan",
            "ivan375291234567",
            "12345678",
            "+375-29",
            "375_291234567",
            "٠٢٩١٢٣٤٥٦٧٨٩",
            "+375.29.123.45.67",
        ] {
            assert!(!looks_like_phone(w), "{w}");
        }
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let e = email("  Ivan.Petrov@Example.BY \n");
        assert_eq!(e.as_str(), "ivan.petrov@example.by");
        assert_eq!(e.local_part(), "ivan.petrov");
        assert_eq!(e.domain(), "example.by");
        assert_eq!(e.to_string(), "ivan.petrov@example.by");
        assert_eq!(e.masked(), "iv***v@example.by");
        assert_eq!(email("ALICE@EXAMPLE.BY"), email("alice@example.by"));
        assert_eq!(email("Иван@Пример.Бел").as_str(), "иван@пример.бел");
        assert!(!format!("{e:?}").contains("Petrov"));
        for (w, want) in [
            ("ivan@example.by", "ivan@example.by"),
            ("ivan+appeals@mail.gov.by", "ivan+appeals@mail.gov.by"),
            ("o'brien@example.com", "o'brien@example.com"),
            ("a@b.by", "a@b.by"),
            (
                "x_y-z@sub.domain.example.org",
                "x_y-z@sub.domain.example.org",
            ),
            ("иван@пример.бел", "иван@пример.бел"),
            ("user@ПРИМЕР.БЕЛ", "user@пример.бел"),
        ] {
            assert_eq!(email(w).as_str(), want, "{w}");
        }
        assert_eq!(email("иван@пример.бел").masked(), "и***н@пример.бел");
    }

    #[test]
    fn masked_addresses_tell_old_from_new() {
        assert_eq!(email("ivan@example.by").masked(), "i***n@example.by");
        assert_eq!(email("ivan.new@example.by").masked(), "iv***w@example.by");
        assert_eq!(email("ab@example.by").masked(), "a*@example.by");
        assert_eq!(email("a@b.by").masked(), "a*@b.by");
        assert!(!email("ivan.petrov@example.by").masked().contains("petrov"));
    }

    #[test]
    fn malformed_and_hostile_emails_are_refused() {
        for w in [
            "ivan",
            "ivan@",
            "@example.by",
            "ivan@localhost",
            "ivan@example",
            "ivan@example.",
            "ivan@.example.by",
            "ivan@example..by",
            "ivan@@example.by",
            "iv@n@example.by",
            "ivan@1.2.3.4",
            "ivan@[127.0.0.1]",
            "Ivan <ivan@example.by>",
            "<ivan@example.by>",
            "\"ivan petrov\"@example.by",
            "ivan petrov@example.by",
            "ivan(comment)@example.by",
            "ivan@example.by, boss@example.by",
            "ivan@example.by;boss@example.by",
            "ivan@example.by\nBcc: boss@example.by",
            "<script>alert(1)</script>@example.by",
            "ivan@example.by<script>",
            "ivan@example.by' OR '1'='1",
            "ivan@example.by'; DROP TABLE accounts; --",
            "ivan\u{0}@example.by",
            "ivan@exa\u{202e}mple.by",
        ] {
            let got = Email::parse(w);
            assert!(
                matches!(got, Err(ContactError::NotAnEmail)),
                "{w:?}: {got:?}"
            );
        }
        for w in ["", "   "] {
            assert_eq!(
                Email::parse(w),
                Err(ContactError::Empty(ContactKind::Email))
            );
        }
    }

    #[test]
    fn emails_up_to_254_bytes() {
        let domain = format!("{0}.{0}.{1}", "b".repeat(63), "c".repeat(61));
        let max = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(max.len(), 254);
        assert_eq!(email(&max).as_str(), max);
        let over = format!("{}@{domain}", "a".repeat(65));
        assert_eq!(
            Email::parse(&over),
            Err(ContactError::TooLong(ContactKind::Email))
        );
        assert_eq!(
            Email::parse(&format!("{}@example.by", "a".repeat(100_000))),
            Err(ContactError::TooLong(ContactKind::Email))
        );
    }

    #[test]
    fn errors_name_distinct_message_keys() {
        let all = [
            ContactError::Empty(ContactKind::Phone),
            ContactError::Empty(ContactKind::Email),
            ContactError::TooLong(ContactKind::Phone),
            ContactError::TooLong(ContactKind::Email),
            ContactError::NotAPhone,
            ContactError::NotMobile,
            ContactError::NotAnEmail,
        ];
        let keys: std::collections::HashSet<_> = all.iter().map(|e| e.message_key()).collect();
        assert_eq!(keys.len(), all.len());
        assert_eq!(ContactError::NotAPhone.message_key(), "phone_invalid");
        assert_eq!(ContactError::NotAnEmail.message_key(), "email_invalid");
        assert_eq!(
            ContactError::Empty(ContactKind::Email).to_string(),
            "no email address given"
        );
    }
}
