//! Condition operators and their evaluation against a request context.
//!
//! Sources: the IAM User Guide pages "IAM JSON policy elements: Condition operators", "Conditions
//! with multiple context keys or values" and "Single-valued vs. multivalued context keys".
//!
//! What is implemented, and why:
//!
//! - **Blocks.** A `Condition` element holds operator blocks; each block holds keys; each key has
//!   one or more policy values. Blocks AND, keys within a block AND, values of one key OR (for a
//!   negated operator the values NOR: `StringNotEquals {k: [a, b]}` holds when the request value
//!   is neither `a` nor `b`).
//! - **Absent key, plain operator.** "If the key that you specify in a policy condition is not
//!   present in the request context, the values do not match and the condition is false. If the
//!   policy condition requires that the key is not matched, such as `StringNotLike` or
//!   `ArnNotLike`, and the right key is not present, the condition is true." So an absent key makes
//!   every positive operator false and every negated one (`StringNotEquals`,
//!   `StringNotEqualsIgnoreCase`, `StringNotLike`, `ArnNotEquals`, `ArnNotLike`,
//!   `NumericNotEquals`, `DateNotEquals`, `NotIpAddress`) true.
//! - **`...IfExists`.** An absent key makes the condition true; a present key is tested as
//!   without the suffix.
//! - **`Null`.** `"true"` holds when the key is absent, `"false"` when it is present. It takes no
//!   set prefix and no `IfExists` suffix (an error at parse time).
//! - **`ForAllValues:`** holds when every request value satisfies the operator, and also when the
//!   key is absent or empty ("It also returns true if there are no context keys in the request").
//!   **`ForAnyValue:`** holds when at least one request value satisfies it; absent → false.
//!   "Satisfies" for a negated operator means "matches none of the policy values".
//! - **Several request values without a set prefix** (a single-valued operator meeting a
//!   multivalued key, which AWS advises against): every request value must satisfy the operator,
//!   like `ForAllValues` but with the absent-key rule above. This is the reading under which a
//!   resource tagged both `ec2=test1` and `EC2=test2` fails `"aws:ResourceTag/EC2": "test1"`, as
//!   the Condition page describes; with one value it is the ordinary single-valued test.
//! - **Typed operators.** A policy value that does not parse for its operator (a `Numeric*` value
//!   that is not a number, a bad date or CIDR, a `Bool`/`Null` value other than true/false) is a
//!   parse error. A request value that does not parse never matches (so the negated operator holds).
//! - **`ArnEquals` and `ArnLike`** behave the same, as the reference says: case-sensitive, each of
//!   the six colon-separated parts matched separately, wildcards allowed in each part.
//! - **Operator names** are matched exactly (case-sensitive); an unknown name is an error, never
//!   a silently false condition. `BinaryEquals` exists in AWS but is not supported here: an error.

use std::fmt;

use super::cidr::Cidr;
use super::context::Context;
use super::matcher::{arn_like, wildcard_match};
use super::scalar::{Number, parse_bool, parse_date};

/// The operator family and test, without set prefix or `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Bool,
    Null,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    IpAddress,
    NotIpAddress,
}

impl OperatorKind {
    /// Every supported operator, in the order of the IAM reference.
    pub const ALL: [OperatorKind; 26] = [
        OperatorKind::StringEquals,
        OperatorKind::StringNotEquals,
        OperatorKind::StringEqualsIgnoreCase,
        OperatorKind::StringNotEqualsIgnoreCase,
        OperatorKind::StringLike,
        OperatorKind::StringNotLike,
        OperatorKind::ArnEquals,
        OperatorKind::ArnNotEquals,
        OperatorKind::ArnLike,
        OperatorKind::ArnNotLike,
        OperatorKind::Bool,
        OperatorKind::Null,
        OperatorKind::NumericEquals,
        OperatorKind::NumericNotEquals,
        OperatorKind::NumericLessThan,
        OperatorKind::NumericLessThanEquals,
        OperatorKind::NumericGreaterThan,
        OperatorKind::NumericGreaterThanEquals,
        OperatorKind::DateEquals,
        OperatorKind::DateNotEquals,
        OperatorKind::DateLessThan,
        OperatorKind::DateLessThanEquals,
        OperatorKind::DateGreaterThan,
        OperatorKind::DateGreaterThanEquals,
        OperatorKind::IpAddress,
        OperatorKind::NotIpAddress,
    ];

    /// The name as written in a policy.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OperatorKind::StringEquals => "StringEquals",
            OperatorKind::StringNotEquals => "StringNotEquals",
            OperatorKind::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            OperatorKind::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            OperatorKind::StringLike => "StringLike",
            OperatorKind::StringNotLike => "StringNotLike",
            OperatorKind::ArnEquals => "ArnEquals",
            OperatorKind::ArnNotEquals => "ArnNotEquals",
            OperatorKind::ArnLike => "ArnLike",
            OperatorKind::ArnNotLike => "ArnNotLike",
            OperatorKind::Bool => "Bool",
            OperatorKind::Null => "Null",
            OperatorKind::NumericEquals => "NumericEquals",
            OperatorKind::NumericNotEquals => "NumericNotEquals",
            OperatorKind::NumericLessThan => "NumericLessThan",
            OperatorKind::NumericLessThanEquals => "NumericLessThanEquals",
            OperatorKind::NumericGreaterThan => "NumericGreaterThan",
            OperatorKind::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            OperatorKind::DateEquals => "DateEquals",
            OperatorKind::DateNotEquals => "DateNotEquals",
            OperatorKind::DateLessThan => "DateLessThan",
            OperatorKind::DateLessThanEquals => "DateLessThanEquals",
            OperatorKind::DateGreaterThan => "DateGreaterThan",
            OperatorKind::DateGreaterThanEquals => "DateGreaterThanEquals",
            OperatorKind::IpAddress => "IpAddress",
            OperatorKind::NotIpAddress => "NotIpAddress",
        }
    }

    /// The operator of that exact name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        OperatorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A negated operator holds when the positive test fails, including on an absent key.
    #[must_use]
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            OperatorKind::StringNotEquals
                | OperatorKind::StringNotEqualsIgnoreCase
                | OperatorKind::StringNotLike
                | OperatorKind::ArnNotEquals
                | OperatorKind::ArnNotLike
                | OperatorKind::NumericNotEquals
                | OperatorKind::DateNotEquals
                | OperatorKind::NotIpAddress
        )
    }
}

/// `ForAllValues:` or `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetOperator {
    ForAllValues,
    ForAnyValue,
}

/// A full operator: optional set prefix, the test, optional `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    pub set: Option<SetOperator>,
    pub kind: OperatorKind,
    pub if_exists: bool,
}

/// Why an operator name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("unknown condition operator \"{0}\"")]
    Unknown(String),
    #[error("condition operator \"{0}\" is not supported by this evaluator")]
    Unsupported(String),
    #[error(
        "condition operator \"{0}\": Null takes neither a ForAllValues:/ForAnyValue: prefix nor an IfExists suffix"
    )]
    NullModifier(String),
}

impl Operator {
    /// Parse `ForAnyValue:StringLikeIfExists` and the like.
    pub fn parse(text: &str) -> Result<Operator, OperatorError> {
        let (set, rest) = if let Some(r) = text.strip_prefix("ForAllValues:") {
            (Some(SetOperator::ForAllValues), r)
        } else if let Some(r) = text.strip_prefix("ForAnyValue:") {
            (Some(SetOperator::ForAnyValue), r)
        } else {
            (None, text)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let Some(kind) = OperatorKind::from_name(base) else {
            if base.starts_with("Binary") {
                return Err(OperatorError::Unsupported(text.to_owned()));
            }
            return Err(OperatorError::Unknown(text.to_owned()));
        };
        if kind == OperatorKind::Null && (set.is_some() || if_exists) {
            return Err(OperatorError::NullModifier(text.to_owned()));
        }
        Ok(Operator { set, kind, if_exists })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetOperator::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetOperator::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// A policy value parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(String),
    Number(Number),
    Date(jiff::Timestamp),
    Bool(bool),
    Cidr(Cidr),
}

/// One test: an operator applied to one condition key with its policy values.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    operator: Operator,
    key: String,
    values: Vec<String>,
    operands: Vec<Operand>,
}

/// Why a condition could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("a condition key must not be empty")]
    EmptyKey,
    #[error("{operator} on {key} needs at least one value")]
    NoValues { operator: String, key: String },
    #[error("{operator} on {key}: \"{value}\" is not {expected}")]
    BadValue { operator: String, key: String, value: String, expected: &'static str },
}

impl Condition {
    /// Build and validate a condition. `values` are the policy values as strings (JSON booleans and
    /// numbers already turned into their text).
    pub fn new(operator: &str, key: &str, values: Vec<String>) -> Result<Condition, ConditionError> {
        let op = Operator::parse(operator)?;
        if key.is_empty() {
            return Err(ConditionError::EmptyKey);
        }
        if values.is_empty() {
            return Err(ConditionError::NoValues { operator: operator.to_owned(), key: key.to_owned() });
        }
        let bad = |value: &str, expected: &'static str| ConditionError::BadValue {
            operator: operator.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        };
        let mut operands = Vec::with_capacity(values.len());
        for v in &values {
            let operand = match op.kind {
                OperatorKind::Bool | OperatorKind::Null => {
                    Operand::Bool(parse_bool(v).ok_or_else(|| bad(v, "true or false"))?)
                }
                OperatorKind::NumericEquals
                | OperatorKind::NumericNotEquals
                | OperatorKind::NumericLessThan
                | OperatorKind::NumericLessThanEquals
                | OperatorKind::NumericGreaterThan
                | OperatorKind::NumericGreaterThanEquals => {
                    Operand::Number(Number::parse(v).ok_or_else(|| bad(v, "a decimal number"))?)
                }
                OperatorKind::DateEquals
                | OperatorKind::DateNotEquals
                | OperatorKind::DateLessThan
                | OperatorKind::DateLessThanEquals
                | OperatorKind::DateGreaterThan
                | OperatorKind::DateGreaterThanEquals => {
                    Operand::Date(parse_date(v).ok_or_else(|| bad(v, "an ISO 8601 date/time or epoch seconds"))?)
                }
                OperatorKind::IpAddress | OperatorKind::NotIpAddress => {
                    Operand::Cidr(Cidr::parse(v).map_err(|_| bad(v, "an IPv4 or IPv6 address or CIDR block"))?)
                }
                OperatorKind::ArnEquals
                | OperatorKind::ArnNotEquals
                | OperatorKind::ArnLike
                | OperatorKind::ArnNotLike => {
                    if super::matcher::arn_parts(v).is_none() {
                        return Err(bad(v, "an ARN (arn:partition:service:region:account:resource)"));
                    }
                    Operand::Text(v.clone())
                }
                _ => Operand::Text(v.clone()),
            };
            operands.push(operand);
        }
        Ok(Condition { operator: op, key: key.to_owned(), values, operands })
    }

    #[must_use]
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The condition key as written in the policy.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The policy values as written.
    #[must_use]
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Does the request context satisfy this condition?
    #[must_use]
    pub fn holds(&self, context: &Context) -> bool {
        let op = self.operator;
        let present = context.get(&self.key);
        if op.kind == OperatorKind::Null {
            // Each policy value `true` asks "is it absent?", `false` "is it present?"; values OR.
            return self
                .operands
                .iter()
                .any(|o| matches!(o, Operand::Bool(want_absent) if *want_absent == present.is_none()));
        }
        let Some(request_values) = present else {
            if op.if_exists {
                return true;
            }
            return match op.set {
                Some(SetOperator::ForAllValues) => true,
                Some(SetOperator::ForAnyValue) => false,
                None => op.kind.is_negated(),
            };
        };
        let satisfies = |v: &String| {
            let any = self.operands.iter().any(|o| positive_match(op.kind, o, v));
            any != op.kind.is_negated()
        };
        match op.set {
            Some(SetOperator::ForAnyValue) => request_values.iter().any(satisfies),
            Some(SetOperator::ForAllValues) | None => request_values.iter().all(satisfies),
        }
    }

    /// The failure report for a context in which [`Condition::holds`] is false.
    #[must_use]
    pub fn failure(&self, context: &Context) -> ConditionFailure {
        ConditionFailure {
            operator: self.operator.to_string(),
            key: self.key.clone(),
            policy_values: self.values.clone(),
            request_values: context.get(&self.key).map(<[String]>::to_vec),
        }
    }
}

/// The positive form of the test (`StringNotLike` tests `StringLike`) of one request value against
/// one policy value.
fn positive_match(kind: OperatorKind, operand: &Operand, value: &str) -> bool {
    use OperatorKind as K;
    match (kind, operand) {
        (K::StringEquals | K::StringNotEquals, Operand::Text(p)) => p == value,
        (K::StringEqualsIgnoreCase | K::StringNotEqualsIgnoreCase, Operand::Text(p)) => {
            p.to_lowercase() == value.to_lowercase()
        }
        (K::StringLike | K::StringNotLike, Operand::Text(p)) => wildcard_match(p, value),
        (K::ArnEquals | K::ArnNotEquals | K::ArnLike | K::ArnNotLike, Operand::Text(p)) => arn_like(p, value),
        (K::Bool, Operand::Bool(b)) => parse_bool(value) == Some(*b),
        (_, Operand::Number(p)) => Number::parse(value).and_then(|v| v.compare(*p)).is_some_and(|ord| {
            use std::cmp::Ordering::{Equal, Greater, Less};
            match kind {
                K::NumericEquals | K::NumericNotEquals => ord == Equal,
                K::NumericLessThan => ord == Less,
                K::NumericLessThanEquals => ord != Greater,
                K::NumericGreaterThan => ord == Greater,
                K::NumericGreaterThanEquals => ord != Less,
                _ => false,
            }
        }),
        (_, Operand::Date(p)) => parse_date(value).is_some_and(|v| match kind {
            K::DateEquals | K::DateNotEquals => v == *p,
            K::DateLessThan => v < *p,
            K::DateLessThanEquals => v <= *p,
            K::DateGreaterThan => v > *p,
            K::DateGreaterThanEquals => v >= *p,
            _ => false,
        }),
        (K::IpAddress | K::NotIpAddress, Operand::Cidr(c)) => c.contains_text(value),
        _ => false,
    }
}

/// Which condition failed, on which key, with which values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionFailure {
    /// The operator as written (`StringLike`, `ForAllValues:StringEquals`, ...).
    pub operator: String,
    /// The condition key as written in the policy.
    pub key: String,
    /// The values the policy names.
    pub policy_values: Vec<String>,
    /// The request's values for the key, `None` when the key is absent.
    pub request_values: Option<Vec<String>>,
}

impl fmt::Display for ConditionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.operator, self.key)?;
        write_list(f, &self.policy_values)?;
        match &self.request_values {
            None => write!(f, " is false: the request has no {}", self.key),
            Some(v) => {
                f.write_str(" is false for the request value ")?;
                write_list(f, v)
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, values: &[String]) -> fmt::Result {
    match values {
        [one] => write!(f, "\"{}\"", one.escape_debug()),
        many => {
            f.write_str("[")?;
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "\"{}\"", v.escape_debug())?;
            }
            f.write_str("]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        Condition::new(op, key, values.iter().map(|s| (*s).to_owned()).collect()).expect("valid condition")
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.insert(*k, *v);
        }
        c
    }

    #[test]
    fn operator_names_round_trip() {
        for kind in OperatorKind::ALL {
            assert_eq!(OperatorKind::from_name(kind.name()), Some(kind));
        }
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").expect("operator");
        assert_eq!(op.to_string(), "ForAnyValue:StringNotLikeIfExists");
        assert_eq!(Operator::parse("StringEqual"), Err(OperatorError::Unknown("StringEqual".into())));
        assert_eq!(Operator::parse("stringequals"), Err(OperatorError::Unknown("stringequals".into())));
        assert!(matches!(Operator::parse("BinaryEquals"), Err(OperatorError::Unsupported(_))));
        assert!(matches!(Operator::parse("NullIfExists"), Err(OperatorError::NullModifier(_))));
        assert!(matches!(Operator::parse("ForAllValues:Null"), Err(OperatorError::NullModifier(_))));
    }

    #[test]
    fn negated_operators_on_absent_keys_hold() {
        let empty = Context::new();
        for kind in OperatorKind::ALL {
            let value = match kind {
                OperatorKind::Bool | OperatorKind::Null => "true",
                k if k.name().starts_with("Numeric") => "1",
                k if k.name().starts_with("Date") => "2026-01-01",
                OperatorKind::IpAddress | OperatorKind::NotIpAddress => "10.0.0.0/8",
                k if k.name().starts_with("Arn") => "arn:aws:s3:::b",
                _ => "x",
            };
            let c = cond(kind.name(), "k", &[value]);
            let expect = kind.is_negated() || kind == OperatorKind::Null;
            assert_eq!(c.holds(&empty), expect, "{}", kind.name());
        }
    }

    #[test]
    fn typed_values_are_checked_at_parse() {
        assert!(Condition::new("NumericLessThan", "k", vec!["ten".into()]).is_err());
        assert!(Condition::new("DateLessThan", "k", vec!["tomorrow".into()]).is_err());
        assert!(Condition::new("IpAddress", "k", vec!["10.0.0.0/40".into()]).is_err());
        assert!(Condition::new("Bool", "k", vec!["yes".into()]).is_err());
        assert!(Condition::new("ArnLike", "k", vec!["*".into()]).is_err());
        assert!(Condition::new("StringLike", "k", vec![]).is_err());
        assert!(Condition::new("StringLike", "", vec!["x".into()]).is_err());
    }

    #[test]
    fn multi_valued_plain_operator_needs_every_value() {
        let c = cond("StringEquals", "aws:ResourceTag/EC2", &["test1"]);
        assert!(c.holds(&ctx(&[("aws:ResourceTag/ec2", "test1")])));
        assert!(!c.holds(&ctx(&[("aws:ResourceTag/ec2", "test1"), ("aws:ResourceTag/EC2", "test2")])));
    }

    #[test]
    fn failure_message_names_key_and_values() {
        let c = cond("StringLike", "ec2:ResourceTag/Name", &["SAS_Agentless*"]);
        let f = c.failure(&ctx(&[("ec2:ResourceTag/Name", "customer-backup")]));
        assert_eq!(
            f.to_string(),
            "StringLike ec2:ResourceTag/Name \"SAS_Agentless*\" is false for the request value \"customer-backup\""
        );
        let f = c.failure(&Context::new());
        assert_eq!(
            f.to_string(),
            "StringLike ec2:ResourceTag/Name \"SAS_Agentless*\" is false: the request has no ec2:ResourceTag/Name"
        );
    }
}
