//! The people's languages: Russian (default), Belarusian, English. Chosen by `ui_locales`, then
//! by Accept-Language. Messages are catalogues, one TOML file per language in `messages/`
//! (translators edit one file, not code); the tests check that every language has the same
//! keys and every key the code and the templates use.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Lang {
    #[default]
    #[serde(rename = "ru")]
    Ru,
    #[serde(rename = "be")]
    Be,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::Be => "be",
            Lang::En => "en",
        }
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ru" => Some(Lang::Ru),
            "be" => Some(Lang::Be),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `ui_locales` (space-separated, in preference order) wins; then Accept-Language by q.
    pub fn negotiate(ui_locales: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(l) = ui_locales.and_then(|u| u.split_whitespace().find_map(Lang::from_tag)) {
            return l;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::Ru;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',').take(20) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }
}

/// (key, ru, be, en)
/// The catalogues, one file per language, in the binary: a deployment cannot lose one.
const CATALOGUES: [(Lang, &str); 3] = [
    (Lang::Ru, include_str!("messages/ru.toml")),
    (Lang::Be, include_str!("messages/be.toml")),
    (Lang::En, include_str!("messages/en.toml")),
];

type Catalogue = BTreeMap<String, String>;

/// A language's catalogue, parsed once. The files are part of the binary and checked by the
/// tests below (they parse, and every language has the same keys), so a failure here is a
/// build that should never have passed them.
fn catalogue(lang: Lang) -> &'static Catalogue {
    static PARSED: OnceLock<[Catalogue; 3]> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        CATALOGUES.map(|(l, text)| {
            toml::from_str(text).unwrap_or_else(|e| panic!("messages/{}.toml: {e}", l.code()))
        })
    });
    &all[lang as usize]
}

/// Parses every catalogue now, so that vhod refuses to start rather than fail on a page.
pub fn load() -> anyhow::Result<()> {
    for (lang, text) in CATALOGUES {
        toml::from_str::<Catalogue>(text)
            .map_err(|e| anyhow::anyhow!("messages/{}.toml: {e}", lang.code()))?;
    }
    let _ = catalogue(Lang::Ru);
    Ok(())
}

/// Every message of `lang`, for the page templates (`t.<key>`).
pub fn messages(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    catalogue(lang)
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The message `key` in `lang` (empty for a key no catalogue has: the tests keep that from
/// happening for the keys the code uses).
pub fn text(lang: Lang, key: &str) -> &'static str {
    catalogue(lang).get(key).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ui_locales_then_accept_language_then_russian() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::negotiate(None, &h), Lang::Ru);
        h.insert(
            "accept-language",
            HeaderValue::from_static("de-DE, en;q=0.5, be;q=0.9"),
        );
        assert_eq!(Lang::negotiate(None, &h), Lang::Be);
        assert_eq!(Lang::negotiate(Some("fr en-GB"), &h), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr"), &h), Lang::Be);
    }

    #[test]
    fn every_catalogue_parses_and_has_the_same_keys() {
        load().expect("the catalogues parse");
        let keys = |l: Lang| catalogue(l).keys().cloned().collect::<Vec<_>>();
        let ru = keys(Lang::Ru);
        assert!(ru.len() > 100, "the Russian catalogue is nearly empty");
        for lang in [Lang::Be, Lang::En] {
            let other = keys(lang);
            let missing: Vec<_> = ru.iter().filter(|k| !other.contains(k)).collect();
            let extra: Vec<_> = other.iter().filter(|k| !ru.contains(k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang:?}: missing {missing:?}, not in Russian {extra:?}"
            );
        }
        for lang in [Lang::Ru, Lang::Be, Lang::En] {
            for (k, v) in catalogue(lang) {
                assert!(!v.trim().is_empty(), "{lang:?}: {k} is empty");
            }
        }
    }

    /// The source files under `dir` with the extension `ext`.
    fn sources(dir: &std::path::Path, ext: &str, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("a source directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, ext, found);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }

    /// The quoted keys following each of `openings` in `text` (`text(lang, "key")` and the
    /// like), up to the closing quote.
    fn quoted_after<'a>(text: &'a str, openings: &[&str]) -> Vec<&'a str> {
        let mut keys = Vec::new();
        for opening in openings {
            for (at, _) in text.match_indices(opening) {
                let rest = &text[at + opening.len()..];
                if let Some(end) = rest.find('"') {
                    keys.push(&rest[..end]);
                }
            }
        }
        keys
    }

    #[test]
    fn every_key_the_code_uses_is_in_every_catalogue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut used: Vec<(String, String)> = Vec::new();
        let mut rust = Vec::new();
        sources(&root, "rs", &mut rust);
        let key_like = |k: &str| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        // This file's own tests and comments show the patterns, not keys.
        rust.retain(|f| !f.ends_with("web/i18n.rs"));
        for file in &rust {
            let text = std::fs::read_to_string(file).expect("a source file");
            let mut keys = quoted_after(
                &text,
                &[
                    "text(lang, \"",
                    "text(l, \"",
                    "Notice::new(\"",
                    "StatusCode::BAD_REQUEST, \"",
                    "StatusCode::SERVICE_UNAVAILABLE, \"",
                    "StatusCode::CONFLICT, \"",
                ],
            );
            // Notice::new(title, message): the message too.
            for (at, _) in text.match_indices("Notice::new(\"") {
                let rest = &text[at..];
                if let Some(second) = rest.split('"').nth(3) {
                    keys.push(second);
                }
            }
            // The keys that error types name for their messages.
            for (at, _) in text.match_indices("fn message_key(") {
                let body = &text[at..];
                let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
                keys.extend(quoted_after(body, &["=> \""]));
            }
            for k in keys.into_iter().filter(|k| key_like(k)) {
                used.push((file.display().to_string(), k.to_string()));
            }
        }
        let mut templates = Vec::new();
        sources(&root.join("web/templates"), "html", &mut templates);
        for file in &templates {
            let text = std::fs::read_to_string(file).expect("a template");
            for (at, _) in text.match_indices("t.") {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let key: String = text[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !key.is_empty() {
                    used.push((file.display().to_string(), key));
                }
            }
        }
        assert!(used.len() > 100, "the scan found almost nothing: {used:?}");
        for lang in [Lang::Ru, Lang::Be, Lang::En] {
            let missing: Vec<_> = used
                .iter()
                .filter(|(_, k)| !catalogue(lang).contains_key(k))
                .collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
        }
    }
}
