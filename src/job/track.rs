//! The intent protocol around one create call (docs/job.md, "Crash safety and resume"; `crate::ledger::intents`):
//! an intent row before the call, the id after it; and on resume, an intent without an id is
//! resolved — by calling again with the same `ClientToken` where the API has one (idempotent), or
//! by looking the resource up by its tags — before anything is created a second time.
//!
//! Resources are matched to their rows by kind and `Name` tag (each of a job's resources has its
//! own name), so a step can be re-run after a crash and find what it already made.

use std::future::Future;

use super::JobError;
use super::runner::Job;
use crate::cloud::retry::{NOT_YET_VISIBLE_RETRIES, Retry, backoff, retry};
use crate::cloud::tags::{self, Tags};
use crate::cloud::{Cloud, CloudError, ErrorKind};
use crate::ledger::{IntentId, ResourceId, ResourceKind, ResourceState};

/// Lookups by tag after a create that may have been applied: the first at once, then after 1 s
/// and 2 s (jittered) — the "couple of seconds" Describe may lag behind a create ("Eventual
/// consistency in the Amazon EC2 API") — before creating again.
const LOOKUP_TRIES: usize = 3;

/// Error codes of a create that mean an earlier attempt of the same create, whose response was
/// lost, went through: the subnet's CIDR or the security group's name is taken in the job's own
/// VPC, which only the job creates in.
const MADE_ALREADY: [&str; 2] = ["InvalidSubnet.Conflict", "InvalidGroup.Duplicate"];

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

    /// Look the resource up by its tags, each Describe retried on throttling and 5xx; when it is
    /// not there, look again after a backoff delay, `tries` times in all (a resource just created
    /// may not be listed yet: eventual consistency).
    async fn look_up<L, LFut>(&self, lookup: &L, tries: usize) -> Result<Option<ResourceId>, CloudError>
    where
        L: Fn() -> LFut,
        LFut: Future<Output = Result<Option<ResourceId>, CloudError>>,
    {
        let mut delays = backon::BackoffBuilder::build(backoff()).take(tries.saturating_sub(1));
        loop {
            if let Some(id) = retry(Retry::Transient, "looking up by tags", lookup).await? {
                return Ok(Some(id));
            }
            match delays.next() {
                Some(d) if !self.sleep(d).await => {}
                Some(_) | None => return Ok(None),
            }
        }
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
        // An earlier call of this create may have been applied without our knowing its id.
        let mut maybe_applied = false;
        match self.earlier(kind, &name)? {
            Earlier::Created(id) => return Ok(Ok(id)),
            Earlier::Pending(i) => {
                if token.is_some() {
                    // Calling again with the same token returns what the first call made.
                    intent = Some(i);
                } else {
                    match self.look_up(&lookup, LOOKUP_TRIES).await {
                        Ok(Some(id)) => {
                            self.r.lock().record_created(i, &id).map_err(self.lerr())?;
                            tracing::info!(%id, "resumed: found the resource of an unfinished create by its tags");
                            return Ok(Ok(id));
                        }
                        Ok(None) => {
                            self.r.lock().record_not_created(i).map_err(self.lerr())?;
                            maybe_applied = true;
                        }
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
        let mut not_found = 0usize;
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
                ErrorKind::Transient => {
                    maybe_applied = true;
                    match self.look_up(&lookup, LOOKUP_TRIES).await {
                        Ok(Some(id)) => {
                            self.r.lock().record_created(intent, &id).map_err(self.lerr())?;
                            return Ok(Ok(id));
                        }
                        Ok(None) | Err(_) => true,
                    }
                }
                // The call names a resource the job just created (the subnet's VPC, the scanner's
                // subnet...) whose id has not propagated yet: nothing was applied, call again.
                ErrorKind::NotFound => {
                    not_found += 1;
                    not_found <= NOT_YET_VISIBLE_RETRIES
                }
                // An earlier attempt whose response was lost made it, and Describe did not show it
                // yet: wait until it does.
                ErrorKind::Other if maybe_applied && err.code().is_some_and(|c| MADE_ALREADY.contains(&c)) => {
                    match self.look_up(&lookup, NOT_YET_VISIBLE_RETRIES + 1).await {
                        Ok(Some(id)) => {
                            self.r.lock().record_created(intent, &id).map_err(self.lerr())?;
                            tracing::info!(%id, "found the resource of a create whose response was lost");
                            return Ok(Ok(id));
                        }
                        // It exists: the intent stays open for the teardown sweep.
                        Ok(None) | Err(_) => return Ok(Err(err)),
                    }
                }
                ErrorKind::DependencyViolation
                | ErrorKind::IncorrectState
                | ErrorKind::SnapshotRatePerVolume
                | ErrorKind::QuotaExceeded
                | ErrorKind::AccessDenied
                | ErrorKind::PolicyDenied
                | ErrorKind::Other => false,
            };
            match delays.next() {
                Some(d) if retry => {
                    tracing::info!(error = %err, retry_in_ms = d.as_millis() as u64, "create failed; retrying");
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
