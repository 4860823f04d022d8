//! The people's languages: Russian (default), Belarusian, English. Chosen by `ui_locales`, then
//! by Accept-Language. Messages are a static table: a missing translation is a compile-time
//! visible gap in one place, not a runtime lookup failure.

use std::collections::BTreeMap;

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
const MESSAGES: &[(&str, &str, &str, &str)] = &[
    (
        "system_name",
        "Система обращений",
        "Сістэма зваротаў",
        "Appeals system",
    ),
    ("login_title", "Вход", "Уваход", "Sign in"),
    (
        "signing_in_to",
        "Вход в сервис",
        "Уваход у сэрвіс",
        "Signing in to",
    ),
    (
        "username",
        "Имя пользователя или телефон",
        "Імя карыстальніка або тэлефон",
        "Username or phone",
    ),
    ("password", "Пароль", "Пароль", "Password"),
    ("submit", "Войти", "Увайсці", "Sign in"),
    (
        "bad_credentials",
        "Неверное имя пользователя или пароль.",
        "Няправільнае імя карыстальніка або пароль.",
        "Incorrect username or password.",
    ),
    (
        "busy",
        "Сейчас слишком много попыток входа. Повторите через минуту.",
        "Зараз занадта шмат спроб уваходу. Паўтарыце праз хвіліну.",
        "Too many sign-in attempts right now. Try again in a minute.",
    ),
    ("error_title", "Ошибка", "Памылка", "Error"),
    (
        "tx_expired",
        "Сеанс входа истёк или не найден. Вернитесь на сайт сервиса и начните вход заново.",
        "Сеанс уваходу скончыўся або не знойдзены. Вярніцеся на сайт сэрвісу і пачніце ўваход нанова.",
        "This sign-in has expired or was not found. Go back to the service and start again.",
    ),
    (
        "csrf",
        "Форма устарела. Обновите страницу и попробуйте снова.",
        "Форма састарэла. Абнавіце старонку і паспрабуйце зноў.",
        "The form has expired. Reload the page and try again.",
    ),
    (
        "unknown_client",
        "Приложение, запросившее вход, не зарегистрировано.",
        "Праграма, якая запытала ўваход, не зарэгістравана.",
        "The application that asked for sign-in is not registered.",
    ),
    (
        "bad_redirect",
        "Адрес возврата не зарегистрирован для этого приложения. Вход остановлен ради вашей безопасности.",
        "Адрас вяртання не зарэгістраваны для гэтай праграмы. Уваход спынены дзеля вашай бяспекі.",
        "The return address is not registered for this application. Sign-in was stopped for your safety.",
    ),
    (
        "bad_request",
        "Некорректный запрос.",
        "Некарэктны запыт.",
        "Invalid request.",
    ),
    (
        "server_error",
        "Внутренняя ошибка. Повторите попытку позже.",
        "Унутраная памылка. Паспрабуйце пазней.",
        "Internal error. Please try again later.",
    ),
    (
        "not_found",
        "Страница не найдена.",
        "Старонка не знойдзена.",
        "Page not found.",
    ),
    ("logout_title", "Выход", "Выхад", "Sign out"),
    (
        "logout_confirm",
        "Выйти из всех сервисов системы обращений на этом устройстве?",
        "Выйсці з усіх сэрвісаў сістэмы зваротаў на гэтай прыладзе?",
        "Sign out of all services of the appeals system on this device?",
    ),
    ("logout_button", "Выйти", "Выйсці", "Sign out"),
    (
        "logged_out",
        "Вы вышли из системы.",
        "Вы выйшлі з сістэмы.",
        "You have signed out.",
    ),
    (
        "denied",
        "Вход в этот сервис вам не разрешён.",
        "Уваход у гэты сэрвіс вам не дазволены.",
        "You are not allowed to sign in to this service.",
    ),
    ("demo_title", "Демо-клиент", "Дэма-кліент", "Demo client"),
    (
        "demo_signed_in",
        "Вход выполнен. Вот что получил клиент:",
        "Уваход выкананы. Вось што атрымаў кліент:",
        "Signed in. This is what the client received:",
    ),
    (
        "demo_start",
        "Войти через vhod",
        "Увайсці праз vhod",
        "Sign in with vhod",
    ),
];

pub fn messages(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    MESSAGES
        .iter()
        .map(|(k, ru, be, en)| {
            (
                *k,
                match lang {
                    Lang::Ru => *ru,
                    Lang::Be => *be,
                    Lang::En => *en,
                },
            )
        })
        .collect()
}

pub fn text(lang: Lang, key: &str) -> &'static str {
    MESSAGES
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, ru, be, en)| match lang {
            Lang::Ru => *ru,
            Lang::Be => *be,
            Lang::En => *en,
        })
        .unwrap_or("")
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
    fn every_message_is_translated() {
        for (k, ru, be, en) in MESSAGES {
            assert!(!ru.is_empty() && !be.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
