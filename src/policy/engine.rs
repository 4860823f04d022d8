//! The Cedar policies of `policies/`: loaded and validated against the schema at start (an
//! invalid file stops the start with its file, line and message), then asked for every
//! decision. A decision names the policies that made it; a deny's `@reason` annotation is the
//! audited reason code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet, Request,
    Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use serde_json::Value;

pub const SCHEMA_FILE: &str = "schema.cedarschema";

/// The policies shipped in the binary, used when the policies folder holds none.
pub const EMBEDDED: [(&str, &str); 4] = [
    (
        SCHEMA_FILE,
        include_str!("../../policies/schema.cedarschema"),
    ),
    ("admin.cedar", include_str!("../../policies/admin.cedar")),
    ("audit.cedar", include_str!("../../policies/audit.cedar")),
    (
        "sign_in.cedar",
        include_str!("../../policies/sign_in.cedar"),
    ),
];

/// One problem in a policy file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Everything wrong with a policies folder.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Invalid(pub Vec<Problem>);

/// Line and column (1-based) of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The diagnostic as a problem at its first labelled place in `text` (the file it came from).
fn problem(file: &str, text: Option<&str>, d: &dyn Diagnostic, message: String) -> Problem {
    let at = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .zip(text);
    let (line, column) = at.map_or((0, 0), |(offset, text)| line_col(text, offset));
    let mut message = message;
    if let Some(help) = d.help() {
        message.push_str(&format!(" ({help})"));
    }
    Problem {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// What a decision came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The policies that decided it: the permits of an allow, the forbids of a deny (none for
    /// a deny no permit answered: see [`Verdict::policy`]).
    pub policies: Vec<String>,
    /// The `@reason` annotations of the deciding policies (of a deny).
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate (a missing attribute, say): they count as not applying.
    pub errors: Vec<String>,
}

impl Verdict {
    /// The policy to name for this verdict: the first deciding one, or `default-deny`.
    pub fn policy(&self) -> &str {
        self.policies
            .first()
            .map(String::as_str)
            .unwrap_or("default-deny")
    }

    /// The deny's reason code: the first `@reason` of the deciding policies, else
    /// `policy_denied`.
    pub fn reason(&self) -> &str {
        self.reasons
            .first()
            .map(String::as_str)
            .unwrap_or("policy_denied")
    }

    /// Denied for this reason and no other?
    pub fn denied_only_for(&self, reason: &str) -> bool {
        !self.allowed && !self.reasons.is_empty() && self.reasons.iter().all(|r| r == reason)
    }
}

/// A question: may `principal` do `action` on `resource`, given these entities and context.
#[derive(Debug, Clone)]
pub struct Ask {
    /// `Vhod::Account::"<sub>"` and the like: (type without the namespace, id).
    pub principal: (&'static str, String),
    pub action: &'static str,
    pub resource: (&'static str, String),
    pub context: Value,
    /// Entities in Cedar's JSON form.
    pub entities: Vec<Value>,
}

/// An entity uid in Cedar's JSON form.
pub fn uid(kind: &str, id: &str) -> Value {
    serde_json::json!({"type": format!("Vhod::{kind}"), "id": id})
}

/// A loaded and validated set of policies with their schema.
#[derive(Debug)]
pub struct Policies {
    set: PolicySet,
    schema: Schema,
    /// Which file each policy came from.
    origin: BTreeMap<String, String>,
    /// Where they were read from (None: embedded).
    pub dir: Option<PathBuf>,
}

impl Policies {
    /// The policies embedded in the binary (checked by a test to be valid).
    pub fn embedded() -> Result<Policies, Invalid> {
        let files = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Policies::from_files(files, None)
    }

    /// The folder's schema and `*.cedar` files; the embedded ones when it holds neither.
    pub fn load(dir: &Path) -> anyhow::Result<Policies> {
        let mut files = Vec::new();
        let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "cedar")
                        || p.file_name().is_some_and(|n| n == SCHEMA_FILE)
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", dir.display())),
        };
        if names.is_empty() {
            return Ok(Policies::embedded()?);
        }
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
            files.push((p.display().to_string(), text));
        }
        Ok(Policies::from_files(files, Some(dir.to_path_buf()))?)
    }

    /// Parses and validates: the schema (the file named [`SCHEMA_FILE`]) and every other file
    /// as policies. Every policy needs a unique `@id`: audits and explanations name it.
    pub fn from_files(
        files: Vec<(String, String)>,
        dir: Option<PathBuf>,
    ) -> Result<Policies, Invalid> {
        let mut problems = Vec::new();
        let (schema_files, policy_files): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(name, _)| name.ends_with(SCHEMA_FILE));
        let schema = match schema_files.as_slice() {
            [(name, text)] => match Schema::from_cedarschema_str(text) {
                Ok((schema, _warnings)) => Some(schema),
                Err(e) => {
                    problems.push(problem(name, Some(text), &e, e.to_string()));
                    None
                }
            },
            [] => {
                problems.push(Problem {
                    file: SCHEMA_FILE.into(),
                    line: 0,
                    column: 0,
                    message: "the policies folder has no schema".into(),
                });
                None
            }
            more => {
                problems.push(Problem {
                    file: more[1].0.clone(),
                    line: 0,
                    column: 0,
                    message: "a second schema".into(),
                });
                None
            }
        };
        let mut set = PolicySet::new();
        let mut origin = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for (name, text) in &policy_files {
            let parsed = match PolicySet::from_str(text) {
                Ok(p) => p,
                Err(errs) => {
                    for e in errs.iter() {
                        problems.push(problem(name, Some(text), e, e.to_string()));
                    }
                    continue;
                }
            };
            texts.insert(name.clone(), text.clone());
            for p in parsed.policies() {
                // The policy keeps its source text: where that text stands is where it is.
                let at = text
                    .find(&p.to_string())
                    .map(|offset| line_col(text, offset))
                    .unwrap_or((0, 0));
                let Some(id) = p.annotation("id").map(str::to_string) else {
                    problems.push(Problem {
                        file: name.clone(),
                        line: at.0,
                        column: at.1,
                        message: "a policy without @id(\"…\"): every policy needs one".into(),
                    });
                    continue;
                };
                if let Some(first) = origin.get(&id) {
                    problems.push(Problem {
                        file: name.clone(),
                        line: at.0,
                        column: at.1,
                        message: format!("@id({id:?}) is used twice (also in {first})"),
                    });
                    continue;
                }
                let renamed: Policy = p.new_id(PolicyId::new(&id));
                if let Err(e) = set.add(renamed) {
                    problems.push(Problem {
                        file: name.clone(),
                        line: at.0,
                        column: at.1,
                        message: e.to_string(),
                    });
                    continue;
                }
                origin.insert(id, name.clone());
            }
            if parsed.templates().next().is_some() {
                problems.push(Problem {
                    file: name.clone(),
                    line: 0,
                    column: 0,
                    message: "templates are not used by vhod".into(),
                });
            }
        }
        if let Some(schema) = &schema {
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for e in result.validation_errors() {
                let file = origin
                    .get(e.policy_id().to_string().as_str())
                    .cloned()
                    .unwrap_or_default();
                problems.push(problem(
                    &file,
                    texts.get(&file).map(String::as_str),
                    e,
                    e.to_string(),
                ));
            }
        }
        match schema {
            Some(schema) if problems.is_empty() => Ok(Policies {
                set,
                schema,
                origin,
                dir,
            }),
            _ => Err(Invalid(problems)),
        }
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.origin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.origin.is_empty()
    }

    /// The file a policy came from.
    pub fn origin(&self, id: &str) -> Option<&str> {
        self.origin.get(id).map(String::as_str)
    }

    /// Decides the question. A question that does not fit the schema (vhod's own bug, or a
    /// schema edited without the code) is denied, loudly.
    pub fn decide(&self, ask: &Ask) -> Verdict {
        match self.try_decide(ask) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(action = ask.action, error = %e, "a policy question did not fit the schema");
                Verdict {
                    allowed: false,
                    policies: Vec::new(),
                    reasons: Vec::new(),
                    errors: vec![e],
                }
            }
        }
    }

    fn try_decide(&self, ask: &Ask) -> Result<Verdict, String> {
        let entity = |(kind, id): &(&str, String)| {
            EntityUid::from_json(uid(kind, id)).map_err(|e| e.to_string())
        };
        let action = EntityUid::from_json(serde_json::json!({
            "type": "Vhod::Action", "id": ask.action
        }))
        .map_err(|e| e.to_string())?;
        let context = Context::from_json_value(ask.context.clone(), Some((&self.schema, &action)))
            .map_err(|e| e.to_string())?;
        let request = Request::new(
            entity(&ask.principal)?,
            action,
            entity(&ask.resource)?,
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let entities =
            Entities::from_json_value(Value::Array(ask.entities.clone()), Some(&self.schema))
                .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.set, &entities);
        let allowed = response.decision() == Decision::Allow;
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect();
        policies.sort();
        let reasons = policies
            .iter()
            .filter_map(|p| self.set.annotation(&PolicyId::new(p), "reason"))
            .map(str::to_string)
            .collect();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        Ok(Verdict {
            allowed,
            policies,
            reasons,
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_policies_are_valid() {
        let p = Policies::embedded().unwrap_or_else(|e| panic!("{e}"));
        assert!(p.len() >= 10, "{}", p.len());
        assert_eq!(p.origin("main-administrator"), Some("admin.cedar"));
    }

    fn with(file: &str, text: &str) -> Result<Policies, Invalid> {
        let mut files: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        files.push((file.to_string(), text.to_string()));
        Policies::from_files(files, None)
    }

    #[test]
    fn a_bad_policy_is_reported_with_its_file_and_line() {
        let e = with("extra.cedar", "// one\n\n@id(\"x\")\npermit (principal, action, resource) when { principal.nosuch };\n")
            .unwrap_err();
        let p = &e.0[0];
        assert_eq!((p.file.as_str(), p.line), ("extra.cedar", 4), "{e}");
        assert!(p.message.contains("nosuch"), "{e}");

        let e = with(
            "syntax.cedar",
            "@id(\"y\")\npermit (principal, action resource);\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.0[0].file.as_str(), e.0[0].line),
            ("syntax.cedar", 2),
            "{e}"
        );

        let e = with("noid.cedar", "\npermit (principal, action, resource);\n").unwrap_err();
        assert!(e.0[0].message.contains("@id"), "{e}");
        assert_eq!(e.0[0].line, 2);

        let e = with(
            "dup.cedar",
            "@id(\"main-administrator\")\npermit (principal, action, resource);\n",
        )
        .unwrap_err();
        assert!(e.0[0].message.contains("twice"), "{e}");

        let bad_schema = vec![(
            SCHEMA_FILE.to_string(),
            "namespace Vhod {\n entity A = { x: Nope };\n}\n".to_string(),
        )];
        let e = Policies::from_files(bad_schema, None).unwrap_err();
        assert_eq!(e.0[0].file, SCHEMA_FILE, "{e}");
        assert_eq!(e.0[0].line, 2, "{e}");
    }
}
