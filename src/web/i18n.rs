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
    // http and sessions hardening
    (
        "profile_needs_certificate",
        "Профиль этой учётной записи доступен только после входа с ЭЦП или ID-картой. Войдите с ними и откройте профиль снова.",
        "Профіль гэтага ўліковага запісу даступны толькі пасля ўваходу з ЭЛП або ID-картай. Увайдзіце з імі і адкрыйце профіль зноў.",
        "The profile of this account is available only after signing in with an EDS key or ID card. Sign in with one and open the profile again.",
    ),
    (
        "profile_reauth_needed",
        "Чтобы изменить телефон или почту, подтвердите, что это вы: введите пароль.",
        "Каб змяніць тэлефон або пошту, пацвердзіце, што гэта вы: увядзіце пароль.",
        "To change your phone or email, confirm it is you: enter your password.",
    ),
    (
        "profile_reauth_sign_in",
        "Чтобы изменить телефон или почту, войдите заново и повторите.",
        "Каб змяніць тэлефон або пошту, увайдзіце нанова і паўтарыце.",
        "To change your phone or email, sign in again and repeat.",
    ),
    (
        "profile_reauth_failed",
        "Неверный пароль.",
        "Няправільны пароль.",
        "Incorrect password.",
    ),
    (
        "current_password_label",
        "Ваш пароль",
        "Ваш пароль",
        "Your password",
    ),
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
        "Логин или номер телефона",
        "Лагін або нумар тэлефона",
        "Login or phone number",
    ),
    ("password", "Пароль", "Пароль", "Password"),
    ("submit", "Войти", "Увайсці", "Sign in"),
    (
        "bad_credentials",
        "Неверный логин или пароль.",
        "Няправільны лагін або пароль.",
        "Incorrect login or password.",
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
    // Registration and contacts.
    ("register_link", "Регистрация", "Рэгістрацыя", "Register"),
    (
        "forgot_link",
        "Забыли пароль?",
        "Забылі пароль?",
        "Forgot password?",
    ),
    (
        "register_title",
        "Регистрация",
        "Рэгістрацыя",
        "Registration",
    ),
    ("family_name", "Фамилия", "Прозвішча", "Surname"),
    ("given_name", "Имя", "Імя", "Given name"),
    (
        "middle_name",
        "Отчество (если есть)",
        "Імя па бацьку (калі ёсць)",
        "Patronymic (if any)",
    ),
    ("login_name", "Логин", "Лагін", "Login"),
    (
        "phone_label",
        "Мобильный телефон",
        "Мабільны тэлефон",
        "Mobile phone",
    ),
    (
        "email_label",
        "Электронная почта",
        "Электронная пошта",
        "Email",
    ),
    (
        "password_hint",
        "Не короче {min} символов; можно фразу из нескольких слов.",
        "Не карацей за {min} сімвалаў; можна фразу з некалькіх слоў.",
        "At least {min} characters; a phrase of several words is fine.",
    ),
    (
        "register_submit",
        "Зарегистрироваться",
        "Зарэгістравацца",
        "Register",
    ),
    (
        "name_invalid",
        "Укажите фамилию и имя буквами (не длиннее 100 символов).",
        "Укажыце прозвішча і імя літарамі (не даўжэй за 100 сімвалаў).",
        "Enter your surname and given name in letters (up to 100 characters).",
    ),
    (
        "username_invalid",
        "Логин: от 3 до 64 латинских букв, цифр, точек, дефисов или подчёркиваний; не номер телефона.",
        "Лагін: ад 3 да 64 лацінскіх літар, лічбаў, кропак, злучкоў або падкрэсліванняў; не нумар тэлефона.",
        "Login: 3 to 64 Latin letters, digits, dots, hyphens or underscores; not a phone number.",
    ),
    (
        "taken",
        "Этот логин, номер телефона или адрес почты уже зарегистрирован. Войдите или восстановите пароль.",
        "Гэты лагін, нумар тэлефона або адрас пошты ўжо зарэгістраваны. Увайдзіце або аднавіце пароль.",
        "This login, phone number or email is already registered. Sign in or recover your password.",
    ),
    (
        "phone_empty",
        "Укажите номер мобильного телефона.",
        "Укажыце нумар мабільнага тэлефона.",
        "Enter your mobile phone number.",
    ),
    (
        "phone_too_long",
        "Номер телефона слишком длинный.",
        "Нумар тэлефона занадта доўгі.",
        "The phone number is too long.",
    ),
    (
        "phone_invalid",
        "Это не номер телефона. Пример: +375 29 123-45-67.",
        "Гэта не нумар тэлефона. Прыклад: +375 29 123-45-67.",
        "This is not a phone number. Example: +375 29 123-45-67.",
    ),
    (
        "phone_not_mobile",
        "На этот номер нельзя отправить SMS: укажите мобильный номер.",
        "На гэты нумар нельга адправіць SMS: укажыце мабільны нумар.",
        "This number cannot receive SMS: enter a mobile number.",
    ),
    (
        "email_empty",
        "Укажите адрес электронной почты.",
        "Укажыце адрас электроннай пошты.",
        "Enter your email address.",
    ),
    (
        "email_too_long",
        "Адрес электронной почты слишком длинный.",
        "Адрас электроннай пошты занадта доўгі.",
        "The email address is too long.",
    ),
    (
        "email_invalid",
        "Это не адрес электронной почты. Пример: ivan@example.by.",
        "Гэта не адрас электроннай пошты. Прыклад: ivan@example.by.",
        "This is not an email address. Example: ivan@example.by.",
    ),
    (
        "password_too_short",
        "Пароль должен быть не короче {min} символов.",
        "Пароль павінен быць не карацей за {min} сімвалаў.",
        "The password must have at least {min} characters.",
    ),
    (
        "password_too_long",
        "Пароль слишком длинный.",
        "Пароль занадта доўгі.",
        "The password is too long.",
    ),
    (
        "password_common",
        "Этот пароль слишком распространён или был в утечках. Выберите другой.",
        "Гэты пароль занадта распаўсюджаны або быў ва ўцечках. Выберыце іншы.",
        "This password is too common or has appeared in breaches. Choose another.",
    ),
    (
        "password_contains_personal",
        "Пароль не должен содержать логин, номер телефона или адрес почты.",
        "Пароль не павінен утрымліваць лагін, нумар тэлефона або адрас пошты.",
        "The password must not contain your login, phone number or email.",
    ),
    (
        "confirm_title",
        "Подтверждение контактов",
        "Пацвярджэнне кантактаў",
        "Confirm your contacts",
    ),
    (
        "code_sent_to",
        "Код из SMS отправлен на номер",
        "Код з SMS адпраўлены на нумар",
        "The SMS code was sent to",
    ),
    (
        "email_sent_to",
        "Ссылка для подтверждения отправлена на",
        "Спасылка для пацвярджэння адпраўлена на",
        "The confirmation link was sent to",
    ),
    (
        "code_label",
        "Код из SMS (6 цифр)",
        "Код з SMS (6 лічбаў)",
        "SMS code (6 digits)",
    ),
    ("confirm_submit", "Подтвердить", "Пацвердзіць", "Confirm"),
    (
        "resend_sms",
        "Отправить код ещё раз",
        "Адправіць код яшчэ раз",
        "Send the code again",
    ),
    (
        "resend_email",
        "Отправить письмо ещё раз",
        "Адправіць ліст яшчэ раз",
        "Send the email again",
    ),
    ("resent", "Отправлено.", "Адпраўлена.", "Sent."),
    (
        "phone_confirmed",
        "Телефон подтверждён.",
        "Тэлефон пацверджаны.",
        "Phone confirmed.",
    ),
    (
        "email_confirmed",
        "Электронная почта подтверждена.",
        "Электронная пошта пацверджана.",
        "Email confirmed.",
    ),
    (
        "email_pending",
        "Откройте ссылку из письма, чтобы подтвердить адрес.",
        "Адкрыйце спасылку з ліста, каб пацвердзіць адрас.",
        "Open the link in the email to confirm the address.",
    ),
    (
        "account_active",
        "Учётная запись активирована. Теперь можно войти.",
        "Уліковы запіс актываваны. Цяпер можна ўвайсці.",
        "Your account is active. You can sign in now.",
    ),
    ("continue", "Продолжить", "Працягнуць", "Continue"),
    (
        "registration_incomplete",
        "Регистрация не завершена: подтвердите номер телефона и адрес электронной почты.",
        "Рэгістрацыя не завершана: пацвердзіце нумар тэлефона і адрас электроннай пошты.",
        "Your registration is not finished: confirm your phone number and email.",
    ),
    (
        "finish_registration",
        "Завершить подтверждение",
        "Завершыць пацвярджэнне",
        "Finish confirmation",
    ),
    (
        "email_link_invalid",
        "Ссылка недействительна: она устарела, уже использована или относится к другому адресу.",
        "Спасылка несапраўдная: яна састарэла, ужо выкарыстана або адносіцца да іншага адраса.",
        "This link is not valid: it expired, was already used or belongs to another address.",
    ),
    (
        "otp_too_soon",
        "Новый код можно запросить через минуту.",
        "Новы код можна запытаць праз хвіліну.",
        "You can ask for a new code in a minute.",
    ),
    (
        "otp_daily_cap",
        "На этот номер сегодня отправлено слишком много кодов. Повторите завтра.",
        "На гэты нумар сёння адпраўлена занадта шмат кодаў. Паўтарыце заўтра.",
        "Too many codes were sent to this number today. Try again tomorrow.",
    ),
    (
        "otp_wrong",
        "Неверный код.",
        "Няправільны код.",
        "Wrong code.",
    ),
    (
        "otp_too_many",
        "Слишком много неверных попыток. Запросите новый код.",
        "Занадта шмат няправільных спроб. Запытайце новы код.",
        "Too many wrong attempts. Ask for a new code.",
    ),
    (
        "otp_expired",
        "Код устарел или не запрашивался. Запросите новый код.",
        "Код састарэў або не запытваўся. Запытайце новы код.",
        "The code expired or was not requested. Ask for a new code.",
    ),
    (
        "sms_limit",
        "Сейчас нельзя отправить SMS: превышен лимит. Повторите позже.",
        "Зараз нельга адправіць SMS: перавышаны ліміт. Паўтарыце пазней.",
        "An SMS cannot be sent right now: a limit was reached. Try again later.",
    ),
    (
        "send_failed",
        "Не удалось отправить сообщение. Попробуйте отправить ещё раз.",
        "Не ўдалося адправіць паведамленне. Паспрабуйце адправіць яшчэ раз.",
        "The message could not be sent. Try sending it again.",
    ),
    (
        "too_many_attempts",
        "Слишком много неудачных попыток входа. Повторите позже.",
        "Занадта шмат няўдалых спроб уваходу. Паўтарыце пазней.",
        "Too many failed sign-in attempts. Try again later.",
    ),
    (
        "email_confirm_subject",
        "Подтверждение адреса электронной почты",
        "Пацвярджэнне адраса электроннай пошты",
        "Confirm your email address",
    ),
    (
        "email_confirm_body",
        "Здравствуйте!\n\nЧтобы подтвердить адрес электронной почты в системе обращений, откройте ссылку:\n{link}\n\nСсылка действует 24 часа. Если вы не регистрировались, просто удалите это письмо.",
        "Добры дзень!\n\nКаб пацвердзіць адрас электроннай пошты ў сістэме зваротаў, адкрыйце спасылку:\n{link}\n\nСпасылка дзейнічае 24 гадзіны. Калі вы не рэгістраваліся, проста выдаліце гэты ліст.",
        "Hello,\n\nTo confirm your email address in the appeals system, open this link:\n{link}\n\nThe link is valid for 24 hours. If you did not register, just delete this email.",
    ),
    (
        "lock_subject",
        "Вход в учётную запись временно заблокирован",
        "Уваход ва ўліковы запіс часова заблакаваны",
        "Sign-in to your account is temporarily locked",
    ),
    (
        "lock_text",
        "После нескольких неудачных попыток входа вход в вашу учётную запись системы обращений заблокирован на {minutes} мин. Если это были не вы, восстановите пароль.",
        "Пасля некалькіх няўдалых спроб уваходу ўваход ва ўліковы запіс сістэмы зваротаў заблакаваны на {minutes} хв. Калі гэта былі не вы, аднавіце пароль.",
        "After several failed sign-in attempts, sign-in to your appeals system account is locked for {minutes} min. If it was not you, recover your password.",
    ),
    // Pages: the service's face, ways on, messages, forms.
    (
        "service_name",
        "Вход в систему обращений",
        "Уваход у сістэму зваротаў",
        "Sign-in to the appeals system",
    ),
    ("nav_label", "Разделы", "Раздзелы", "Sections"),
    ("lang_label", "Язык", "Мова", "Language"),
    ("footer_operator", "Оператор", "Аператар", "Operator"),
    ("footer_support", "Поддержка", "Падтрымка", "Support"),
    (
        "privacy_title",
        "Обработка персональных данных",
        "Апрацоўка персанальных даных",
        "Processing of personal data",
    ),
    (
        "privacy_notice",
        "Оператор системы обращений обрабатывает данные, которые вы указали при регистрации (фамилию, имя, отчество, номер мобильного телефона, адрес электронной почты, логин), данные сертификата при входе с ЭЦП, а также сведения о входах (время, IP-адрес, браузер) — чтобы вы могли входить в сервисы системы обращений, восстанавливать доступ и получать уведомления, и чтобы защищать учётные записи от взлома. Данные передаются только тем сервисам, в которые вы входите, и в объёме, который вы разрешили. Вы вправе получить сведения об обработке своих данных, потребовать их изменения или удаления и отозвать согласие (Закон Республики Беларусь от 7 мая 2021 г. № 99-З «О защите персональных данных»).",
        "Аператар сістэмы зваротаў апрацоўвае даныя, якія вы ўказалі пры рэгістрацыі (прозвішча, імя, імя па бацьку, нумар мабільнага тэлефона, адрас электроннай пошты, лагін), даныя сертыфіката пры ўваходзе з ЭЛП, а таксама звесткі пра ўваходы (час, IP-адрас, браўзер) — каб вы маглі ўваходзіць у сэрвісы сістэмы зваротаў, аднаўляць доступ і атрымліваць апавяшчэнні, і каб абараняць уліковыя запісы ад узлому. Даныя перадаюцца толькі тым сэрвісам, у якія вы ўваходзіце, і ў тым аб’ёме, які вы дазволілі. Вы маеце права атрымаць звесткі пра апрацоўку сваіх даных, запатрабаваць іх змянення або выдалення і адклікаць згоду (Закон Рэспублікі Беларусь ад 7 мая 2021 г. № 99-З «Аб абароне персанальных даных»).",
        "The operator of the appeals system processes the data you gave at registration (surname, given name, patronymic, mobile phone number, email address, login), your certificate's data when you sign in with an EDS key, and records of sign-ins (time, IP address, browser) so that you can sign in to the services of the appeals system, recover access and receive notifications, and to protect accounts from attacks. Data go only to the services you sign in to, and only what you allowed. You may learn how your data are processed, have them corrected or deleted, and withdraw your consent (Law of the Republic of Belarus No. 99-Z of 7 May 2021 \u{ab}On the protection of personal data\u{bb}).",
    ),
    (
        "consent_title",
        "Согласие на обработку персональных данных",
        "Згода на апрацоўку персанальных даных",
        "Consent to the processing of personal data",
    ),
    (
        "consent_text",
        "Я даю согласие оператору системы обращений на обработку моих персональных данных (фамилия, имя, отчество, номер мобильного телефона, адрес электронной почты, логин) для регистрации и входа в сервисы системы обращений, восстановления доступа и направления уведомлений — до удаления учётной записи. Согласие можно отозвать, обратившись в поддержку; без него регистрация невозможна. Закон Республики Беларусь от 7 мая 2021 г. № 99-З «О защите персональных данных».",
        "Я даю згоду аператару сістэмы зваротаў на апрацоўку маіх персанальных даных (прозвішча, імя, імя па бацьку, нумар мабільнага тэлефона, адрас электроннай пошты, лагін) для рэгістрацыі і ўваходу ў сэрвісы сістэмы зваротаў, аднаўлення доступу і накіравання апавяшчэнняў — да выдалення ўліковага запісу. Згоду можна адклікаць, звярнуўшыся ў падтрымку; без яе рэгістрацыя немагчымая. Закон Рэспублікі Беларусь ад 7 мая 2021 г. № 99-З «Аб абароне персанальных даных».",
        "I consent to the operator of the appeals system processing my personal data (surname, given name, patronymic, mobile phone number, email address, login) to register me, let me sign in to the services of the appeals system, recover access and send me notifications, until my account is deleted. I can withdraw consent by contacting support; without it I cannot register. Law of the Republic of Belarus No. 99-Z of 7 May 2021 \u{ab}On the protection of personal data\u{bb}.",
    ),
    (
        "consent_label",
        "Я согласен(на) на обработку моих персональных данных",
        "Я згодны(ая) на апрацоўку маіх персанальных даных",
        "I consent to the processing of my personal data",
    ),
    (
        "consent_required",
        "Без согласия на обработку персональных данных зарегистрироваться нельзя: отметьте согласие.",
        "Без згоды на апрацоўку персанальных даных зарэгістравацца нельга: адзначце згоду.",
        "You cannot register without consenting to the processing of personal data: tick the box.",
    ),
    (
        "username_hint",
        "От 3 до 64 символов: строчные латинские буквы, цифры, точка, дефис, подчёркивание. Например: ivan.petrov",
        "Ад 3 да 64 сімвалаў: малыя лацінскія літары, лічбы, кропка, злучок, падкрэсліванне. Напрыклад: ivan.petrov",
        "3 to 64 characters: lower-case Latin letters, digits, dot, hyphen, underscore. For example: ivan.petrov",
    ),
    (
        "not_found_title",
        "Страница не найдена",
        "Старонка не знойдзена",
        "Page not found",
    ),
    (
        "already_signed_in",
        "Вы уже вошли. Этот вход завершён, его нельзя повторить.",
        "Вы ўжо ўвайшлі. Гэты ўваход завершаны, яго нельга паўтарыць.",
        "You are signed in. This sign-in is finished and cannot be repeated.",
    ),
    (
        "back_to_service",
        "Вернуться в сервис «{name}»",
        "Вярнуцца ў сэрвіс «{name}»",
        "Back to {name}",
    ),
    (
        "profile_link_open",
        "Открыть профиль",
        "Адкрыць профіль",
        "Open the profile",
    ),
    ("sign_in", "Войти", "Увайсці", "Sign in"),
    (
        "sign_in_again",
        "Войти снова",
        "Увайсці зноў",
        "Sign in again",
    ),
    (
        "email_too_soon",
        "Письмо только что отправлено. Новое можно запросить через минуту.",
        "Ліст толькі што адпраўлены. Новы можна запытаць праз хвіліну.",
        "An email was sent just now. You can ask for another in a minute.",
    ),
    (
        "email_send_failed",
        "Не удалось отправить письмо. Попробуйте отправить его ещё раз.",
        "Не ўдалося адправіць ліст. Паспрабуйце адправіць яго яшчэ раз.",
        "The email could not be sent. Try sending it again.",
    ),
    // SMS texts: one SMS segment each (70 characters in Cyrillic), checked by web::sms tests.
    (
        "sms_name",
        "Система обращений",
        "Сістэма зваротаў",
        "Appeals system",
    ),
    (
        "sms_code_registration",
        "{name}: код {code} для регистрации. Никому не сообщайте.",
        "{name}: код {code} для рэгістрацыі. Нікому яго не кажыце.",
        "{name}: code {code} to confirm your registration. Do not share it.",
    ),
    (
        "sms_code_phone_change",
        "{name}: код {code} для смены номера. Никому не сообщайте.",
        "{name}: код {code} для змены нумара. Нікому яго не кажыце.",
        "{name}: code {code} to change your phone number. Do not share it.",
    ),
    (
        "sms_code_recovery",
        "{name}: код {code} для сброса пароля. Никому не сообщайте.",
        "{name}: код {code} для скіду пароля. Нікому яго не кажыце.",
        "{name}: code {code} to reset your password. Do not share it.",
    ),
    // Password recovery and the profile.
    (
        "forgot_title",
        "Восстановление пароля",
        "Аднаўленне пароля",
        "Password recovery",
    ),
    (
        "forgot_intro",
        "Укажите логин, номер телефона или адрес электронной почты и выберите, куда прислать код или ссылку для смены пароля.",
        "Укажыце лагін, нумар тэлефона або адрас электроннай пошты і выберыце, куды даслаць код або спасылку для змены пароля.",
        "Enter your login, phone number or email address and choose where to send the code or link to change your password.",
    ),
    (
        "forgot_login_label",
        "Логин, телефон или электронная почта",
        "Лагін, тэлефон або электронная пошта",
        "Login, phone or email",
    ),
    (
        "channel_label",
        "Куда отправить",
        "Куды адправіць",
        "Send to",
    ),
    (
        "channel_sms",
        "Код в SMS на подтверждённый телефон",
        "Код у SMS на пацверджаны тэлефон",
        "A code by SMS to the confirmed phone",
    ),
    (
        "channel_email",
        "Ссылку на подтверждённую электронную почту",
        "Спасылку на пацверджаную электронную пошту",
        "A link to the confirmed email address",
    ),
    ("forgot_submit", "Отправить", "Адправіць", "Send"),
    (
        "forgot_login_empty",
        "Укажите логин, номер телефона или адрес электронной почты.",
        "Укажыце лагін, нумар тэлефона або адрас электроннай пошты.",
        "Enter your login, phone number or email address.",
    ),
    (
        "recovery_sms_sent",
        "Если такая учётная запись существует и её телефон подтверждён, на него отправлен код. Введите код и новый пароль.",
        "Калі такі ўліковы запіс існуе і яго тэлефон пацверджаны, на яго адпраўлены код. Увядзіце код і новы пароль.",
        "If such an account exists and its phone is confirmed, a code was sent to it. Enter the code and a new password.",
    ),
    (
        "recovery_email_sent",
        "Если такая учётная запись существует и её адрес электронной почты подтверждён, на него отправлена ссылка для смены пароля. Ссылка действует 15 минут.",
        "Калі такі ўліковы запіс існуе і яго адрас электроннай пошты пацверджаны, на яго адпраўлена спасылка для змены пароля. Спасылка дзейнічае 15 хвілін.",
        "If such an account exists and its email address is confirmed, a link to change the password was sent to it. The link is valid for 15 minutes.",
    ),
    ("reset_title", "Новый пароль", "Новы пароль", "New password"),
    (
        "new_password",
        "Новый пароль",
        "Новы пароль",
        "New password",
    ),
    (
        "reset_submit",
        "Сменить пароль",
        "Змяніць пароль",
        "Change password",
    ),
    (
        "forgot_again",
        "Запросить код ещё раз",
        "Запытаць код яшчэ раз",
        "Ask for a code again",
    ),
    (
        "recovery_expired",
        "Восстановление пароля не начато или устарело. Начните заново.",
        "Аднаўленне пароля не пачата або састарэла. Пачніце нанова.",
        "Password recovery was not started or has expired. Start again.",
    ),
    (
        "password_reset_done",
        "Пароль изменён. Все входы с прежним паролем завершены; войдите с новым паролем.",
        "Пароль зменены. Усе ўваходы з ранейшым паролем завершаны; увайдзіце з новым паролем.",
        "Your password was changed. Every sign-in with the old password has ended; sign in with the new one.",
    ),
    (
        "password_changed_subject",
        "Пароль изменён",
        "Пароль зменены",
        "Your password was changed",
    ),
    (
        "password_changed_text",
        "Пароль вашей учётной записи в системе обращений изменён, все входы завершены. Если это были не вы, сразу восстановите пароль и обратитесь в поддержку.",
        "Пароль вашага ўліковага запісу ў сістэме зваротаў зменены, усе ўваходы завершаны. Калі гэта былі не вы, адразу аднавіце пароль і звярніцеся ў падтрымку.",
        "The password of your appeals system account was changed and every sign-in ended. If it was not you, recover your password at once and contact support.",
    ),
    (
        "recovery_email_subject",
        "Восстановление пароля",
        "Аднаўленне пароля",
        "Password recovery",
    ),
    (
        "recovery_email_body",
        "Здравствуйте!\n\nЧтобы задать новый пароль в системе обращений, откройте ссылку:\n{link}\n\nСсылка действует 15 минут и только один раз. Если вы не запрашивали восстановление, просто удалите это письмо: пароль не изменится.",
        "Добры дзень!\n\nКаб задаць новы пароль у сістэме зваротаў, адкрыйце спасылку:\n{link}\n\nСпасылка дзейнічае 15 хвілін і толькі адзін раз. Калі вы не запытвалі аднаўленне, проста выдаліце гэты ліст: пароль не зменіцца.",
        "Hello,\n\nTo set a new password in the appeals system, open this link:\n{link}\n\nThe link is valid for 15 minutes and works once. If you did not ask for this, just delete this email: your password will not change.",
    ),
    ("profile_title", "Профиль", "Профіль", "Profile"),
    (
        "profile_sign_in",
        "Чтобы открыть профиль, войдите в систему.",
        "Каб адкрыць профіль, увайдзіце ў сістэму.",
        "Sign in to open your profile.",
    ),
    (
        "full_name",
        "ФИО",
        "Прозвішча, імя, імя па бацьку",
        "Full name",
    ),
    (
        "state_phone_verified",
        "подтверждён",
        "пацверджаны",
        "confirmed",
    ),
    (
        "state_phone_unverified",
        "не подтверждён",
        "не пацверджаны",
        "not confirmed",
    ),
    (
        "state_email_verified",
        "подтверждена",
        "пацверджана",
        "confirmed",
    ),
    (
        "state_email_unverified",
        "не подтверждена",
        "не пацверджана",
        "not confirmed",
    ),
    (
        "notifications_title",
        "Уведомления",
        "Апавяшчэнні",
        "Notifications",
    ),
    (
        "notify_sms_label",
        "Получать уведомления об обращениях по SMS",
        "Атрымліваць апавяшчэнні аб зваротах праз SMS",
        "Receive notifications about appeals by SMS",
    ),
    ("save", "Сохранить", "Захаваць", "Save"),
    ("saved", "Сохранено.", "Захавана.", "Saved."),
    (
        "change_phone_title",
        "Сменить номер телефона",
        "Змяніць нумар тэлефона",
        "Change phone number",
    ),
    ("new_phone_label", "Новый номер", "Новы нумар", "New number"),
    ("send_code", "Получить код", "Атрымаць код", "Get a code"),
    (
        "change_email_title",
        "Сменить адрес электронной почты",
        "Змяніць адрас электроннай пошты",
        "Change email address",
    ),
    (
        "new_email_label",
        "Новый адрес",
        "Новы адрас",
        "New address",
    ),
    (
        "send_link",
        "Получить ссылку",
        "Атрымаць спасылку",
        "Get a link",
    ),
    (
        "profile_code_sent",
        "Код отправлен на новый номер {phone}. Введите его, чтобы подтвердить смену.",
        "Код адпраўлены на новы нумар {phone}. Увядзіце яго, каб пацвердзіць змену.",
        "A code was sent to the new number {phone}. Enter it to confirm the change.",
    ),
    (
        "profile_link_sent",
        "Ссылка отправлена на новый адрес {email}. Адрес сменится с {old} на {email}, когда вы откроете ссылку.",
        "Спасылка адпраўлена на новы адрас {email}. Адрас зменіцца з {old} на {email}, калі вы адкрыеце спасылку.",
        "A link was sent to the new address {email}. The address changes from {old} to {email} when you open the link.",
    ),
    (
        "phone_same",
        "Это ваш текущий номер.",
        "Гэта ваш цяперашні нумар.",
        "This is your current number.",
    ),
    (
        "email_same",
        "Это ваш текущий адрес.",
        "Гэта ваш цяперашні адрас.",
        "This is your current address.",
    ),
    (
        "phone_changed",
        "Номер телефона изменён.",
        "Нумар тэлефона зменены.",
        "Phone number changed.",
    ),
    (
        "phone_changed_text",
        "Номер телефона вашей учётной записи в системе обращений изменён на {phone}. Если это были не вы, восстановите пароль и обратитесь в поддержку.",
        "Нумар тэлефона вашага ўліковага запісу ў сістэме зваротаў зменены на {phone}. Калі гэта былі не вы, аднавіце пароль і звярніцеся ў падтрымку.",
        "The phone number of your appeals system account was changed to {phone}. If it was not you, recover your password and contact support.",
    ),
    (
        "email_changed",
        "Адрес электронной почты изменён.",
        "Адрас электроннай пошты зменены.",
        "Email address changed.",
    ),
    (
        "email_changed_subject",
        "Адрес электронной почты изменён",
        "Адрас электроннай пошты зменены",
        "Your email address was changed",
    ),
    (
        "email_changed_text",
        "Адрес электронной почты вашей учётной записи в системе обращений изменён на {email}. Если это были не вы, восстановите пароль и обратитесь в поддержку.",
        "Адрас электроннай пошты вашага ўліковага запісу ў сістэме зваротаў зменены на {email}. Калі гэта былі не вы, аднавіце пароль і звярніцеся ў падтрымку.",
        "The email address of your appeals system account was changed to {email}. If it was not you, recover your password and contact support.",
    ),
    (
        "email_change_subject",
        "Подтверждение нового адреса электронной почты",
        "Пацвярджэнне новага адраса электроннай пошты",
        "Confirm your new email address",
    ),
    (
        "email_change_body",
        "Здравствуйте!\n\nЧтобы сделать этот адрес адресом вашей учётной записи в системе обращений, откройте ссылку:\n{link}\n\nСсылка действует 24 часа. Если вы не меняли адрес, просто удалите это письмо.",
        "Добры дзень!\n\nКаб зрабіць гэты адрас адрасам вашага ўліковага запісу ў сістэме зваротаў, адкрыйце спасылку:\n{link}\n\nСпасылка дзейнічае 24 гадзіны. Калі вы не змянялі адрас, проста выдаліце гэты ліст.",
        "Hello,\n\nTo make this the address of your appeals system account, open this link:\n{link}\n\nThe link is valid for 24 hours. If you did not change your address, just delete this email.",
    ),
    (
        "profile_link",
        "Вернуться в профиль",
        "Вярнуцца ў профіль",
        "Back to the profile",
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
    (
        "cert_button",
        "Войти с ЭЦП / ID-картой",
        "Увайсці з ЭЛП / ID-картай",
        "Sign in with an EDS key / ID card",
    ),
    ("cert_or", "или", "або", "or"),
    (
        "cert_step_up",
        "Этот сервис требует входа с ЭЦП или ID-картой.",
        "Гэты сэрвіс патрабуе ўваходу з ЭЛП або ID-картай.",
        "This service requires signing in with an EDS key or ID card.",
    ),
    (
        "cert_noscript",
        "Для входа с ЭЦП или ID-картой включите JavaScript.",
        "Для ўваходу з ЭЛП або ID-картай уключыце JavaScript.",
        "Enable JavaScript to sign in with an EDS key or ID card.",
    ),
    ("cert_busy", "Подождите…", "Пачакайце…", "Please wait…"),
    (
        "cert_signing",
        "Подтвердите подпись в программе ЭЦП…",
        "Пацвердзіце подпіс у праграме ЭЛП…",
        "Confirm the signature in your EDS software…",
    ),
    (
        "cert_dev_summary",
        "Подпись вручную (для разработчиков)",
        "Подпіс уручную (для распрацоўшчыкаў)",
        "Manual signing (for developers)",
    ),
    (
        "cert_dev_intro",
        "Программа для подписи не найдена. Подпишите запрос тестовым ключом командой ниже и вставьте результат.",
        "Праграма для подпісу не знойдзена. Падпішыце запыт тэставым ключом камандай ніжэй і ўстаўце вынік.",
        "No signing software was found. Sign the challenge with a test key using the command below and paste the result.",
    ),
    (
        "cert_dev_challenge",
        "Запрос на подпись",
        "Запыт на подпіс",
        "Challenge to sign",
    ),
    (
        "cert_dev_command",
        "Команда для подписи",
        "Каманда для подпісу",
        "Command to sign it",
    ),
    (
        "cert_link_hint",
        "Если у вас уже есть учётная запись с паролем, войдите с паролем, а затем подтвердите вход ЭЦП: сертификат будет привязан к ней.",
        "Калі ў вас ужо ёсць уліковы запіс з паролем, увайдзіце з паролем, а потым пацвердзіце ўваход ЭЛП: сертыфікат будзе прывязаны да яго.",
        "If you already have an account with a password, sign in with it and then confirm with your EDS key: the certificate will be linked to that account.",
    ),
    (
        "cert_dev_reissued",
        "Тот запрос использован: выдан новый, подпишите его.",
        "Той запыт выкарыстаны: выдадзены новы, падпішыце яго.",
        "That challenge is spent: a new one was issued, sign it.",
    ),
    (
        "cert_err_no_signer",
        "Программа для подписи ЭЦП не найдена. Подключите ключ или ID-карту, запустите программу ЭЦП и попробуйте снова.",
        "Праграма для подпісу ЭЛП не знойдзена. Падключыце ключ або ID-карту, запусціце праграму ЭЛП і паспрабуйце зноў.",
        "No EDS signing software was found. Connect your key or ID card, start the signing software and try again.",
    ),
    (
        "cert_dev_expires",
        "Запрос действителен {s} с.",
        "Запыт дзейнічае {s} с.",
        "The challenge is valid for {s} s.",
    ),
    (
        "cert_dev_refresh",
        "Новый запрос",
        "Новы запыт",
        "New challenge",
    ),
    (
        "cert_dev_certificate",
        "Сертификат (PEM: сначала свой, затем промежуточные)",
        "Сертыфікат (PEM: спачатку свой, потым прамежкавыя)",
        "Certificate (PEM: leaf first, then intermediates)",
    ),
    (
        "cert_dev_signature",
        "Подпись (CMS в base64 или необработанная в hex)",
        "Подпіс (CMS у base64 або неапрацаваны ў hex)",
        "Signature (base64 CMS or raw hex)",
    ),
    (
        "cert_dev_submit",
        "Войти с этой подписью",
        "Увайсці з гэтым подпісам",
        "Sign in with this signature",
    ),
    (
        "cert_err_malformed",
        "Сертификат или подпись повреждены.",
        "Сертыфікат або подпіс пашкоджаны.",
        "The certificate or signature is damaged.",
    ),
    (
        "cert_err_untrusted",
        "Сертификат выдан не доверенным удостоверяющим центром.",
        "Сертыфікат выдадзены не давераным пасведчальным цэнтрам.",
        "The certificate was not issued by a trusted certification authority.",
    ),
    (
        "cert_err_bad_signature",
        "Подпись не прошла проверку.",
        "Подпіс не прайшоў праверку.",
        "The signature did not verify.",
    ),
    (
        "cert_err_expired",
        "Срок действия сертификата истёк.",
        "Тэрмін дзеяння сертыфіката скончыўся.",
        "The certificate has expired.",
    ),
    (
        "cert_err_not_yet_valid",
        "Срок действия сертификата ещё не наступил.",
        "Тэрмін дзеяння сертыфіката яшчэ не наступіў.",
        "The certificate is not valid yet.",
    ),
    (
        "cert_err_revoked",
        "Сертификат отозван.",
        "Сертыфікат адкліканы.",
        "The certificate has been revoked.",
    ),
    (
        "cert_err_crl_unavailable",
        "Не удалось проверить отзыв сертификата, попробуйте позже.",
        "Не ўдалося праверыць адкліканне сертыфіката, паспрабуйце пазней.",
        "Could not check whether the certificate was revoked. Try again later.",
    ),
    (
        "cert_err_key_usage",
        "Сертификат не предназначен для подписи.",
        "Сертыфікат не прызначаны для подпісу.",
        "The certificate is not meant for signing.",
    ),
    (
        "cert_err_bad_challenge",
        "Запрос на подпись устарел, попробуйте ещё раз.",
        "Запыт на подпіс састарэў, паспрабуйце яшчэ раз.",
        "The signing request is out of date. Try again.",
    ),
    (
        "cert_err_policy",
        "Этот сертификат нельзя использовать для входа.",
        "Гэты сертыфікат нельга выкарыстоўваць для ўваходу.",
        "This certificate cannot be used to sign in.",
    ),
    (
        "cert_err_network",
        "Нет связи с сервером. Проверьте подключение и попробуйте снова.",
        "Няма сувязі з серверам. Праверце падключэнне і паспрабуйце зноў.",
        "Cannot reach the server. Check your connection and try again.",
    ),
    (
        "cert_err_signer",
        "Не удалось подписать запрос. Проверьте, что ключ или ID-карта подключены, и попробуйте снова.",
        "Не ўдалося падпісаць запыт. Праверце, што ключ або ID-карта падключаны, і паспрабуйце зноў.",
        "Could not sign the request. Check that your key or ID card is connected and try again.",
    ),
    (
        "cert_err_no_pem",
        "Вставьте сертификат в формате PEM (-----BEGIN CERTIFICATE-----).",
        "Устаўце сертыфікат у фармаце PEM (-----BEGIN CERTIFICATE-----).",
        "Paste the certificate in PEM format (-----BEGIN CERTIFICATE-----).",
    ),
    (
        "cert_err_no_signature",
        "Вставьте подпись.",
        "Устаўце подпіс.",
        "Paste the signature.",
    ),
    (
        "cert_err_no_challenge",
        "Сначала получите запрос на подпись.",
        "Спачатку атрымайце запыт на подпіс.",
        "Get a challenge to sign first.",
    ),
    (
        "cert_err_generic",
        "Не удалось войти с сертификатом. Попробуйте ещё раз.",
        "Не ўдалося ўвайсці з сертыфікатам. Паспрабуйце яшчэ раз.",
        "Could not sign in with the certificate. Try again.",
    ),
    // accounts hardening
    (
        "login_taken",
        "Логин «{login}» уже занят. Выберите другой или войдите.",
        "Лагін «{login}» ужо заняты. Выберыце іншы або ўвайдзіце.",
        "The login “{login}” is taken. Choose another one or sign in.",
    ),
    (
        "too_many_requests",
        "Слишком много запросов с вашего адреса. Повторите через час.",
        "Занадта шмат запытаў з вашага адраса. Паўтарыце праз гадзіну.",
        "Too many requests from your address. Try again in an hour.",
    ),
    (
        "otp_wrong_left",
        "Неверный код. Осталось попыток: {n}.",
        "Няправільны код. Засталося спроб: {n}.",
        "Wrong code. Attempts left: {n}.",
    ),
    (
        "phone_confirmed_elsewhere",
        "Этот номер уже подтверждён для другой учётной записи. Войдите в неё или восстановите пароль.",
        "Гэты нумар ужо пацверджаны для іншага ўліковага запісу. Увайдзіце ў яго або аднавіце пароль.",
        "This number is already confirmed for another account. Sign in to it or recover its password.",
    ),
    (
        "email_confirmed_elsewhere",
        "Этот адрес уже подтверждён для другой учётной записи. Войдите в неё или восстановите пароль.",
        "Гэты адрас ужо пацверджаны для іншага ўліковага запісу. Увайдзіце ў яго або аднавіце пароль.",
        "This address is already confirmed for another account. Sign in to it or recover its password.",
    ),
    (
        "register_attempt_sms",
        "{name}: попытка регистрации с вашим номером.",
        "{name}: спроба рэгістрацыі з вашым нумарам.",
        "{name}: someone tried to register with your number.",
    ),
    (
        "register_attempt_subject",
        "Попытка регистрации с вашим адресом",
        "Спроба рэгістрацыі з вашым адрасам",
        "Someone tried to register with your address",
    ),
    (
        "register_attempt_email",
        "Здравствуйте!\n\nКто-то пытался зарегистрироваться в системе обращений с этим адресом электронной почты. Учётная запись с ним у вас уже есть: если это были вы, войдите или восстановите пароль. Если нет, ничего делать не нужно: адрес остаётся за вами.",
        "Добры дзень!\n\nХтосьці спрабаваў зарэгістравацца ў сістэме зваротаў з гэтым адрасам электроннай пошты. Уліковы запіс з ім у вас ужо ёсць: калі гэта былі вы, увайдзіце або аднавіце пароль. Калі не, нічога рабіць не трэба: адрас застаецца за вамі.",
        "Hello,\n\nSomeone tried to register in the appeals system with this email address. You already have an account with it: if it was you, sign in or recover your password. If not, there is nothing to do: the address stays yours.",
    ),
    (
        "contact_attempt_sms",
        "{name}: попытка указать ваш номер в другой учётной записи.",
        "{name}: спроба ўказаць ваш нумар у іншым уліковым запісе.",
        "{name}: someone tried to add your number to another account.",
    ),
    (
        "contact_attempt_subject",
        "Попытка указать ваш адрес в другой учётной записи",
        "Спроба ўказаць ваш адрас у іншым уліковым запісе",
        "Someone tried to add your address to another account",
    ),
    (
        "contact_attempt_email",
        "Здравствуйте!\n\nКто-то пытался указать этот адрес электронной почты в другой учётной записи системы обращений. Он подтверждён для вашей учётной записи и остаётся за ней: делать ничего не нужно. Если это были вы, сначала смените адрес в своей учётной записи.",
        "Добры дзень!\n\nХтосьці спрабаваў указаць гэты адрас электроннай пошты ў іншым уліковым запісе сістэмы зваротаў. Ён пацверджаны для вашага ўліковага запісу і застаецца за ім: рабіць нічога не трэба. Калі гэта былі вы, спачатку змяніце адрас у сваім уліковым запісе.",
        "Hello,\n\nSomeone tried to add this email address to another account of the appeals system. It is confirmed for your account and stays with it: there is nothing to do. If it was you, first change the address in your own account.",
    ),
    // certificate hardening
    (
        "cert_err_too_complex",
        "Цепочка сертификатов слишком сложна для проверки. Отправьте только свой сертификат и сертификаты выдавшего его центра.",
        "Ланцужок сертыфікатаў занадта складаны для праверкі. Адпраўце толькі свой сертыфікат і сертыфікаты цэнтра, які яго выдаў.",
        "The certificate chain is too complex to check. Send only your certificate and those of the authority that issued it.",
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
    fn message_keys_are_unique() {
        let mut keys: Vec<&str> = MESSAGES.iter().map(|(k, ..)| *k).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            n,
            "a key defined twice would shadow its translation"
        );
    }

    #[test]
    fn every_message_is_translated() {
        for (k, ru, be, en) in MESSAGES {
            assert!(!ru.is_empty() && !be.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
