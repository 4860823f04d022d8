//! The seeds' rules, as the embedded policies decide them.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::identity::account::Account;
use crate::identity::roles::SystemRole;

fn policies() -> Policies {
    Policies::embedded().unwrap_or_else(|e| panic!("{e}"))
}

fn account(roles: &[&str], password: bool) -> Account {
    Account {
        id: "a".into(),
        username: "ivan".into(),
        password_hash: password.then(|| "h".to_string()),
        phone: None,
        phone_verified: false,
        email: None,
        email_verified: false,
        given_name: None,
        family_name: None,
        middle_name: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        home_org: None,
        status: "active".into(),
        notify_sms: false,
        created_at: 0,
        version: 1,
    }
}

fn standing(roles: &[SystemRole]) -> Standing {
    Standing {
        account: account(&[], true),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        system_admin: false,
        places: BTreeMap::new(),
        personal_numbers: Vec::new(),
    }
}

fn facts(acr: Acr, legal_entity: bool) -> AuthFacts {
    AuthFacts {
        auth_time: 0,
        acr,
        amr: vec![],
        legal_entity: legal_entity.then(|| crate::authn::LegalEntity {
            unp: "100000001".into(),
            name: None,
        }),
    }
}

fn client(allowed: &[SystemRole], min_acr: Option<Acr>) -> Client {
    let mut c = Client::profile();
    c.allowed_roles = allowed.iter().copied().collect();
    c.min_acr = min_acr;
    c
}

#[test]
fn an_employee_needs_a_certificate_session() {
    let p = policies();
    let applicant = standing(&[SystemRole::Applicant]);
    let employee = standing(&[SystemRole::Applicant, SystemRole::Employee]);
    let any = client(&[], None);
    assert_eq!(required_acr(&p, Some(&applicant), &any, &[]), Acr::Low);
    assert_eq!(required_acr(&p, Some(&employee), &any, &[]), Acr::High);
    assert_eq!(required_acr(&p, None, &any, &[]), Acr::Low);
    assert_eq!(
        required_acr(&p, None, &client(&[], Some(Acr::Substantial)), &[]),
        Acr::Substantial
    );
    assert_eq!(
        required_acr(&p, None, &any, &[Acr::High, Acr::Substantial]),
        Acr::Substantial,
        "any of the values asked for will do"
    );
    assert_eq!(
        may_sign_in(
            &p,
            &employee,
            &any,
            &facts(Acr::Low, false),
            &[],
            "password"
        ),
        Err(Denied::AcrTooLow("high"))
    );
    assert_eq!(
        may_sign_in(
            &p,
            &employee,
            &any,
            &facts(Acr::High, false),
            &[],
            "certificate"
        ),
        Ok(())
    );
    let mut blocked = applicant.clone();
    blocked.account.status = "blocked".into();
    assert_eq!(
        may_sign_in(
            &p,
            &blocked,
            &any,
            &facts(Acr::High, false),
            &[],
            "certificate"
        ),
        Err(Denied::Inactive)
    );
}

#[test]
fn a_client_takes_only_the_roles_it_was_registered_for() {
    let p = policies();
    let staff_console = client(&[SystemRole::Employee], None);
    let portal = client(&[SystemRole::Applicant], None);
    let applicant = standing(&[SystemRole::Applicant]);
    let employee = standing(&[SystemRole::Employee]);
    let high = facts(Acr::High, false);
    assert_eq!(
        may_sign_in(&p, &applicant, &staff_console, &high, &[], "certificate"),
        Err(Denied::RoleNotAllowed {
            policy: "client-allowed-roles".into()
        })
    );
    assert_eq!(
        may_sign_in(
            &p,
            &applicant,
            &staff_console,
            &facts(Acr::Low, false),
            &[],
            "password"
        ),
        Err(Denied::RoleNotAllowed {
            policy: "client-allowed-roles".into()
        }),
        "no step-up where a stronger sign-in would not help"
    );
    assert_eq!(
        may_sign_in(&p, &employee, &staff_console, &high, &[], "certificate"),
        Ok(())
    );
    assert!(may_sign_in(&p, &employee, &portal, &high, &[], "certificate").is_err());
    let mut disabled = portal.clone();
    disabled.disabled = true;
    assert!(matches!(
        may_sign_in(&p, &applicant, &disabled, &high, &[], "certificate"),
        Err(Denied::ClientDisabled { .. })
    ));
}

#[test]
fn a_representative_signs_in_only_by_certificate() {
    let p = policies();
    let applicant = standing(&[SystemRole::Applicant]);
    let any = client(&[], None);
    assert_eq!(
        may_sign_in(
            &p,
            &applicant,
            &any,
            &facts(Acr::High, true),
            &[],
            "upstream"
        ),
        Err(Denied::MethodNotAllowed {
            policy: "representatives-sign-in-by-certificate".into()
        })
    );
    assert_eq!(
        may_sign_in(
            &p,
            &applicant,
            &any,
            &facts(Acr::High, true),
            &[],
            "certificate"
        ),
        Ok(())
    );
}

#[test]
fn only_a_password_enough_to_sign_in_reproves_presence() {
    let p = policies();
    let applicant = standing(&[SystemRole::Applicant]);
    assert!(password_reproves_presence(&p, &applicant));
    let mut no_password = applicant.clone();
    no_password.account.password_hash = None;
    assert!(!password_reproves_presence(&p, &no_password));
    let employee = standing(&[SystemRole::Applicant, SystemRole::Employee]);
    assert!(
        !password_reproves_presence(&p, &employee),
        "an employee signs in again with a certificate"
    );
    assert_eq!(account_acr(&p, &employee), Acr::High);
}

#[test]
fn presence_is_recent_within_the_max_age() {
    assert!(recently_proven(1000, None, 1300, 300));
    assert!(!recently_proven(1000, None, 1301, 300));
    assert!(recently_proven(1000, Some(1200), 1500, 300), "re-entered");
    assert!(!recently_proven(1000, Some(1100), 1500, 300));
    assert!(
        recently_proven(1400, Some(900), 1500, 300),
        "the later counts"
    );
}
