//! Describe semantics shared by every resource kind: ids (an unknown id fails the whole call with
//! the kind's `Invalid*.NotFound`, as EC2 does), filters (`tag:<key>`, `tag-key` and per-kind
//! names; values take `*` and `?` wildcards, EC2 API Reference "Filtering"; an unknown filter name
//! is `InvalidParameterValue`), and pages (`MaxResults` 5 to 1000, an opaque `NextToken`).

use super::consistency::ViewIter;
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

impl<T: Describable + ?Sized> Describable for &T {
    fn tags(&self) -> &Tags {
        (**self).tags()
    }

    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        (**self).field(id, name)
    }
}

fn matches<R: Describable>(id: &str, r: &R, f: &Filter) -> Result<bool, DescribeError> {
    let any = |v: &str| f.values.iter().any(|pattern| wildcard_match(pattern, v));
    // Tags are compared in place; only per-kind fields are rendered to strings.
    if let Some(key) = f.name.strip_prefix("tag:") {
        return Ok(r.tags().get(key).is_some_and(any));
    }
    if f.name == "tag-key" {
        return Ok(r.tags().keys().any(any));
    }
    let values = r.field(id, &f.name).ok_or_else(|| DescribeError::UnknownFilter(f.name.clone()))?;
    Ok(values.iter().any(|v| any(v)))
}

/// The page of `items` that `input` asks for, mapped with `info`.
pub fn describe<'a, Id, T, O>(
    input: &DescribeInput<Id>,
    items: ViewIter<'a, Id, T>,
    info: impl Fn(&Id, &T) -> O,
) -> Result<Page<O>, DescribeError>
where
    Id: 'a + Ord + AsRef<str>,
    T: 'a + Describable,
{
    describe_with(input, items, Some, |id, t: &&T| info(id, t))
}

/// [`describe`] of the resources `wrap` makes describable; `None` from `wrap`: the caller does not
/// see this one (another owner's snapshot), as if it did not exist.
///
/// By ids, each id is looked up ([`ViewIter::get`]); otherwise the view is walked once. Filters are
/// then applied, and only the page's items are mapped with `info`. Results are in id order,
/// each once; an id not seen fails the call with every such id, in the order asked.
pub fn describe_with<'a, Id, T, R, O>(
    input: &DescribeInput<Id>,
    items: ViewIter<'a, Id, T>,
    wrap: impl Fn(&'a T) -> Option<R>,
    info: impl Fn(&Id, &R) -> O,
) -> Result<Page<O>, DescribeError>
where
    Id: 'a + Ord + AsRef<str>,
    T: 'a,
    R: Describable,
{
    let candidates: Vec<(&'a Id, R)> = if input.ids.is_empty() {
        items.filter_map(|(id, t)| wrap(t).map(|r| (id, r))).collect()
    } else {
        let mut found = Vec::with_capacity(input.ids.len());
        let mut missing = Vec::new();
        for id in &input.ids {
            match items.get(id).and_then(|(id, t)| wrap(t).map(|r| (id, r))) {
                Some(x) => found.push(x),
                None => missing.push(id.as_ref().to_owned()),
            }
        }
        if !missing.is_empty() {
            return Err(DescribeError::NotFound(missing));
        }
        found.sort_by(|a, b| a.0.cmp(b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        found
    };
    let mut selected = Vec::new();
    for (id, r) in candidates {
        // Every filter of every item is evaluated, so an unknown filter name fails the call
        // whenever there is an item to apply it to.
        let mut keep = true;
        for f in &input.filters {
            keep &= matches(id.as_ref(), &r, f)?;
        }
        if keep {
            selected.push((id, r));
        }
    }
    let p = page(selected, input.max_results, input.next_token.as_deref())?;
    Ok(Page { items: p.items.iter().map(|(id, r)| info(id, r)).collect(), next_token: p.next_token })
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
