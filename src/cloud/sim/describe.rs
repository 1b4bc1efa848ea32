//! Describe semantics shared by every resource kind: ids (an unknown id fails the whole call with
//! the kind's `Invalid*.NotFound`, as EC2 does), filters (`tag:<key>`, `tag-key` and per-kind
//! names; values take `*` and `?` wildcards, EC2 API Reference "Filtering"; an unknown filter name
//! is `InvalidParameterValue`), and pages (`MaxResults` 5 to 1000, an opaque `NextToken`).

use crate::cloud::ops::{DescribeInput, Filter, Page};
use crate::cloud::tags::Tags;
use crate::policy::matcher::wildcard_match;

/// Why a Describe failed, before it becomes a `CloudError` with the call's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeError {
    /// Ids that do not exist.
    NotFound(Vec<String>),
    /// A filter name this resource kind does not have.
    UnknownFilter(String),
    /// `MaxResults` out of range.
    MaxResults(u32),
    /// A `NextToken` the sim did not hand out.
    Token(String),
}

/// A resource a Describe can return: its tags and the values of its filters.
pub trait Describable {
    fn tags(&self) -> &Tags;
    /// The values of filter `name` for the resource `id`; `None` if the kind has no such filter.
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>>;
}

/// Smallest and largest `MaxResults` EC2 takes for paginated Describes (EC2 API Reference).
const MIN_PAGE: u32 = 5;
const MAX_PAGE: u32 = 1000;

fn matches<R: Describable>(id: &str, r: &R, f: &Filter) -> Result<bool, DescribeError> {
    let values: Vec<String> = if let Some(key) = f.name.strip_prefix("tag:") {
        r.tags().get(key).map(|v| vec![v.to_owned()]).unwrap_or_default()
    } else if f.name == "tag-key" {
        r.tags().keys().map(str::to_owned).collect()
    } else {
        r.field(id, &f.name).ok_or_else(|| DescribeError::UnknownFilter(f.name.clone()))?
    };
    Ok(f.values.iter().any(|pattern| values.iter().any(|v| wildcard_match(pattern, v))))
}

/// The page of `items` (id, resource) that `input` asks for, mapped with `info`.
pub fn describe<'a, Id, R, T>(
    input: &DescribeInput<Id>,
    items: impl Iterator<Item = (&'a Id, &'a R)>,
    info: impl Fn(&Id, &R) -> T,
) -> Result<Page<T>, DescribeError>
where
    Id: 'a + PartialEq + AsRef<str>,
    R: 'a + Describable,
{
    let all: Vec<(&Id, &R)> = items.collect();
    let missing: Vec<String> = input
        .ids
        .iter()
        .filter(|id| !all.iter().any(|(have, _)| have == id))
        .map(|id| id.as_ref().to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(DescribeError::NotFound(missing));
    }
    let mut selected = Vec::new();
    for (id, r) in all {
        if !input.ids.is_empty() && !input.ids.contains(id) {
            continue;
        }
        let mut keep = true;
        for f in &input.filters {
            keep &= matches(id.as_ref(), r, f)?;
        }
        if keep {
            selected.push(info(id, r));
        }
    }
    page(selected, input.max_results, input.next_token.as_deref())
}

/// Cut `items` into the page `next_token` points at.
pub fn page<T>(items: Vec<T>, max_results: Option<u32>, next_token: Option<&str>) -> Result<Page<T>, DescribeError> {
    let start = match next_token {
        None => 0,
        Some(t) => t
            .strip_prefix("sim-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| DescribeError::Token(t.to_owned()))?,
    };
    let size = match max_results {
        None => items.len(),
        Some(m) if (MIN_PAGE..=MAX_PAGE).contains(&m) => usize::try_from(m).unwrap_or(usize::MAX),
        Some(m) => return Err(DescribeError::MaxResults(m)),
    };
    let end = start.saturating_add(size).min(items.len());
    let next_token = (end < items.len()).then(|| format!("sim-{end}"));
    let items = items.into_iter().skip(start).take(end - start).collect();
    Ok(Page { items, next_token })
}
