//! Usernames for people first seen through a credential (a certificate, an upstream login):
//! they never typed one, so vhod makes one a person can read.

use crate::secrets;

/// Letters of a name in Latin after ICAO Doc 9303 (the transliteration of Belarusian and
/// Russian passports), lower case; a space, hyphen or apostrophe becomes one '-', anything else
/// is dropped.
fn latin(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        let piece = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' | 'ґ' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'є' => "ie",
            'ж' => "zh",
            'з' => "z",
            'и' | 'й' | 'і' | 'ї' => "i",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' | 'ў' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' => "ie",
            'ы' => "y",
            'ь' => "",
            'ю' => "iu",
            'я' => "ia",
            c if c.is_ascii_lowercase() || c.is_ascii_digit() => {
                out.push(c);
                continue;
            }
            ' ' | '-' | '\'' | '’' | 'ʼ' => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
                continue;
            }
            _ => "",
        };
        out.push_str(piece);
    }
    out.trim_end_matches('-').chars().take(24).collect()
}

/// Six characters a person can read back without mixing up (no 0/o, 1/l): 30 random bits.
fn disambiguator() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    secrets::random_bytes::<6>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// `~surname.given-name.xxxxxx`, e.g. `~petrova.mariia.k7m2qa`: readable in a relying party's
/// list, and neither a username registration can produce (those never start with "~") nor one
/// anyone can guess from a name (the random disambiguator).
pub fn readable(surname: Option<&str>, given_name: Option<&str>) -> String {
    let mut parts: Vec<String> = [surname, given_name]
        .into_iter()
        .filter_map(|p| p.map(latin))
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(disambiguator());
    format!("~{}", parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_in_latin_after_icao() {
        assert_eq!(latin("Петрова"), "petrova");
        assert_eq!(latin("Мария"), "mariia");
        assert_eq!(latin("Шчарбакоў"), "shcharbakou");
        assert_eq!(latin("Юрый"), "iuryi");
        assert_eq!(latin("Жукоўская-Хілько"), "zhukouskaia-khilko");
        assert_eq!(latin("Д'Артаньян"), "d-artanian");
        assert_eq!(latin("Smith  Jr."), "smith-jr");
        assert_eq!(latin("«»"), "");
        assert!(latin(&"Щ".repeat(40)).len() <= 24);
    }

    #[test]
    fn usernames_are_readable_and_never_registration_names() {
        let (surname, given) = (Some("Шчарбакоў"), Some("Юрый"));
        let a = readable(surname, given);
        let b = readable(surname, given);
        assert!(a.starts_with("~shcharbakou.iuryi."), "{a}");
        assert_eq!(a.len(), "~shcharbakou.iuryi.".len() + 6);
        assert_ne!(a, b, "namesakes draw different disambiguators");
        let c = readable(None, Some("—"));
        assert!(c.starts_with('~') && c.len() == 7, "{c}");
    }
}
