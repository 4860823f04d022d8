//! argon2id on the blocking pool, behind bounded queues: a flood waits its turn or is told to
//! retry, and never starves the async workers that serve token requests.
//!
//! Two kinds of work share the hasher. Sign-ins (verifying a password) have their own queue and
//! a reserve of slots; registration and recovery (hashing a new password) may hold at most the
//! other slots and have a queue of their own, so a flood of registrations can slow sign-ins down
//! but never turn them away.
//!
//! Memory: every slot owns one argon2 working area (m blocks of 1 KiB, 19 MiB with the OWASP
//! parameters), allocated the first time the slot is used and reused for every later hash. The
//! allocator is never asked for those 19 MiB again, so resident memory stays at about
//! slots × 19 MiB above the rest of the process, however many passwords are checked (without
//! reuse, glibc keeps freed working areas in per-thread arenas and the process grows to hundreds
//! of MB).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// The queue is full; the caller should answer "try again shortly".
    Busy,
    Internal,
}

/// Which share of the hasher a piece of work draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Checking a password at sign-in.
    SignIn,
    /// Hashing a new password (registration, recovery).
    NewPassword,
}

/// How the hasher is shared (settings `VHOD_PASSWORD_*`).
#[derive(Debug, Clone, Copy)]
pub struct HasherLimits {
    /// Hashes computed at once (slots).
    pub slots: usize,
    /// Sign-ins waiting for a slot; beyond it they are told to retry.
    pub sign_in_queue: usize,
    /// Slots only sign-ins may use.
    pub sign_in_reserve: usize,
    /// New passwords waiting for a slot.
    pub other_queue: usize,
}

impl HasherLimits {
    /// Slots that new-password work may hold: all but the reserve, and at least one.
    fn other_slots(&self) -> usize {
        self.slots.saturating_sub(self.sign_in_reserve).max(1)
    }
}

pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    other_slots: Arc<Semaphore>,
    sign_in_waiting: Arc<AtomicUsize>,
    other_waiting: Arc<AtomicUsize>,
    limits: HasherLimits,
    /// The slots' working areas, taken by a slot for one hash and put back after it.
    memory: Arc<Mutex<Vec<Box<[Block]>>>>,
    /// A real hash of a random password, verified against when the account does not exist.
    dummy: String,
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
pub fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

fn new_salt() -> Result<SaltString, HashError> {
    SaltString::encode_b64(&crate::secrets::random_bytes::<16>()).map_err(|_| HashError::Internal)
}

/// Synchronous hashing for the CLI (one hash, its own memory).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let params = owasp_params();
    let mut memory = vec![Block::default(); params.block_count()];
    hash_into(&params, password, &new_salt()?, &mut memory)
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) computed in `memory`.
fn hash_into(
    params: &Params,
    password: &str,
    salt: &SaltString,
    memory: &mut [Block],
) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| HashError::Internal)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, memory)
        .map_err(|_| HashError::Internal)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|_| HashError::Internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| HashError::Internal)?),
    };
    Ok(phc.to_string())
}

/// Recomputes a stored PHC string's hash for `password` in `memory` and compares in constant
/// time. A hash whose parameters need more memory than a slot has (made with other settings)
/// gets a temporary area of its own.
fn verify_into(phc: &str, password: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let done = if params.block_count() <= memory.len() {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    } else {
        argon.hash_password_into(password.as_bytes(), salt, &mut out)
    };
    done.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// One place in a queue, given back however the waiting ends (also when the request is
/// abandoned while it waits).
struct QueuePlace(Arc<AtomicUsize>);

impl QueuePlace {
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<QueuePlace> {
        if counter.fetch_add(1, Ordering::AcqRel) >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(QueuePlace(counter.clone()))
    }
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A slot's working area for the duration of one hash; back in the pool when dropped.
struct SlotMemory {
    pool: Arc<Mutex<Vec<Box<[Block]>>>>,
    blocks: Option<Box<[Block]>>,
}

impl SlotMemory {
    fn take(pool: &Arc<Mutex<Vec<Box<[Block]>>>>, block_count: usize) -> SlotMemory {
        let reused = pool.lock().ok().and_then(|mut p| p.pop());
        let blocks =
            reused.unwrap_or_else(|| vec![Block::default(); block_count].into_boxed_slice());
        SlotMemory {
            pool: pool.clone(),
            blocks: Some(blocks),
        }
    }

    fn blocks(&mut self) -> &mut [Block] {
        self.blocks.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for SlotMemory {
    fn drop(&mut self) {
        if let (Some(b), Ok(mut pool)) = (self.blocks.take(), self.pool.lock()) {
            pool.push(b);
        }
    }
}

impl PasswordHasher {
    pub fn new(limits: HasherLimits) -> Result<PasswordHasher, HashError> {
        let limits = HasherLimits {
            slots: limits.slots.max(1),
            ..limits
        };
        let dummy = hash_blocking(&crate::secrets::random_token())?;
        Ok(PasswordHasher {
            params: owasp_params(),
            slots: Arc::new(Semaphore::new(limits.slots)),
            other_slots: Arc::new(Semaphore::new(limits.other_slots())),
            sign_in_waiting: Arc::new(AtomicUsize::new(0)),
            other_waiting: Arc::new(AtomicUsize::new(0)),
            limits,
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy,
        })
    }

    /// Waits for a slot of the right share; Busy when that share's queue is full.
    async fn permits(&self, work: Work) -> Result<Vec<OwnedSemaphorePermit>, HashError> {
        let (waiting, max) = match work {
            Work::SignIn => (&self.sign_in_waiting, self.limits.sign_in_queue),
            Work::NewPassword => (&self.other_waiting, self.limits.other_queue),
        };
        let _place = QueuePlace::take(waiting, max).ok_or(HashError::Busy)?;
        let mut held = Vec::with_capacity(2);
        // New-password work first takes one of its own slots, so it never holds the reserve.
        if work == Work::NewPassword {
            let p = self.other_slots.clone().acquire_owned().await;
            held.push(p.map_err(|_| HashError::Internal)?);
        }
        let p = self.slots.clone().acquire_owned().await;
        held.push(p.map_err(|_| HashError::Internal)?);
        Ok(held)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: Work,
        job: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permits = self.permits(work).await?;
        let pool = self.memory.clone();
        let block_count = self.params.block_count();
        tokio::task::spawn_blocking(move || {
            let _permits = permits;
            let mut memory = SlotMemory::take(&pool, block_count);
            job(memory.blocks())
        })
        .await
        .map_err(|_| HashError::Internal)
    }

    /// Hashes a new password (registration, recovery): the share that leaves sign-ins their
    /// reserve.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_string();
        let salt = new_salt()?;
        let params = self.params.clone();
        self.run(Work::NewPassword, move |memory| {
            hash_into(&params, &password, &salt, memory)
        })
        .await?
    }

    /// Verifies `password` at sign-in against `hash`, or against the dummy hash when there is
    /// none, returning false in that case after the same work.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, HashError> {
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_string();
        let password = password.to_string();
        let ok = self
            .run(Work::SignIn, move |memory| {
                verify_into(&hash, &password, memory)
            })
            .await?;
        Ok(ok && real)
    }

    /// Working areas allocated so far (never more than the slots).
    pub fn working_areas(&self) -> usize {
        self.memory.lock().map(|p| p.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    fn argon() -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params())
    }

    fn limits(slots: usize, queue: usize) -> HasherLimits {
        HasherLimits {
            slots,
            sign_in_queue: queue,
            sign_in_reserve: 1,
            other_queue: queue,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_pass() {
        let h = PasswordHasher::new(limits(2, 8)).unwrap();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(Some(&hash), "correct horse").await.unwrap());
        assert!(!h.verify(Some(&hash), "wrong").await.unwrap());
        assert!(!h.verify(None, "anything").await.unwrap());
        assert!(!h.verify(Some("not a hash"), "x").await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_the_argon2_crate_s_own() {
        // Ours verify with the crate's verifier, and the crate's (and the CLI's) verify with ours.
        let h = PasswordHasher::new(limits(1, 8)).unwrap();
        let ours = h.hash("пароль тэст").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon()
                .verify_password("пароль тэст".as_bytes(), &parsed)
                .is_ok()
        );
        let cli = hash_blocking("another one").unwrap();
        assert!(h.verify(Some(&cli), "another one").await.unwrap());
        // Other parameters (here: less memory, argon2i) still verify.
        use argon2::password_hash::PasswordHasher as _;
        let small = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"legacy", &new_salt().unwrap())
        .unwrap()
        .to_string();
        assert!(h.verify(Some(&small), "legacy").await.unwrap());
        assert!(!h.verify(Some(&small), "legacY").await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_one_area_per_slot_whatever_the_count() {
        let h = Arc::new(PasswordHasher::new(limits(2, 64)).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move { h.verify(None, "x").await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(false));
        }
        assert!(
            (1..=2).contains(&h.working_areas()),
            "{} areas",
            h.working_areas()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_instead_of_waiting() {
        let h = Arc::new(PasswordHasher::new(limits(1, 2)).unwrap());
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_passwords_never_take_the_sign_ins_places() {
        let h = Arc::new(
            PasswordHasher::new(HasherLimits {
                slots: 2,
                sign_in_queue: 4,
                sign_in_reserve: 1,
                other_queue: 2,
            })
            .unwrap(),
        );
        let mut flood = Vec::new();
        for _ in 0..16 {
            let h = h.clone();
            flood.push(tokio::spawn(async move { h.hash("a new password").await }));
        }
        tokio::task::yield_now().await;
        let mut sign_ins = Vec::new();
        for _ in 0..4 {
            let h = h.clone();
            sign_ins.push(tokio::spawn(async move { h.verify(None, "x").await }));
        }
        for s in sign_ins {
            assert_eq!(s.await.unwrap(), Ok(false), "a sign-in was turned away");
        }
        let mut busy = 0;
        for f in flood {
            if f.await.unwrap() == Err(HashError::Busy) {
                busy += 1;
            }
        }
        assert!(busy > 0, "the flood overflowed its own queue");
    }

    #[tokio::test]
    async fn an_abandoned_wait_gives_its_place_back() {
        let h = Arc::new(PasswordHasher::new(limits(1, 1)).unwrap());
        let held = h.permits(Work::SignIn).await.unwrap();
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.verify(None, "x").await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        assert_eq!(h.verify(None, "x").await, Ok(false), "the place came back");
    }
}
