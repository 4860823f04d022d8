//! Which account a person signing in through an upstream provider (НПЭС, ЕС ИФЮЛ) is. The
//! part where other providers shipped account takeovers, so the rules are few and strict:
//!
//! - an upstream identity is known by (upstream, issuer, `sub`) and nothing else;
//! - the first login of an identity links it to an existing account only through a personal
//!   number that this upstream vouches for and that the account already holds as a verified
//!   fact (a certificate of the authority on numbers, another vouching upstream); one such
//!   account links, none makes a new applicant account, two or more refuse (`ambiguous_match`);
//! - never by email, phone or name: those are copied into a new account only, and only when the
//!   upstream marked them verified in the same document;
//! - linking to an existing account otherwise is its owner's deliberate act (the profile).

use super::account::{self, NewAccount};
use super::contact::Email;
use super::username;
use crate::store::StoreError;
use crate::store::sql::Db;
use crate::store::units;
pub use crate::store::upstream_identities::{LinkRow, UpstreamKey};

/// A contact value with whether the document that gave it vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub value: String,
    pub verified: bool,
}

/// What the upstream said about the person, through the deployment's claim mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// The personal identification number, only when this upstream vouches for numbers.
    pub verified_personal_number: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub email: Option<Vouched>,
    pub phone: Option<Vouched>,
}

/// Whose account the login is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The identity was linked before.
    Known(String),
    /// Linked just now, through the verified personal number the account already held.
    LinkedByNumber(String),
    /// A new applicant account was made for the identity.
    Created(String),
}

impl Resolution {
    pub fn account_id(&self) -> &str {
        match self {
            Resolution::Known(id) | Resolution::LinkedByNumber(id) | Resolution::Created(id) => id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Several accounts hold the verified number: a person cannot be two, so nobody is picked.
    #[error("{0} accounts hold the personal number")]
    Ambiguous(usize),
    /// The browser is signed in to (and stepping up) another account than the identity's.
    #[error("the upstream identity is not this account's")]
    OtherAccount,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn owner(db: &Db, key: &UpstreamKey<'_>) -> Result<Option<String>, StoreError> {
    db.upstream_identities().owner(key).await
}

pub async fn links_of(db: &Db, account_id: &str) -> Result<Vec<LinkRow>, StoreError> {
    db.upstream_identities().of_account(account_id).await
}

/// Finds (or links, or makes) the account of the identity `key`. `step_up` is the account the
/// browser is signed in to when it must sign in more strongly: only that account may be found.
pub async fn resolve(
    db: &Db,
    key: &UpstreamKey<'_>,
    person: &Person,
    step_up: Option<&str>,
) -> Result<Resolution, ResolveError> {
    if let Some(owner) = owner(db, key).await? {
        if step_up.is_some_and(|me| me != owner) {
            return Err(ResolveError::OtherAccount);
        }
        db.upstream_identities().touch(key).await?;
        return Ok(Resolution::Known(owner));
    }
    let number = person.verified_personal_number.as_deref();
    let holders = match number {
        Some(n) => {
            db.upstream_identities()
                .accounts_with_personal_number(n)
                .await?
        }
        None => Vec::new(),
    };
    match (holders.as_slice(), step_up) {
        ([one], None) => link_by_number(db, key, one, number).await,
        ([one], Some(me)) if one == me => link_by_number(db, key, one, number).await,
        ([], None) => create(db, key, person).await,
        (_, Some(_)) => Err(ResolveError::OtherAccount),
        (many, None) => Err(ResolveError::Ambiguous(many.len())),
    }
}

async fn link_by_number(
    db: &Db,
    key: &UpstreamKey<'_>,
    account_id: &str,
    number: Option<&str>,
) -> Result<Resolution, ResolveError> {
    match db
        .upstream_identities()
        .insert(key, account_id, number)
        .await
    {
        Ok(()) => Ok(Resolution::LinkedByNumber(account_id.to_string())),
        // Another login of the same person linked it a moment ago.
        Err(StoreError::Conflict) => raced(db, key).await,
        Err(e) => Err(e.into()),
    }
}

/// The identity was written by a concurrent login: whose it became.
async fn raced(db: &Db, key: &UpstreamKey<'_>) -> Result<Resolution, ResolveError> {
    match owner(db, key).await? {
        Some(owner) => Ok(Resolution::Known(owner)),
        None => Err(StoreError::NotFound.into()),
    }
}

/// A new applicant account with the names and the vouched-for contacts, written with its link
/// (both or neither).
async fn create(
    db: &Db,
    key: &UpstreamKey<'_>,
    person: &Person,
) -> Result<Resolution, ResolveError> {
    let vouched = |c: &Option<Vouched>| c.as_ref().filter(|c| c.verified).map(|c| c.value.clone());
    let email = vouched(&person.email).filter(|e| Email::parse(e).is_ok());
    let phone = vouched(&person.phone).filter(|p| account::normalize_phone(p).is_some());
    // A namesake may have drawn the same username, or another account may hold the phone or
    // the email as confirmed (the upstream vouching for it does not make it this person's
    // here): try again, without the phone, then without the email too. Each try is its own
    // transaction.
    let tries = [(phone.clone(), email.clone()), (None, email), (None, None)];
    for (phone, email) in tries {
        let row = account::validate(NewAccount {
            username: username::readable(
                person.family_name.as_deref(),
                person.given_name.as_deref(),
            ),
            phone,
            email,
            given_name: person.given_name.clone(),
            family_name: person.family_name.clone(),
            middle_name: person.middle_name.clone(),
            roles: vec!["applicant".into()],
            verified: true,
            ..NewAccount::default()
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let number = person.verified_personal_number.as_deref();
        match units::create_account_with_upstream_identity(db, &row, key, number).await {
            Ok(()) => return Ok(Resolution::Created(row.id)),
            Err(StoreError::Conflict) if owner(db, key).await?.is_some() => {
                return raced(db, key).await;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// How an owner's link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Now,
    /// The identity was this account's already.
    Already,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the upstream identity is another account's")]
    OtherAccount,
    /// The upstream vouches for a personal number that is not this account's (another
    /// account holds it, or this one holds another): not the same person.
    #[error("the personal number is not this account's")]
    NumberMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Links the identity to `account_id`, its owner having proved both (see
/// `authn::upstream::link`).
pub async fn link_to(
    db: &Db,
    key: &UpstreamKey<'_>,
    account_id: &str,
    person: &Person,
) -> Result<Linked, LinkError> {
    match owner(db, key).await? {
        Some(o) if o == account_id => return Ok(Linked::Already),
        Some(_) => return Err(LinkError::OtherAccount),
        None => {}
    }
    let number = person.verified_personal_number.as_deref();
    if let Some(n) = number {
        let ids = db.upstream_identities();
        let holders = ids.accounts_with_personal_number(n).await?;
        let own = ids.numbers_of(account_id).await?;
        if holders.iter().any(|h| h != account_id)
            || (!own.is_empty() && !own.iter().any(|o| o == n))
        {
            return Err(LinkError::NumberMismatch);
        }
    }
    match db
        .upstream_identities()
        .insert(key, account_id, number)
        .await
    {
        Ok(()) => Ok(Linked::Now),
        Err(StoreError::Conflict) => match owner(db, key).await? {
            Some(o) if o == account_id => Ok(Linked::Already),
            _ => Err(LinkError::OtherAccount),
        },
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    #[error("the identity is not linked to this account")]
    NotLinked,
    /// Without it the account would have no way to sign in.
    #[error("the account's last way to sign in")]
    LastWayIn,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Unlinks the identity from the account, unless it is the account's last way to sign in (no
/// password, no certificate, no other upstream identity).
pub async fn unlink(
    db: &Db,
    account: &super::account::Account,
    key: &UpstreamKey<'_>,
) -> Result<(), UnlinkError> {
    let links = links_of(db, &account.id).await?;
    let linked = |l: &LinkRow| {
        l.upstream == key.upstream && l.issuer == key.issuer && l.subject == key.subject
    };
    if !links.iter().any(linked) {
        return Err(UnlinkError::NotLinked);
    }
    let other_ways = account.password_hash.is_some()
        || !super::certificate::identities_of(db, &account.id)
            .await?
            .is_empty()
        || links.iter().any(|l| !linked(l));
    if !other_ways {
        return Err(UnlinkError::LastWayIn);
    }
    match db.upstream_identities().delete(key, &account.id).await? {
        true => Ok(()),
        false => Err(UnlinkError::NotLinked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewRow;
    use crate::store::certificates::IdentityRow;
    use crate::store::sql::test_dbs;

    const KEY: UpstreamKey<'static> = UpstreamKey {
        upstream: "npes",
        issuer: "https://npes.example.by",
        subject: "s-1",
    };

    fn person() -> Person {
        Person {
            family_name: Some("Петрова".into()),
            given_name: Some("Мария".into()),
            email: Some(Vouched {
                value: "maria@example.by".into(),
                verified: true,
            }),
            phone: Some(Vouched {
                value: "+375291112233".into(),
                verified: false,
            }),
            ..Person::default()
        }
    }

    async fn holder_of(db: &Db, id: &str, number: &str) {
        db.accounts().insert(&NewRow::active(id)).await.unwrap();
        let row = IdentityRow {
            key: &format!("pn:{number}"),
            account_id: id,
            profile: "national",
            anchor_key: "ab",
        };
        db.certificates().insert(&row).await.unwrap();
    }

    /// A first login makes an applicant with the vouched-for contacts only; the next finds it.
    #[tokio::test]
    async fn a_new_person_gets_an_account_once() {
        for t in test_dbs().await {
            let made = resolve(&t.db, &KEY, &person(), None).await.unwrap();
            let Resolution::Created(id) = &made else {
                panic!("{made:?}")
            };
            let acc = account::find_by_id(&t.db, id).await.unwrap().unwrap();
            assert!(acc.username.starts_with("~petrova.mariia."));
            assert_eq!(acc.email.as_deref(), Some("maria@example.by"));
            assert!(acc.email_verified);
            assert_eq!(acc.phone, None, "an unverified phone is not copied");
            assert!(!acc.phone_verified, "nor confirmed");
            assert_eq!(acc.roles, ["applicant"]);
            assert!(acc.password_hash.is_none());
            let again = resolve(&t.db, &KEY, &person(), None).await.unwrap();
            assert_eq!(again, Resolution::Known(id.clone()));
        }
    }

    /// Only a verified number links, and only to its one holder; an email never does.
    #[tokio::test]
    async fn linking_goes_by_a_verified_number_alone() {
        for t in test_dbs().await {
            holder_of(&t.db, "cert-holder", "3101").await;
            // The same email on an existing account means nothing.
            t.db.tamper(
                "UPDATE accounts SET email = 'maria@example.by', email_verified = 1 WHERE id = 'cert-holder'",
            )
            .await;
            let unvouched = resolve(&t.db, &KEY, &person(), None).await.unwrap();
            assert!(matches!(unvouched, Resolution::Created(_)), "{unvouched:?}");

            let key = UpstreamKey {
                subject: "s-2",
                ..KEY
            };
            let vouched = Person {
                verified_personal_number: Some("3101".into()),
                ..person()
            };
            let linked = resolve(&t.db, &key, &vouched, None).await.unwrap();
            assert_eq!(linked, Resolution::LinkedByNumber("cert-holder".into()));

            // A second holder of the number: nobody is picked.
            holder_of(&t.db, "second", "3102").await;
            t.db.upstream_identities()
                .insert(
                    &UpstreamKey {
                        upstream: "esifl",
                        ..KEY
                    },
                    "second",
                    Some("3103"),
                )
                .await
                .unwrap();
            holder_of(&t.db, "third", "3103").await;
            let key3 = UpstreamKey {
                subject: "s-3",
                ..KEY
            };
            let person3 = Person {
                verified_personal_number: Some("3103".into()),
                ..person()
            };
            let r = resolve(&t.db, &key3, &person3, None).await;
            assert!(matches!(r, Err(ResolveError::Ambiguous(2))), "{r:?}");
            assert_eq!(owner(&t.db, &key3).await.unwrap(), None);
        }
    }

    /// A browser stepping up finds only its own account.
    #[tokio::test]
    async fn a_step_up_finds_only_the_signed_in_account() {
        for t in test_dbs().await {
            let Resolution::Created(id) = resolve(&t.db, &KEY, &person(), None).await.unwrap()
            else {
                panic!("created")
            };
            t.db.accounts()
                .insert(&NewRow::active("other"))
                .await
                .unwrap();
            let r = resolve(&t.db, &KEY, &person(), Some("other")).await;
            assert!(matches!(r, Err(ResolveError::OtherAccount)), "{r:?}");
            let fresh = UpstreamKey {
                subject: "unlinked",
                ..KEY
            };
            let r = resolve(&t.db, &fresh, &person(), Some("other")).await;
            assert!(matches!(r, Err(ResolveError::OtherAccount)), "{r:?}");
            let mine = resolve(&t.db, &KEY, &person(), Some(&id)).await.unwrap();
            assert_eq!(mine, Resolution::Known(id));
        }
    }

    /// The owner links an identity only when it is nobody else's and, where the upstream vouches
    /// for a number, that number is the account's or nobody's; unlinking keeps a way in.
    #[tokio::test]
    async fn an_owner_links_and_unlinks_within_the_rules() {
        for t in test_dbs().await {
            holder_of(&t.db, "me", "3101").await;
            holder_of(&t.db, "other", "3102").await;
            let vouching = |n: &str| Person {
                verified_personal_number: Some(n.into()),
                ..person()
            };
            let r = link_to(&t.db, &KEY, "me", &vouching("3102")).await;
            assert!(matches!(r, Err(LinkError::NumberMismatch)), "{r:?}");
            let r = link_to(&t.db, &KEY, "me", &vouching("3999")).await;
            assert!(
                matches!(r, Err(LinkError::NumberMismatch)),
                "another number than mine"
            );
            assert_eq!(
                link_to(&t.db, &KEY, "me", &person()).await.unwrap(),
                Linked::Now
            );
            assert_eq!(
                link_to(&t.db, &KEY, "me", &person()).await.unwrap(),
                Linked::Already
            );
            let r = link_to(&t.db, &KEY, "other", &person()).await;
            assert!(matches!(r, Err(LinkError::OtherAccount)), "{r:?}");

            let me = account::find_by_id(&t.db, "me").await.unwrap().unwrap();
            let r = unlink(
                &t.db,
                &me,
                &UpstreamKey {
                    subject: "s-9",
                    ..KEY
                },
            )
            .await;
            assert!(matches!(r, Err(UnlinkError::NotLinked)), "{r:?}");
            unlink(&t.db, &me, &KEY)
                .await
                .expect("the certificate remains a way in");
            assert_eq!(owner(&t.db, &KEY).await.unwrap(), None);

            // An account made by the upstream has no other way in.
            let made = resolve(&t.db, &KEY, &person(), None).await.unwrap();
            let acc = account::find_by_id(&t.db, made.account_id())
                .await
                .unwrap()
                .unwrap();
            let r = unlink(&t.db, &acc, &KEY).await;
            assert!(matches!(r, Err(UnlinkError::LastWayIn)), "{r:?}");
        }
    }

    /// A vouched-for phone or email another account holds as confirmed is left out rather than
    /// refused.
    #[tokio::test]
    async fn a_phone_held_elsewhere_is_left_out() {
        for t in test_dbs().await {
            t.db.tamper(
                "INSERT INTO accounts (id, username, phone, phone_verified, email, email_verified, status, created_at, updated_at) \
                 VALUES ('p', 'p', '+375291112233', 1, 'maria@example.by', 1, 'active', 1, 1)",
            )
            .await;
            let mut p = person();
            p.phone.as_mut().unwrap().verified = true;
            let made = resolve(&t.db, &KEY, &p, None).await.unwrap();
            let acc = account::find_by_id(&t.db, made.account_id())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(acc.phone, None);
            assert_eq!(acc.email, None);
            assert_eq!(acc.given_name.as_deref(), Some("Мария"));
        }
    }
}
