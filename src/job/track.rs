//! The intent protocol around one create call (DESIGN.md, "A scan job"; `crate::ledger::intents`):
//! an intent row before the call, the id after it; and on resume, an intent without an id is
//! resolved — by calling again with the same `ClientToken` where the API has one (idempotent), or
//! by looking the resource up by its tags — before anything is created a second time.
//!
//! Resources are matched to their rows by kind and `Name` tag (each of a job's resources has its
//! own name), so a step can be re-run after a crash and find what it already made.

use std::future::Future;

use super::JobError;
use super::retry::backoff;
use super::runner::Job;
use crate::cloud::tags::{self, Tags};
use crate::cloud::{Cloud, CloudError, ErrorKind};
use crate::ledger::{IntentId, ResourceId, ResourceKind, ResourceState};

/// What to do about an intent left by an earlier run.
enum Earlier {
    /// Nothing recorded under this name: create.
    None,
    /// Created: this id.
    Created(ResourceId),
    /// An intent whose call may or may not have happened.
    Pending(IntentId),
}

impl<C: Cloud> Job<'_, C> {
    fn earlier(&self, kind: ResourceKind, name: &str) -> Result<Earlier, JobError> {
        let rows = self.r.lock().resources(&self.id).map_err(self.lerr())?;
        let mut found = Earlier::None;
        for row in rows.into_iter().filter(|r| r.kind == kind && r.tags.get(tags::NAME) == Some(name)) {
            match (row.state, row.id) {
                (ResourceState::Created, Some(id)) => return Ok(Earlier::Created(id)),
                (ResourceState::Intent, _) => found = Earlier::Pending(row.intent),
                (ResourceState::Created, None) | (ResourceState::Deleted, _) => {}
            }
        }
        Ok(found)
    }

    /// Create one resource named by its `Name` tag in `tags`, with the intent protocol. `token` is
    /// the `ClientToken` if the API takes one; `lookup` finds the resource by its tags. The outer
    /// error is the ledger's; the inner the cloud's (the intent is then closed as not created).
    pub(super) async fn tracked<F, Fut, L, LFut>(
        &self,
        kind: ResourceKind,
        tags: &Tags,
        token: Option<&str>,
        mut create: F,
        lookup: L,
    ) -> Result<Result<ResourceId, CloudError>, JobError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<ResourceId, CloudError>>,
        L: Fn() -> LFut,
        LFut: Future<Output = Result<Option<ResourceId>, CloudError>>,
    {
        let name = tags.get(tags::NAME).unwrap_or_default().to_owned();
        let mut intent = None;
        match self.earlier(kind, &name)? {
            Earlier::Created(id) => return Ok(Ok(id)),
            Earlier::Pending(i) => {
                if token.is_some() {
                    // Calling again with the same token returns what the first call made.
                    intent = Some(i);
                } else {
                    match lookup().await {
                        Ok(Some(id)) => {
                            self.r.lock().record_created(i, &id).map_err(self.lerr())?;
                            tracing::info!(job = %self.id, %id, "resumed: found the resource of an unfinished create by its tags");
                            return Ok(Ok(id));
                        }
                        Ok(None) => self.r.lock().record_not_created(i).map_err(self.lerr())?,
                        Err(e) => return Ok(Err(e)),
                    }
                }
            }
            Earlier::None => {}
        }
        let intent = match intent {
            Some(i) => i,
            None => self.r.lock().record_intent(&self.id, kind, &self.region, token, tags).map_err(self.lerr())?,
        };
        let mut delays = backon::BackoffBuilder::build(backoff());
        loop {
            let err = match create().await {
                Ok(id) => {
                    self.r.lock().record_created(intent, &id).map_err(self.lerr())?;
                    return Ok(Ok(id));
                }
                Err(e) => e,
            };
            let retry = match err.kind() {
                ErrorKind::Throttled => true,
                ErrorKind::Transient if token.is_some() => true,
                // The call may have been applied with its response lost: look before creating again.
                ErrorKind::Transient => match lookup().await {
                    Ok(Some(id)) => {
                        self.r.lock().record_created(intent, &id).map_err(self.lerr())?;
                        return Ok(Ok(id));
                    }
                    Ok(None) | Err(_) => true,
                },
                ErrorKind::NotFound
                | ErrorKind::DependencyViolation
                | ErrorKind::IncorrectState
                | ErrorKind::SnapshotRatePerVolume
                | ErrorKind::QuotaExceeded
                | ErrorKind::AccessDenied
                | ErrorKind::PolicyDenied
                | ErrorKind::Other => false,
            };
            match delays.next() {
                Some(d) if retry => {
                    tracing::info!(job = %self.id, error = %err, retry_in_ms = d.as_millis() as u64, "create failed; retrying");
                    if self.sleep(d).await {
                        return Ok(Err(err));
                    }
                }
                Some(_) | None => {
                    // Without a token the call may still have happened (a lost response); the
                    // intent stays open for the teardown sweep to find the resource by tag.
                    if token.is_none() && err.kind() == ErrorKind::Transient {
                        return Ok(Err(err));
                    }
                    self.r.lock().record_not_created(intent).map_err(self.lerr())?;
                    return Ok(Err(err));
                }
            }
        }
    }
}
