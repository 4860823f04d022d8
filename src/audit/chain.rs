//! The hash chain over the audit trail: each event's digest covers its canonical encoding and
//! the digest of the event before it, so changing, removing, adding or moving a stored row
//! breaks the chain at that row.
//!
//! Canonical encoding, version 1 (`enc` = 1), the bytes that are digested:
//!
//! ```text
//! "VHODAUD1"                     8 bytes, ASCII
//! alg                            text: "sha256" or "belt-hash"
//! seq                            8 bytes, unsigned big-endian
//! at_ms                          8 bytes, signed big-endian (two's complement)
//! kind outcome reason subject client_id method ip user_agent details
//! org_id acr upstream login_key delegator ip_key
//!                                15 texts, in this order
//! prev_hash                      32 bytes (zeros before the first event)
//! ```
//!
//! where a text is `0x00` when absent, or `0x01`, its UTF-8 length as 4 bytes big-endian, and
//! its UTF-8 bytes. Every stored column except the row's own `id` and `hash` is covered, so an
//! edit of any of them shows; the length prefixes make the encoding injective (no two rows
//! encode alike). The digest is SHA-256 (FIPS 180-4), or belt-hash (СТБ 34.101.31) where the
//! deployment asks for national algorithms; both give 32 bytes, stored as 64 hex digits.

use belt_hash::Digest as _;

/// A link of the chain.
pub type Digest = [u8; 32];

/// What precedes the first event.
pub const GENESIS: Digest = [0; 32];

/// The version of the encoding written today.
pub const ENCODING: i64 = 1;

const MAGIC: &[u8; 8] = b"VHODAUD1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlg {
    #[default]
    Sha256,
    BeltHash,
}

impl HashAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::BeltHash => "belt-hash",
        }
    }

    pub fn parse(s: &str) -> Option<HashAlg> {
        [HashAlg::Sha256, HashAlg::BeltHash]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    pub fn digest(self, bytes: &[u8]) -> Digest {
        match self {
            HashAlg::Sha256 => {
                let d = ring::digest::digest(&ring::digest::SHA256, bytes);
                let mut out = [0; 32];
                out.copy_from_slice(d.as_ref());
                out
            }
            HashAlg::BeltHash => belt_hash::BeltHash::digest(bytes).into(),
        }
    }
}

/// The columns of an event the encoding covers, in its order (both the row about to be stored
/// and the row read back give this, so writing and verifying share one encoding).
pub struct Fields<'a> {
    pub at_ms: i64,
    pub texts: [Option<&'a str>; 15],
}

/// The canonical encoding of an event at `seq` after `prev`.
pub fn encode(alg: HashAlg, seq: i64, prev: &Digest, f: &Fields<'_>) -> Vec<u8> {
    let len: usize = f.texts.iter().flatten().map(|t| t.len() + 5).sum();
    let mut out = Vec::with_capacity(64 + len + 15);
    out.extend_from_slice(MAGIC);
    text(&mut out, Some(alg.as_str()));
    out.extend_from_slice(&(seq as u64).to_be_bytes());
    out.extend_from_slice(&f.at_ms.to_be_bytes());
    for t in &f.texts {
        text(&mut out, *t);
    }
    out.extend_from_slice(prev);
    out
}

fn text(out: &mut Vec<u8>, t: Option<&str>) {
    match t {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            // Texts are bounded long before 4 GiB (the request limits); saturating keeps the
            // encoding total anyway.
            out.extend_from_slice(&u32::try_from(t.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
    }
}

/// The digest of an event at `seq` after `prev`: its link in the chain.
pub fn link(alg: HashAlg, seq: i64, prev: &Digest, f: &Fields<'_>) -> Digest {
    alg.digest(&encode(alg, seq, prev, f))
}

pub fn to_hex(d: &Digest) -> String {
    hex::encode(d)
}

pub fn from_hex(s: &str) -> Option<Digest> {
    let mut out = [0; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(subject: Option<&str>) -> Fields<'_> {
        let mut texts = [None; 15];
        texts[0] = Some("login");
        texts[1] = Some("failure");
        texts[3] = subject;
        Fields { at_ms: 7, texts }
    }

    /// The encoding, spelled out byte by byte: what an independent verifier implements.
    #[test]
    fn the_encoding_is_the_documented_one() {
        let bytes = encode(HashAlg::Sha256, 1, &GENESIS, &fields(Some("a")));
        let mut want = b"VHODAUD1".to_vec();
        want.extend_from_slice(&[1, 0, 0, 0, 6]);
        want.extend_from_slice(b"sha256");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[1, 0, 0, 0, 5]);
        want.extend_from_slice(b"login");
        want.extend_from_slice(&[1, 0, 0, 0, 7]);
        want.extend_from_slice(b"failure");
        want.push(0);
        want.extend_from_slice(&[1, 0, 0, 0, 1, b'a']);
        want.extend_from_slice(&[0; 11]);
        want.extend_from_slice(&[0; 32]);
        assert_eq!(bytes, want);
    }

    /// The digest of the bytes above, computed independently (Python's hashlib): a change of
    /// the encoding or of the digest fails here.
    #[test]
    fn links_are_stable_and_cover_every_field_and_the_place() {
        let f = fields(Some("a"));
        let h = link(HashAlg::Sha256, 1, &GENESIS, &f);
        assert_eq!(
            to_hex(&h),
            "e4613d072eabc9b00329d9ec6a0ea2663d3c6abf281e72020ab0f76a72c929d6"
        );
        assert_ne!(h, link(HashAlg::Sha256, 2, &GENESIS, &f), "the place");
        assert_ne!(h, link(HashAlg::Sha256, 1, &h, &f), "the link before");
        assert_ne!(
            h,
            link(HashAlg::Sha256, 1, &GENESIS, &fields(None)),
            "absent"
        );
        assert_ne!(
            h,
            link(HashAlg::Sha256, 1, &GENESIS, &fields(Some(""))),
            "absent is not empty"
        );
        assert_ne!(h, link(HashAlg::BeltHash, 1, &GENESIS, &f), "the digest");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn belt_hash_is_the_standard_one() {
        // СТБ 34.101.31-2020, Table A.23: belt-hash of the first 13 bytes of its Table A.1.
        let x = hex::decode("b194bac80a08f53b366d008e58").unwrap();
        assert_eq!(
            hex::encode(HashAlg::BeltHash.digest(&x)),
            "abef9725d4c5a83597a367d14494cc2542f20f659ddfecc961a3ec550cba8c75"
        );
    }
}
