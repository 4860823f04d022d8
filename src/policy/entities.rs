//! The entities a decision is asked over, in Cedar's JSON form, built from vhod's own types:
//! an account from its standing, a client from its registration, organisations with their
//! parents (so `in` follows the tree). The schema is `policies/schema.cedarschema`.

use serde_json::{Value, json};

use super::engine::{Ask, uid};
use super::{Attempt, level};
use crate::identity::client::{AdminScope, Client};
use crate::identity::standing::Standing;
use crate::store::organisations::Organisation;

fn entity_ref(kind: &str, id: &str) -> Value {
    json!({ "__entity": uid(kind, id) })
}

fn org_refs<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<Value> {
    ids.map(|id| entity_ref("Organisation", id)).collect()
}

/// The account's entity. Its parent is its home organisation.
pub fn account(s: &Standing) -> Value {
    json!({
        "uid": uid("Account", &s.account.id),
        "attrs": {
            "active": s.account.is_active(),
            "roles": s.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "system_admin": s.system_admin,
            "admin_of": org_refs(s.admin_of()),
            "member_of": org_refs(s.member_of()),
            "has_personal_number": !s.personal_numbers.is_empty(),
        },
        "parents": s.account.home_org.iter().map(|o| uid("Organisation", o)).collect::<Vec<_>>(),
    })
}

/// Someone not known yet (before a sign-in says who): no roles, no rights.
pub const ANONYMOUS: &str = "";

fn anonymous() -> Value {
    json!({
        "uid": uid("Account", ANONYMOUS),
        "attrs": {
            "active": true,
            "roles": [],
            "system_admin": false,
            "admin_of": [],
            "member_of": [],
            "has_personal_number": false,
        },
        "parents": [],
    })
}

pub fn client(c: &Client) -> Value {
    json!({
        "uid": uid("Client", c.id.as_str()),
        "attrs": {
            "allowed_roles": c.allowed_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "min_acr": c.min_acr.map_or(0, level),
            "disabled": c.disabled,
            "system_admin": c.admin_scope == Some(AdminScope::System),
            "admin_of": match &c.admin_scope {
                Some(AdminScope::Org(o)) => vec![entity_ref("Organisation", o)],
                _ => vec![],
            },
        },
        "parents": [],
    })
}

/// An organisation; `parent` is the one above it (None at the top).
pub fn organisation(o: &Organisation) -> Value {
    json!({
        "uid": uid("Organisation", &o.id),
        "attrs": { "kind": o.kind, "active": o.active },
        "parents": o.parent_id.iter().map(|p| uid("Organisation", p)).collect::<Vec<_>>(),
    })
}

/// The organisations of the account's places (each knows its parent).
pub fn places(s: &Standing) -> impl Iterator<Item = Value> + '_ {
    s.places.values().map(|p| organisation(&p.org))
}

/// The `sign_in` question for an account (None: not known yet) and a client.
pub fn sign_in(standing: Option<&Standing>, client: &Client, attempt: Attempt<'_>) -> Ask {
    let mut entities = vec![self::client(client)];
    let principal = match standing {
        Some(s) => {
            entities.push(account(s));
            entities.extend(places(s));
            s.account.id.clone()
        }
        None => {
            entities.push(anonymous());
            ANONYMOUS.to_string()
        }
    };
    Ask {
        principal: ("Account", principal),
        action: "sign_in",
        resource: ("Client", client.id.as_str().to_string()),
        context: json!({
            "acr": level(attempt.acr),
            "requested_acr": attempt.requested.map_or(0, level),
            "method": attempt.method,
            "legal_entity": attempt.legal_entity,
        }),
        entities,
    }
}
