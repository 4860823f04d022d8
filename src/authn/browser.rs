//! What vhod keeps in the browser's cookie session (tower-sessions): the SSO session id, the CSRF
//! token, the login transactions this browser started and the upstream login it set off on.

use tower_sessions::Session;

use crate::secrets;

const SID: &str = "sid";
const CSRF: &str = "csrf";
const TXS: &str = "txs";
/// The `state` (hashed) of the upstream login this browser set off on last.
const UPSTREAM_FLOW: &str = "upflow";
/// A few tabs may be signing in to different services at once.
const MAX_TXS: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("browser session store: {0}")]
pub struct BrowserError(#[from] tower_sessions::session::Error);

pub async fn sid(s: &Session) -> Result<Option<String>, BrowserError> {
    Ok(s.get::<String>(SID).await?)
}

/// Binds a new SSO session to this browser under a fresh cookie id (no session fixation).
pub async fn sign_in(s: &Session, sid: &str) -> Result<(), BrowserError> {
    s.cycle_id().await?;
    s.insert(SID, sid).await?;
    Ok(())
}

pub async fn sign_out(s: &Session) -> Result<(), BrowserError> {
    s.remove::<String>(SID).await?;
    s.cycle_id().await?;
    Ok(())
}

pub async fn csrf_token(s: &Session) -> Result<String, BrowserError> {
    if let Some(t) = s.get::<String>(CSRF).await? {
        return Ok(t);
    }
    let t = secrets::random_token();
    s.insert(CSRF, &t).await?;
    Ok(t)
}

pub async fn csrf_ok(s: &Session, presented: &str) -> Result<bool, BrowserError> {
    Ok(match s.get::<String>(CSRF).await? {
        Some(t) => secrets::ct_eq(t.as_bytes(), presented.as_bytes()),
        None => false,
    })
}

pub async fn add_transaction(s: &Session, tx: &str) -> Result<(), BrowserError> {
    let mut txs: Vec<String> = s.get(TXS).await?.unwrap_or_default();
    txs.retain(|t| t != tx);
    txs.push(tx.to_string());
    if txs.len() > MAX_TXS {
        txs.drain(..txs.len() - MAX_TXS);
    }
    s.insert(TXS, txs).await?;
    Ok(())
}

pub async fn owns_transaction(s: &Session, tx: &str) -> Result<bool, BrowserError> {
    let txs: Vec<String> = s.get(TXS).await?.unwrap_or_default();
    Ok(txs.iter().any(|t| t == tx))
}

/// Remembers under `key` the login transaction `tx` names, when this browser started it, so
/// that a page reached from the login page (registration, recovery) can continue that
/// authorization afterwards. A transaction this browser does not own is not remembered.
pub async fn remember_owned_transaction(
    s: &Session,
    key: &str,
    tx: Option<&str>,
) -> Result<(), BrowserError> {
    if let Some(tx) = tx
        && matches!(owns_transaction(s, tx).await, Ok(true))
    {
        s.insert(key, tx).await?;
    }
    Ok(())
}

/// The transaction the browser started last (used by JSON login calls that name none).
pub async fn current_transaction(s: &Session) -> Result<Option<String>, BrowserError> {
    let txs: Vec<String> = s.get(TXS).await?.unwrap_or_default();
    Ok(txs.last().cloned())
}

pub async fn remove_transaction(s: &Session, tx: &str) -> Result<(), BrowserError> {
    let mut txs: Vec<String> = s.get(TXS).await?.unwrap_or_default();
    txs.retain(|t| t != tx);
    s.insert(TXS, txs).await?;
    Ok(())
}

/// Binds an upstream login's `state` to this browser: only this browser may come back with it.
pub async fn begin_upstream_flow(s: &Session, state: &str) -> Result<(), BrowserError> {
    s.insert(UPSTREAM_FLOW, secrets::token_hash(state)).await?;
    Ok(())
}

/// Did this browser set off with `state`? Answers yes once: the binding is gone afterwards. A
/// state that is not the bound one leaves the binding (a link another site made the browser
/// open cannot cancel the login it is in).
pub async fn finish_upstream_flow(s: &Session, state: &str) -> Result<bool, BrowserError> {
    let Some(bound) = s.get::<String>(UPSTREAM_FLOW).await? else {
        return Ok(false);
    };
    let presented = secrets::token_hash(state);
    let ours = secrets::ct_eq(bound.as_bytes(), presented.as_bytes());
    if ours {
        s.remove::<String>(UPSTREAM_FLOW).await?;
    }
    Ok(ours)
}
