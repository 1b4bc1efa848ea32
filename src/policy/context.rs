//! The request AWS authorizes: an action, one resource ARN and the request context (condition key
//! → one or more values).
//!
//! Key names are case-insensitive, all of them, including the tag-key part of
//! `ec2:ResourceTag/<key>` and `aws:RequestTag/<key>` and the `<key>` of
//! `kms:EncryptionContext:<key>`: the IAM reference ("IAM JSON policy elements: Condition") says
//! "Context key names are not case-sensitive" and, for the tag forms, that `aws:ResourceTag/TagKey1`
//! matches a tag key named `TagKey1` or `tagkey1`. Keys are stored lower-cased (Unicode) with the
//! first spelling kept for messages. Two inserts whose keys differ only in case therefore build one
//! multi-valued key, which is what AWS describes for a resource tagged both `ec2=test1` and
//! `EC2=test2` ("the key name matches both tags, but only one value matches").
//!
//! Values are case-sensitive strings; the operator decides how they compare. A key whose value
//! list is empty is treated exactly like a key that is not there.

use std::collections::BTreeMap;
use std::fmt;

/// Condition keys and their values for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Lower-cased key → (key as first written, values in insertion order).
    entries: BTreeMap<String, (String, Vec<String>)>,
}

impl Context {
    /// An empty context.
    #[must_use]
    pub fn new() -> Context {
        Context::default()
    }

    /// Add one value to `key` (a key given several times gets several values).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.entries.entry(key.to_lowercase()).or_insert_with(|| (key, Vec::new())).1.push(value.into());
    }

    /// Set `key` to exactly `values` (an empty list makes the key count as absent).
    pub fn set<I, V>(&mut self, key: impl Into<String>, values: I)
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        let values = values.into_iter().map(Into::into).collect();
        self.entries.insert(key.to_lowercase(), (key, values));
    }

    /// Remove `key`; true if it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.entries.remove(&key.to_lowercase()).is_some()
    }

    /// The values of `key`, or `None` when the key is absent or has no values.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.get(&key.to_lowercase()).map(|(_, v)| v.as_slice()).filter(|v| !v.is_empty())
    }

    /// Every key (as first written) with its values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.values().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// No keys at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("action \"{0}\" is not of the form service:ActionName (e.g. ec2:DeleteSnapshot) without wildcards")]
    Action(String),
    #[error("the resource must be an ARN or \"*\", found \"{0}\"")]
    Resource(String),
    #[error("a context key must not be empty")]
    EmptyKey,
}

/// One authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    action: String,
    resource: String,
    context: Context,
}

impl Request {
    /// A request for `action` (`ec2:DeleteSnapshot`) on `resource` (an ARN, or `*` for actions that
    /// do not support resource-level permissions), with an empty context.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Result<Request, RequestError> {
        let action = action.into();
        let valid_action = action
            .split_once(':')
            .is_some_and(|(svc, name)| !svc.is_empty() && !name.is_empty() && !name.contains(':'))
            && !action.contains(['*', '?'])
            && !action.chars().any(char::is_whitespace);
        if !valid_action {
            return Err(RequestError::Action(action));
        }
        let resource = resource.into();
        if resource != "*" && !resource.starts_with("arn:") {
            return Err(RequestError::Resource(resource));
        }
        Ok(Request { action, resource, context: Context::new() })
    }

    /// Add one context value (builder form).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Request {
        self.context.insert(key, value);
        self
    }

    /// Replace the whole context (builder form).
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Request {
        self.context = context;
        self
    }

    #[must_use]
    pub fn action(&self) -> &str {
        &self.action
    }

    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    #[must_use]
    pub fn context(&self) -> &Context {
        &self.context
    }

    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_merge() {
        let mut c = Context::new();
        c.insert("ec2:ResourceTag/Name", "a");
        c.insert("EC2:resourcetag/name", "b");
        assert_eq!(c.get("Ec2:ResourceTag/NAME"), Some(&["a".to_owned(), "b".to_owned()][..]));
        assert_eq!(c.iter().next().map(|(k, _)| k), Some("ec2:ResourceTag/Name"));
        c.set("aws:TagKeys", Vec::<String>::new());
        assert_eq!(c.get("aws:TagKeys"), None);
        assert!(c.remove("AWS:TAGKEYS"));
    }

    #[test]
    fn request_validation() {
        assert!(Request::new("ec2:DeleteSnapshot", "arn:aws:ec2:us-east-1:1:snapshot/snap-1").is_ok());
        assert!(Request::new("ec2:DescribeRegions", "*").is_ok());
        assert_eq!(Request::new("DeleteSnapshot", "*"), Err(RequestError::Action("DeleteSnapshot".into())));
        assert!(Request::new("ec2:Delete*", "*").is_err());
        assert!(Request::new("ec2:", "*").is_err());
        assert!(Request::new("ec2:DeleteSnapshot", "snap-1").is_err());
    }
}
