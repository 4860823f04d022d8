//! Which account a certificate identity belongs to. A person is known by their personal
//! identification number; a representative whose certificate names none, by the issuer and
//! subject names of the certificate (a renewed certificate from the same CA keeps them).
//! Never by name or email: linking an existing account needs its password (see
//! `authn::certificate`).
//!
//! A number counts across the deployment only when a profile authoritative for personal numbers
//! read it (`authoritative_personal_number` in policies/certificates.toml): its keys are
//! `pn:<number>` and `dn:<hash>`, as they always were. Any other profile's identities are
//! scoped by that profile and the anchor's key, `<profile>/<anchor key sha256>/pn:<number>`
//! (or `…/dn:<hash>`), so a CA that is not the authority on numbers never reaches an account
//! another CA's certificate made, whatever number it writes.

use super::account::{self, Account, NewAccount};
use super::username;
use crate::pki::cert::Cert;
use crate::pki::profile::CertIdentity;
use crate::secrets;
use crate::store::StoreError;
use crate::store::certificates::IdentityRow;
use crate::store::sql::Db;
use crate::store::units::{self, NewIdentity};

/// The key an identity is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey(String);

impl IdentityKey {
    pub fn of(identity: &CertIdentity, leaf: &Cert) -> IdentityKey {
        let scope = if identity.authoritative {
            String::new()
        } else {
            format!("{}/{}/", identity.profile, identity.anchor_key)
        };
        match &identity.personal_number {
            Some(pn) => IdentityKey(format!("{scope}pn:{pn}")),
            None => {
                let mut names = leaf.issuer_der.clone();
                names.extend_from_slice(&leaf.subject_der);
                IdentityKey(format!(
                    "{scope}dn:{}",
                    hex::encode(secrets::sha256(&names))
                ))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What every personal-number key of this key's scope starts with, when this key is one.
    pub fn personal_number_prefix(&self) -> Option<&str> {
        self.0.find("pn:").map(|at| &self.0[..at + 3])
    }
}

pub async fn owner(db: &Db, key: &IdentityKey) -> Result<Option<String>, StoreError> {
    db.certificates().owner(key.as_str()).await
}

/// Are there identities stored unscoped (`pn:`/`dn:`, as before profiles scoped them)? Only an
/// authoritative profile finds them.
pub async fn has_unscoped(db: &Db) -> Result<bool, StoreError> {
    db.certificates().has_unscoped().await
}

pub async fn identities_of(db: &Db, account_id: &str) -> Result<Vec<String>, StoreError> {
    db.certificates().keys_of(account_id).await
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the certificate identity already belongs to an account")]
    Taken,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => LinkError::Taken,
            e => LinkError::Store(e),
        }
    }
}

/// Binds the identity to an existing account, with the profile and anchor that vouched for it.
pub async fn link(
    db: &Db,
    key: &IdentityKey,
    identity: &CertIdentity,
    account_id: &str,
) -> Result<(), LinkError> {
    let row = IdentityRow {
        key: key.as_str(),
        account_id,
        profile: &identity.profile,
        anchor_key: &identity.anchor_key,
    };
    Ok(db.certificates().insert(&row).await?)
}

/// A new account for a person first seen through their certificate, written together with
/// its identity row (both or neither).
pub async fn create_account(
    db: &Db,
    key: &IdentityKey,
    identity: &CertIdentity,
) -> Result<Account, LinkError> {
    let id = NewIdentity {
        key: key.as_str(),
        profile: &identity.profile,
        anchor_key: &identity.anchor_key,
    };
    // A namesake drew the same disambiguator: draw again (each try is its own transaction, as
    // PostgreSQL ends one at its first error). A conflict once the names differ is the
    // identity: another sign-in of the same person created it a moment ago.
    let mut tries = 0;
    let row = loop {
        tries += 1;
        let row = account::validate(NewAccount {
            // Not a login anyone types: certificate accounts have no password until the person
            // sets one.
            username: username::readable(
                identity.surname.as_deref(),
                identity.given_name.as_deref(),
            ),
            given_name: identity.given_name.clone(),
            family_name: identity.surname.clone(),
            middle_name: identity.patronymic.clone(),
            roles: vec!["applicant".into()],
            verified: true,
            ..NewAccount::default()
        })
        .map_err(|e| LinkError::Store(StoreError::Corrupt(e.to_string())))?;
        match units::create_account_with_identity(db, &row, &id).await {
            Ok(()) => break row,
            Err(StoreError::Conflict) if tries < 3 && !taken(db, key).await? => continue,
            Err(e) => return Err(e.into()),
        }
    };
    account::find_by_id(db, &row.id)
        .await?
        .ok_or(LinkError::Store(StoreError::NotFound))
}

/// Does the identity belong to an account already?
async fn taken(db: &Db, key: &IdentityKey) -> Result<bool, StoreError> {
    Ok(owner(db, key).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::profile::CertKind;

    fn identity(authoritative: bool, pn: Option<&str>) -> CertIdentity {
        CertIdentity {
            profile: if authoritative { "national" } else { "partner" }.into(),
            authoritative,
            anchor_key: "cd".repeat(32),
            kind: CertKind::Eds,
            personal_number: pn.map(str::to_string),
            surname: Some("Шчарбакоў".into()),
            given_name: Some("Юрый".into()),
            patronymic: None,
            unp: None,
            organization: None,
            title: None,
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn only_an_authoritative_profile_keys_by_the_bare_number() {
        let leaf = crate::pki::cert::Cert::from_der(&test_leaf()).unwrap();
        let national = IdentityKey::of(&identity(true, Some("4120290A012PB3")), &leaf);
        assert_eq!(national.as_str(), "pn:4120290A012PB3");
        assert_eq!(national.personal_number_prefix(), Some("pn:"));
        let partner = IdentityKey::of(&identity(false, Some("4120290A012PB3")), &leaf);
        assert_eq!(
            partner.as_str(),
            format!("partner/{}/pn:4120290A012PB3", "cd".repeat(32))
        );
        assert_ne!(partner, national);
        let by_names = IdentityKey::of(&identity(false, None), &leaf);
        assert!(by_names.as_str().starts_with("partner/"));
        assert!(by_names.as_str().contains("/dn:"));
        assert_eq!(by_names.personal_number_prefix(), None);
        let national_names = IdentityKey::of(&identity(true, None), &leaf);
        assert!(national_names.as_str().starts_with("dn:"));
    }

    fn test_leaf() -> Vec<u8> {
        use crate::pki::issue::{self, CertSpec};
        use crate::pki::keys::{KeyAlgorithm, PrivateKey};
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = vec![(crate::pki::oids::AT_COMMON_NAME, "Test".to_string())];
        issue::self_signed(&CertSpec::leaf(subject, &[1], 0, 4_000_000_000), &key).unwrap()
    }
}
