//! Redirect URIs are built only by validation, and matched exactly (RFC 9700 §4.1.1):
//! the one exception is the port of a loopback IP literal, which native apps pick at run time
//! (RFC 8252 §7.3).

use std::fmt;

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: Url,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectUriError {
    #[error("not an absolute URI")]
    NotAbsolute,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("plain http is allowed only for loopback addresses outside development")]
    InsecureHttp,
    #[error("too long")]
    TooLong,
    #[error("scheme not allowed")]
    Scheme,
}

fn is_loopback_ip(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

impl RedirectUri {
    /// Validates a URI for registration. `allow_http` admits any http host (development).
    pub fn register(raw: &str, allow_http: bool) -> Result<Self, RedirectUriError> {
        if raw.len() > 2000 {
            return Err(RedirectUriError::TooLong);
        }
        let url = Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
        if raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                let loopback = is_loopback_ip(&url) || url.host_str() == Some("localhost");
                if !loopback && !allow_http {
                    return Err(RedirectUriError::InsecureHttp);
                }
            }
            "javascript" | "data" | "file" | "vbscript" => return Err(RedirectUriError::Scheme),
            // Private-use schemes of native apps (RFC 8252 §7.1).
            _ => {}
        }
        if url.cannot_be_a_base() && !url.scheme().contains('.') {
            return Err(RedirectUriError::NotAbsolute);
        }
        Ok(RedirectUri {
            raw: raw.to_string(),
            url,
        })
    }

    /// Does a URI from a request match this registered one?
    pub fn matches(&self, requested: &str) -> bool {
        if requested == self.raw {
            return true;
        }
        if self.url.scheme() == "http" && is_loopback_ip(&self.url) {
            if let Ok(req) = Url::parse(requested) {
                let mut a = self.url.clone();
                let mut b = req.clone();
                let _ = a.set_port(None);
                let _ = b.set_port(None);
                return req.scheme() == "http" && a.as_str() == b.as_str();
            }
        }
        false
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL to send the browser to, with response parameters appended to any existing query.
    pub fn with_params(target: &str, params: &[(&str, &str)]) -> String {
        if params.is_empty() {
            return target.to_string();
        }
        match Url::parse(target) {
            Ok(mut url) => {
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in params {
                        q.append_pair(k, v);
                    }
                }
                url.to_string()
            }
            Err(_) => target.to_string(),
        }
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_exact() {
        let r = RedirectUri::register("https://rp.example/cb", false).unwrap();
        assert!(r.matches("https://rp.example/cb"));
        assert!(!r.matches("https://rp.example/cb/"));
        assert!(!r.matches("https://rp.example/cb?x=1"));
        assert!(!r.matches("https://RP.example/cb"));
        assert!(!r.matches("https://rp.example/cb#x"));
        assert!(!r.matches("https://rp.example.evil/cb"));
    }

    #[test]
    fn loopback_ip_port_may_vary() {
        let r = RedirectUri::register("http://127.0.0.1/cb", false).unwrap();
        assert!(r.matches("http://127.0.0.1:53412/cb"));
        assert!(!r.matches("http://127.0.0.1:53412/other"));
        assert!(!r.matches("https://127.0.0.1:53412/cb"));
    }

    #[test]
    fn response_parameters_are_appended_to_the_query() {
        assert_eq!(
            RedirectUri::with_params("https://rp.example/cb?x=1", &[("code", "a b")]),
            "https://rp.example/cb?x=1&code=a+b"
        );
        assert_eq!(
            RedirectUri::with_params("https://rp.example/bye", &[]),
            "https://rp.example/bye"
        );
    }

    #[test]
    fn registration_refuses_dangerous_uris() {
        assert_eq!(
            RedirectUri::register("https://rp.example/cb#frag", false),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(
            RedirectUri::register("http://rp.example/cb", false),
            Err(RedirectUriError::InsecureHttp)
        );
        assert!(RedirectUri::register("http://rp.example/cb", true).is_ok());
        assert_eq!(
            RedirectUri::register("javascript:alert(1)", true),
            Err(RedirectUriError::Scheme)
        );
        assert!(RedirectUri::register("/relative", true).is_err());
        assert!(RedirectUri::register("by.gov.app:/callback", false).is_ok());
    }
}
