//! argon2id on the blocking pool, behind a bounded queue: a flood of logins waits its turn or
//! is told to retry, and never starves the async workers that serve token requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// The queue is full; the caller should answer "try again shortly".
    Busy,
    Internal,
}

pub struct PasswordHasher {
    argon: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// A real hash of a random password, verified against when the account does not exist.
    dummy: String,
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
pub fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

fn argon() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params())
}

/// Synchronous hashing for the CLI.
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&crate::secrets::random_bytes::<16>())
        .map_err(|_| HashError::Internal)?;
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| HashError::Internal)
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize, max_waiting: usize) -> Result<PasswordHasher, HashError> {
        let dummy = hash_blocking(&crate::secrets::random_token())?;
        Ok(PasswordHasher {
            argon: Arc::new(argon()),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            dummy,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| HashError::Internal)?;
        let argon = self.argon.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&argon)
        })
        .await
        .map_err(|_| HashError::Internal)?;
        Ok(out)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_string();
        let salt = SaltString::encode_b64(&crate::secrets::random_bytes::<16>())
            .map_err(|_| HashError::Internal)?;
        self.run(move |a| {
            a.hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|_| HashError::Internal)
        })
        .await?
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is none,
    /// returning false in that case after the same work.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, HashError> {
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_string();
        let password = password.to_string();
        let ok = self
            .run(move |a| {
                PasswordHash::new(&hash)
                    .map(|h| a.verify_password(password.as_bytes(), &h).is_ok())
                    .unwrap_or(false)
            })
            .await?;
        Ok(ok && real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_pass() {
        let h = PasswordHasher::new(2, 8).unwrap();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(Some(&hash), "correct horse").await.unwrap());
        assert!(!h.verify(Some(&hash), "wrong").await.unwrap());
        assert!(!h.verify(None, "anything").await.unwrap());
        assert!(!h.verify(Some("not a hash"), "x").await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_instead_of_waiting() {
        let h = Arc::new(PasswordHasher::new(1, 2).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move { h.verify(None, "x").await }));
        }
        let mut busy = 0;
        for t in tasks {
            if t.await.unwrap() == Err(HashError::Busy) {
                busy += 1;
            }
        }
        assert!(
            busy > 0,
            "with 1 worker and 2 places, 12 at once must overflow"
        );
    }
}
