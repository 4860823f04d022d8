//! A validated authorization request: built only by the check pipeline in `mod.rs`.

use serde::{Deserialize, Serialize};

use crate::authn::Acr;
use crate::authn::transaction::Pending;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Prompt {
    /// Use the session if it satisfies the request, else show the login page.
    #[default]
    Default,
    /// Never show a page: answer login_required if the session does not satisfy the request.
    None,
    /// Always authenticate afresh.
    Login,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    /// S256 code challenge; plain is refused.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub acr_values: Vec<Acr>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// `sub` of a valid id_token_hint: the session must belong to this person.
    pub id_token_hint_sub: Option<String>,
}

impl AuthorizationRequest {
    pub fn new(client_id: &str, redirect_uri: &str, state: Option<&str>) -> Self {
        AuthorizationRequest {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            state: state.map(String::from),
            scope: Vec::new(),
            nonce: None,
            code_challenge: None,
            prompt: Prompt::Default,
            max_age: None,
            acr_values: Vec::new(),
            login_hint: None,
            ui_locales: None,
            id_token_hint_sub: None,
        }
    }

    /// What the login keeps of this request: the fields it reads, the rest riding along.
    pub fn pending(&self) -> Result<Pending, serde_json::Error> {
        let mut p: Pending = serde_json::to_value(self).and_then(serde_json::from_value)?;
        // prompt=login and max_age ask for an authentication that recent, whoever makes it.
        p.fresh_within = match (self.prompt, self.max_age) {
            (Prompt::Login, _) => Some(0),
            (_, max_age) => max_age.map(|m| m.max(0)),
        };
        Ok(p)
    }

    /// The request a login transaction was started for.
    pub fn resumed(p: &Pending) -> Result<Self, serde_json::Error> {
        serde_json::to_value(p).and_then(serde_json::from_value)
    }

    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }
}
