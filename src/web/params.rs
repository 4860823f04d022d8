//! Request parameters of the protocol endpoints and the pages' forms: from the query (GET) or
//! an `application/x-www-form-urlencoded` body (POST).
//!
//! Parsed strictly rather than with serde_urlencoded/form_urlencoded: those decode invalid UTF-8
//! lossily and let a repeated parameter silently win, while RFC 6749 §3.1 requires us to refuse
//! both ("parameters MUST NOT be included more than once").

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use percent_encoding::percent_decode;

pub const MAX_PARAMS: usize = 64;
pub const MAX_VALUE_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {0} is included more than once")]
    Duplicate(String),
    #[error("parameters are not valid UTF-8 or percent-encoding")]
    Encoding,
    #[error("too many parameters")]
    TooMany,
    #[error("parameter {0} is too long")]
    TooLong(String),
    #[error("the body must be application/x-www-form-urlencoded")]
    ContentType,
    #[error("the request body could not be read (too large?)")]
    Body,
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    map: HashMap<String, String>,
}

fn decode(part: &[u8]) -> Result<String, ParamError> {
    let plus: Vec<u8> = part
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ParamError::Encoding)
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Params, ParamError> {
        let mut map = HashMap::new();
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if map.len() >= MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let k = decode(k)?;
            let v = decode(v)?;
            if v.len() > MAX_VALUE_LEN {
                return Err(ParamError::TooLong(k));
            }
            if map.contains_key(&k) {
                return Err(ParamError::Duplicate(k));
            }
            map.insert(k, v);
        }
        Ok(Params { map })
    }

    /// A parameter sent empty is treated as omitted (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, Missing> {
        self.get(name).ok_or_else(|| Missing(name.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.map.iter()
    }
}

/// A required parameter that was not sent (each kind of endpoint answers it its own way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is required")]
pub struct Missing(pub String);

/// The extractor never rejects: each endpoint maps a `ParamError` its own way (JSON error,
/// error page), so the mapping stays in one place per kind of endpoint.
pub struct RequestParams(pub Result<Params, ParamError>);

impl<S: Send + Sync> FromRequest<S> for RequestParams {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let q = req.uri().query().unwrap_or("").as_bytes().to_vec();
            return Ok(RequestParams(Params::parse(&q)));
        }
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        if !form {
            return Ok(RequestParams(Err(ParamError::ContentType)));
        }
        let query = req.uri().query().map(|q| q.to_string());
        let body = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(_) => return Ok(RequestParams(Err(ParamError::Body))),
        };
        let parsed = Params::parse(&body).and_then(|p| {
            // A POST carries its parameters in the body; query parameters would be a second,
            // unprotected channel for the same names.
            if query.as_deref().is_some_and(|q| !q.is_empty()) {
                Err(ParamError::Duplicate("(query string on a POST)".into()))
            } else {
                Ok(p)
            }
        });
        Ok(RequestParams(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        let p = Params::parse(b"a=1&b=x+y%20z&c=").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y z"));
        assert_eq!(p.get("c"), None, "empty means absent");
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err(),
            ParamError::Duplicate("a".into())
        );
        assert_eq!(Params::parse(b"a=%FF").unwrap_err(), ParamError::Encoding);
        assert_eq!(
            Params::parse(b"a=%C3%28").unwrap_err(),
            ParamError::Encoding
        );
        let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            Params::parse(many.join("&").as_bytes()).unwrap_err(),
            ParamError::TooMany
        );
        let long = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(
            Params::parse(long.as_bytes()),
            Err(ParamError::TooLong(_))
        ));
        assert_eq!(
            Params::parse("name=%D0%98%D0%B2%D0%B0%D0%BD".as_bytes())
                .unwrap()
                .get("name"),
            Some("Иван")
        );
    }
}
