//! Which new passwords are acceptable, after NIST SP 800-63B §5.1.1.2 (memorized secrets).
//!
//! A password is counted in Unicode characters, may contain any character (Cyrillic, spaces,
//! emoji) and has no composition rules. It is refused when it is too short, too long, appears in
//! the list of common and breached passwords, or contains the person's own login, phone or email.
//! Checked when a password is set; never at login.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The minimum length when the settings give none (SP 800-63B: at least 8 characters).
pub const DEFAULT_MIN_CHARS: usize = 8;
/// At most this many characters (SP 800-63B asks to allow at least 64).
pub const MAX_CHARS: usize = 256;
/// At most this many bytes: the same bound the login form applies before hashing.
pub const MAX_BYTES: usize = super::MAX_PASSWORD_LEN;
/// Personal strings shorter than this are not looked for in the password.
pub const MIN_PERSONAL_CHARS: usize = 4;

/// Common and breached passwords, lower-cased, one per line; lines starting with `# ` are
/// comments. (Entries themselves may start with `#`, e.g. `#1stunna`.)
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
        .collect()
});

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password must have at least {min} characters")]
    TooShort { min: usize },
    #[error("the password must have at most {MAX_CHARS} characters")]
    TooLong,
    #[error("the password is too common")]
    Common,
    #[error("the password contains the login, phone number or email")]
    ContainsPersonal,
}

impl PolicyViolation {
    /// The i18n key of the message shown to the person.
    pub fn message_key(&self) -> &'static str {
        match self {
            PolicyViolation::TooShort { .. } => "password_too_short",
            PolicyViolation::TooLong => "password_too_long",
            PolicyViolation::Common => "password_common",
            PolicyViolation::ContainsPersonal => "password_contains_personal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy::new(DEFAULT_MIN_CHARS)
    }
}

impl PasswordPolicy {
    /// `min_chars` is clamped to `1..=MAX_CHARS`.
    pub fn new(min_chars: usize) -> Self {
        PasswordPolicy {
            min_chars: min_chars.clamp(1, MAX_CHARS),
        }
    }

    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Checks a new password. `personal` are the person's own strings (login, phone digits,
    /// email, the email's local part); those of at least [`MIN_PERSONAL_CHARS`] characters must
    /// not occur in the password, compared case-insensitively.
    pub fn check(&self, password: &str, personal: &[&str]) -> Result<(), PolicyViolation> {
        if password.len() > MAX_BYTES {
            return Err(PolicyViolation::TooLong);
        }
        let chars = password.chars().count();
        if chars > MAX_CHARS {
            return Err(PolicyViolation::TooLong);
        }
        if chars < self.min_chars {
            return Err(PolicyViolation::TooShort {
                min: self.min_chars,
            });
        }
        let lower = password.to_lowercase();
        if COMMON.contains(lower.as_str()) {
            return Err(PolicyViolation::Common);
        }
        let contains_personal = personal
            .iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| p.chars().count() >= MIN_PERSONAL_CHARS)
            .any(|p| lower.contains(&p));
        if contains_personal {
            return Err(PolicyViolation::ContainsPersonal);
        }
        Ok(())
    }
}

/// Whether the password (case-insensitively) is in the list of common and breached passwords.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

/// How many passwords the list holds.
pub fn common_password_count() -> usize {
    COMMON.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> PasswordPolicy {
        PasswordPolicy::default()
    }

    #[test]
    fn length_is_counted_in_characters_between_min_and_256() {
        let p = default();
        assert_eq!(p.min_chars(), 8);
        assert_eq!(
            p.check("vb7#kq2", &[]),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(p.check("vb7#kq2z", &[]), Ok(()));
        assert_eq!(p.check("", &[]), Err(PolicyViolation::TooShort { min: 8 }));
        // Seven Cyrillic letters are 14 bytes but still seven characters.
        assert_eq!(
            p.check("жбщъэюф", &[]),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(p.check("жбщъэюфы", &[]), Ok(()));
        assert_eq!(p.check(&"x7".repeat(128), &[]), Ok(()));
        assert_eq!(
            p.check(&format!("{}y", "x7".repeat(128)), &[]),
            Err(PolicyViolation::TooLong)
        );
        // 150 Cyrillic letters: 300 bytes, 150 characters: accepted.
        let cyr = "жбщъэ".repeat(30);
        assert_eq!((cyr.len(), cyr.chars().count()), (300, 150));
        assert_eq!(p.check(&cyr, &[]), Ok(()));
        // 256 four-byte emoji: 256 characters but 1024 bytes; one more is both too long.
        let emoji = "🔑".repeat(256);
        assert_eq!(emoji.len(), 1024);
        assert_eq!(p.check(&emoji, &[]), Ok(()));
        assert_eq!(
            p.check(&format!("{emoji}x"), &[]),
            Err(PolicyViolation::TooLong)
        );
        // Huge input is refused on its byte length.
        assert_eq!(
            p.check(&"a".repeat(1_000_000), &[]),
            Err(PolicyViolation::TooLong)
        );
    }

    #[test]
    fn minimum_is_configurable() {
        let p = PasswordPolicy::new(12);
        assert_eq!(
            p.check("vb7#kq2zvb7", &[]),
            Err(PolicyViolation::TooShort { min: 12 })
        );
        assert_eq!(p.check("vb7#kq2zvb7#", &[]), Ok(()));
        assert_eq!(PasswordPolicy::new(0).min_chars(), 1);
        assert_eq!(PasswordPolicy::new(10_000).min_chars(), MAX_CHARS);
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        let p = default();
        for w in [
            "password",
            "Password",
            "PASSWORD",
            "12345678",
            "qwerty123",
            "1q2w3e4r",
            "ЙЦУКЕН123",
            "Пароль123",
            "zxcvbnm123",
            "фывапролджэ",
            "беларусь123",
            "iloveyou",
            "#1stunna",
        ] {
            assert_eq!(p.check(w, &[]), Err(PolicyViolation::Common), "{w}");
        }
        // Below the minimum, shortness is reported first; the list still knows them.
        for w in ["ЙЦУКЕН", "Йцукен", "пароль", "Минск", "Password", "qwerty"]
        {
            assert!(is_common(w), "{w}");
        }
        assert!(!is_common("конь-батарейка-скрепка"));
    }

    #[test]
    fn the_list_is_large_lower_case_and_skips_the_comment() {
        assert!(common_password_count() > 19_000);
        assert!(COMMON_PASSWORDS.starts_with("# source: "));
        assert!(!COMMON.iter().any(|w| w.starts_with("# source")));
        for w in COMMON.iter() {
            assert_eq!(*w, w.to_lowercase(), "{w}");
        }
        for w in [
            "123456",
            "йцукен",
            "пароль",
            "любовь",
            "наташа",
            "максим",
            "минск",
        ] {
            assert!(COMMON.contains(w), "{w}");
        }
    }

    #[test]
    fn personal_data_is_refused_case_insensitively() {
        let p = default();
        let personal = [
            "IvanPetrov",
            "375291234567",
            "ivan.petrov@example.by",
            "ivan.petrov",
        ];
        for w in [
            "ivanpetrov-2024",
            "My IVANPETROV pass",
            "x375291234567x",
            "Ivan.Petrov!!rocks",
            "ivan.petrov@example.by",
        ] {
            assert_eq!(
                p.check(w, &personal),
                Err(PolicyViolation::ContainsPersonal),
                "{w}"
            );
        }
        // Cyrillic personal data compares case-insensitively too.
        assert_eq!(
            p.check("ОЛЕГ-сильный-конь", &["олег"]),
            Err(PolicyViolation::ContainsPersonal)
        );
        // Personal strings under four characters (and empty ones) are ignored.
        assert_eq!(p.check("pavel-lives-in-brest", &["pav", "", "  "]), Ok(()));
        assert_eq!(p.check("unrelated words here", &personal), Ok(()));
    }

    #[test]
    fn any_characters_are_allowed_without_composition_rules() {
        let p = default();
        assert_eq!(p.check("конь батарейка скрепка правильно", &[]), Ok(()));
        assert_eq!(p.check("жыве сонца над Нёманам", &[]), Ok(()));
        assert_eq!(p.check("🐴🔋📎✅ horse", &[]), Ok(()));
        assert_eq!(p.check("alllowercaseletters", &[]), Ok(()));
        assert_eq!(p.check("        x       ", &[]), Ok(()));
    }

    #[test]
    fn violations_name_distinct_message_keys() {
        let keys = [
            PolicyViolation::TooShort { min: 8 }.message_key(),
            PolicyViolation::TooLong.message_key(),
            PolicyViolation::Common.message_key(),
            PolicyViolation::ContainsPersonal.message_key(),
        ];
        assert_eq!(
            keys,
            [
                "password_too_short",
                "password_too_long",
                "password_common",
                "password_contains_personal"
            ]
        );
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "the password must have at least 8 characters"
        );
    }
}
