//! The auditor's error type: only what stops an audit before any Region is looked at. Everything
//! that fails inside one Region (a listing, a deletion) is part of the report instead, with the
//! AWS ids and the Region it is about.

use crate::cloud::{AccountId, CloudError, IdError};

/// Why an audit could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No Region was asked for and the account's Regions could not be listed.
    #[error("cannot list the account's Regions (ask for them with --region): {source}")]
    Regions { source: Box<CloudError> },
    /// The account has no enabled Region (or `DescribeRegions` returned none).
    #[error("the account has no enabled Region to audit")]
    NoRegions,
    /// The built-in home Region does not parse (a bug).
    #[error("the default Region is malformed: {0}")]
    HomeRegion(IdError),
    /// The credentials are for another account than the one asked for (`--account`).
    #[error("the credentials are for account {actual}, not {}", expected.iter().map(AccountId::as_str).collect::<Vec<_>>().join(" or "))]
    WrongAccount { expected: Vec<AccountId>, actual: AccountId },
}
