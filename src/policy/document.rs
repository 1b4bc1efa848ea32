//! The IAM identity-policy document model and its reader.
//!
//! Grammar (IAM User Guide, "IAM JSON policy element reference" and "Grammar of the IAM JSON policy
//! language"), as far as an identity policy uses it:
//!
//! ```text
//! policy    = { "Version": "2012-10-17" | "2008-10-17", "Id": string?, "Statement": statement | [statement, ...] }
//! statement = { "Sid": string?, "Effect": "Allow" | "Deny",
//!               "Action": list | "NotAction": list,          (exactly one)
//!               "Resource": list | "NotResource": list,      (exactly one)
//!               "Condition": { operator: { key: value | [value, ...] }, ... }? }
//! list      = string | [string, ...]
//! ```
//!
//! Strictness, so that what we evaluate is what AWS would evaluate:
//! - element names are case-sensitive and unknown elements are errors; `Principal` and
//!   `NotPrincipal` belong to resource policies and are refused;
//! - a missing `Version` means 2008-10-17 (AWS's documented default); any other value is an error;
//! - an action is `*` or `service:pattern`; a resource is `*` or an ARN pattern (`arn:` and at
//!   least six colon-separated parts);
//! - Sids are unique within a policy (IAM requires it);
//! - condition values may be strings, numbers or booleans (numbers and booleans are used as their
//!   JSON text, as AWS does), alone or in a non-empty array;
//! - **policy variables** (`${aws:username}`, `${ec2:SourceInstanceARN}`, ...) are not supported:
//!   under Version 2012-10-17 a `${` in a `Resource`, `NotResource` or condition value is an error
//!   naming where it is. Under 2008-10-17 AWS itself does not substitute variables, so the text is
//!   taken literally there.
//!
//! Every error names the element by path (`Statement[2].Condition.StringLike."ec2:ResourceTag/Name"`).

use super::condition::{Condition, ConditionError};
use super::error::PolicyError;
use super::json::Json;

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2012-10-17`, the current version (policy variables exist).
    V2012_10_17,
    /// `2008-10-17`, the original version and the default when `Version` is missing.
    V2008_10_17,
}

impl Version {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2012_10_17 => "2012-10-17",
            Version::V2008_10_17 => "2008-10-17",
        }
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// `Action` or `NotAction` with its patterns as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource` with its patterns as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSpec {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: ActionSpec,
    pub resource: ResourceSpec,
    /// Every (operator, key) pair of the `Condition` element, in document order; all must hold.
    pub conditions: Vec<Condition>,
}

/// A whole policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// Read a document from its JSON tree.
pub(crate) fn from_json(root: &Json) -> Result<PolicyDocument, PolicyError> {
    let members = object(root, "the policy")?;
    check_members(members, "the policy", &["Version", "Id", "Statement"])?;
    let version = match member(members, "Version") {
        None => Version::V2008_10_17,
        Some(Json::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
        Some(Json::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
        Some(Json::String(v)) => return Err(PolicyError::Version { found: format!("\"{}\"", v.escape_debug()) }),
        Some(other) => return Err(PolicyError::Version { found: other.kind().to_owned() }),
    };
    let id = member(members, "Id").map(|v| string(v, "Id")).transpose()?;
    let statements_json: Vec<&Json> = match member(members, "Statement") {
        None => return Err(invalid("the policy", "has no Statement")),
        Some(Json::Array(items)) if items.is_empty() => return Err(invalid("Statement", "is an empty array")),
        Some(Json::Array(items)) => items.iter().collect(),
        Some(obj @ Json::Object(_)) => vec![obj],
        Some(other) => {
            return Err(invalid(
                "Statement",
                &format!("must be an object or an array of objects, found {}", other.kind()),
            ));
        }
    };
    let mut statements = Vec::with_capacity(statements_json.len());
    for (i, s) in statements_json.into_iter().enumerate() {
        let statement = statement(s, &format!("Statement[{i}]"), version)?;
        if let Some(sid) = &statement.sid
            && statements.iter().any(|prev: &Statement| prev.sid.as_ref() == Some(sid))
        {
            return Err(invalid(
                &format!("Statement[{i}].Sid"),
                &format!("\"{}\" is used by an earlier statement", sid.escape_debug()),
            ));
        }
        statements.push(statement);
    }
    Ok(PolicyDocument { version, id, statements })
}

fn statement(json: &Json, path: &str, version: Version) -> Result<Statement, PolicyError> {
    let members = object(json, path)?;
    for (name, _) in members {
        if name == "Principal" || name == "NotPrincipal" {
            return Err(invalid(
                &format!("{path}.{name}"),
                "belongs to resource-based policies; an identity policy must not name a principal",
            ));
        }
    }
    check_members(members, path, &["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"])?;
    let sid = member(members, "Sid").map(|v| string(v, &format!("{path}.Sid"))).transpose()?;
    let effect = match member(members, "Effect") {
        None => return Err(invalid(path, "has no Effect")),
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(Json::String(e)) => {
            return Err(invalid(
                &format!("{path}.Effect"),
                &format!("must be \"Allow\" or \"Deny\", found \"{}\"", e.escape_debug()),
            ));
        }
        Some(other) => {
            return Err(invalid(
                &format!("{path}.Effect"),
                &format!("must be \"Allow\" or \"Deny\", found {}", other.kind()),
            ));
        }
    };
    let action = match (member(members, "Action"), member(members, "NotAction")) {
        (Some(a), None) => ActionSpec::Action(actions(a, &format!("{path}.Action"))?),
        (None, Some(a)) => ActionSpec::NotAction(actions(a, &format!("{path}.NotAction"))?),
        (Some(_), Some(_)) => return Err(invalid(path, "has both Action and NotAction")),
        (None, None) => return Err(invalid(path, "has neither Action nor NotAction")),
    };
    let resource = match (member(members, "Resource"), member(members, "NotResource")) {
        (Some(r), None) => ResourceSpec::Resource(resources(r, &format!("{path}.Resource"), version)?),
        (None, Some(r)) => ResourceSpec::NotResource(resources(r, &format!("{path}.NotResource"), version)?),
        (Some(_), Some(_)) => return Err(invalid(path, "has both Resource and NotResource")),
        (None, None) => return Err(invalid(path, "has neither Resource nor NotResource")),
    };
    let conditions = match member(members, "Condition") {
        None => Vec::new(),
        Some(c) => conditions(c, &format!("{path}.Condition"), version)?,
    };
    Ok(Statement { sid, effect, action, resource, conditions })
}

fn actions(json: &Json, path: &str) -> Result<Vec<String>, PolicyError> {
    let list = string_list(json, path)?;
    for (i, a) in list.iter().enumerate() {
        check_action_pattern(a).map_err(|why| invalid(&item_path(path, json, i), &why))?;
    }
    Ok(list)
}

/// `*`, or `service:pattern` with a non-empty service made of letters, digits and `-`.
fn check_action_pattern(a: &str) -> Result<(), String> {
    if a == "*" {
        return Ok(());
    }
    match a.split_once(':') {
        Some((svc, name))
            if !svc.is_empty()
                && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !name.is_empty()
                && !name.contains(':') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "\"{}\" is not an action: expected \"*\" or service:ActionName (wildcards allowed in the name)",
            a.escape_debug()
        )),
    }
}

fn resources(json: &Json, path: &str, version: Version) -> Result<Vec<String>, PolicyError> {
    let list = string_list(json, path)?;
    for (i, r) in list.iter().enumerate() {
        let at = item_path(path, json, i);
        check_resource_pattern(r).map_err(|why| invalid(&at, &why))?;
        check_variables(r, &at, version)?;
    }
    Ok(list)
}

/// `*`, or an ARN pattern: `arn:` and at least six colon-separated parts.
fn check_resource_pattern(r: &str) -> Result<(), String> {
    if r == "*" || (r.starts_with("arn:") && r.matches(':').count() >= 5) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a resource: expected \"*\" or an ARN (arn:partition:service:region:account:resource)",
            r.escape_debug()
        ))
    }
}

fn conditions(json: &Json, path: &str, version: Version) -> Result<Vec<Condition>, PolicyError> {
    let blocks = object(json, path)?;
    let mut out = Vec::new();
    for (operator, block) in blocks {
        let block_path = format!("{path}.{operator}");
        super::condition::Operator::parse(operator)
            .map_err(|e| PolicyError::Operator { path: block_path.clone(), source: ConditionError::Operator(e) })?;
        let keys = object(block, &block_path)?;
        if keys.is_empty() {
            return Err(invalid(&block_path, "names no condition keys"));
        }
        for (key, values) in keys {
            let key_path = format!("{block_path}.\"{}\"", key.escape_debug());
            let values = condition_values(values, &key_path)?;
            for (i, v) in values.iter().enumerate() {
                let at = if values.len() > 1 { format!("{key_path}[{i}]") } else { key_path.clone() };
                check_variables(v, &at, version)?;
            }
            let condition = Condition::new(operator, key, values).map_err(|source| match source {
                ConditionError::Operator(_) => PolicyError::Operator { path: block_path.clone(), source },
                _ => PolicyError::Condition { path: key_path.clone(), source },
            })?;
            out.push(condition);
        }
    }
    Ok(out)
}

fn condition_values(json: &Json, path: &str) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Json, at: &str| match v {
        Json::String(s) => Ok(s.clone()),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Number(n) => Ok(n.to_string()),
        other => Err(invalid(at, &format!("must be a string, number or boolean, found {}", other.kind()))),
    };
    match json {
        Json::Array(items) if items.is_empty() => Err(invalid(path, "is an empty array")),
        Json::Array(items) => items.iter().enumerate().map(|(i, v)| scalar(v, &format!("{path}[{i}]"))).collect(),
        single => Ok(vec![scalar(single, path)?]),
    }
}

fn check_variables(value: &str, path: &str, version: Version) -> Result<(), PolicyError> {
    if version == Version::V2012_10_17 && value.contains("${") {
        return Err(PolicyError::Variable { path: path.to_owned(), value: value.to_owned() });
    }
    Ok(())
}

fn string_list(json: &Json, path: &str) -> Result<Vec<String>, PolicyError> {
    match json {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) if items.is_empty() => Err(invalid(path, "is an empty array")),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::String(s) => Ok(s.clone()),
                other => Err(invalid(&format!("{path}[{i}]"), &format!("must be a string, found {}", other.kind()))),
            })
            .collect(),
        other => Err(invalid(path, &format!("must be a string or an array of strings, found {}", other.kind()))),
    }
}

fn item_path(path: &str, json: &Json, i: usize) -> String {
    if matches!(json, Json::Array(_)) { format!("{path}[{i}]") } else { path.to_owned() }
}

fn object<'a>(json: &'a Json, path: &str) -> Result<&'a [(String, Json)], PolicyError> {
    match json {
        Json::Object(m) => Ok(m),
        other => Err(invalid(path, &format!("must be an object, found {}", other.kind()))),
    }
}

fn string(json: &Json, path: &str) -> Result<String, PolicyError> {
    match json {
        Json::String(s) => Ok(s.clone()),
        other => Err(invalid(path, &format!("must be a string, found {}", other.kind()))),
    }
}

fn member<'a>(members: &'a [(String, Json)], name: &str) -> Option<&'a Json> {
    members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn check_members(members: &[(String, Json)], path: &str, allowed: &[&str]) -> Result<(), PolicyError> {
    for (name, _) in members {
        if !allowed.contains(&name.as_str()) {
            let hint = allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(name))
                .map(|a| format!(" (element names are case-sensitive: did you mean \"{a}\"?)"))
                .unwrap_or_default();
            return Err(invalid(path, &format!("has an unknown element \"{}\"{hint}", name.escape_debug())));
        }
    }
    Ok(())
}

fn invalid(path: &str, message: &str) -> PolicyError {
    PolicyError::Invalid { path: path.to_owned(), message: message.to_owned() }
}

impl PolicyDocument {
    /// The document as JSON (Statement always as an array; lists of one as a plain string).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let list = |v: &[String]| match v {
            [one] => Value::String(one.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        let statements = self
            .statements
            .iter()
            .map(|s| {
                let mut m = Map::new();
                if let Some(sid) = &s.sid {
                    m.insert("Sid".into(), Value::String(sid.clone()));
                }
                m.insert("Effect".into(), Value::String(s.effect.as_str().into()));
                match &s.action {
                    ActionSpec::Action(a) => m.insert("Action".into(), list(a)),
                    ActionSpec::NotAction(a) => m.insert("NotAction".into(), list(a)),
                };
                match &s.resource {
                    ResourceSpec::Resource(r) => m.insert("Resource".into(), list(r)),
                    ResourceSpec::NotResource(r) => m.insert("NotResource".into(), list(r)),
                };
                if !s.conditions.is_empty() {
                    let mut blocks = Map::new();
                    for c in &s.conditions {
                        let block = blocks.entry(c.operator().to_string()).or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(keys) = block {
                            keys.insert(c.key().to_owned(), list(c.values()));
                        }
                    }
                    m.insert("Condition".into(), Value::Object(blocks));
                }
                Value::Object(m)
            })
            .collect();
        let mut root = Map::new();
        root.insert("Version".into(), Value::String(self.version.as_str().into()));
        if let Some(id) = &self.id {
            root.insert("Id".into(), Value::String(id.clone()));
        }
        root.insert("Statement".into(), Value::Array(statements));
        Value::Object(root)
    }
}
