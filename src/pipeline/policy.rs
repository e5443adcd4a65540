//! The pipeline's decisions, and nothing else: given what was rendered, what is on disk
//! and what the app said, what to do next — swap, reload, roll back, block, hold, retry.
//! Pure (no I/O, no clock): the pipeline loop feeds it facts and carries out its answers,
//! and the table tests below cover every transition.

pub(crate) use crate::outcome::Hold;
use crate::snapshot::ContentHash;

/// Settings that shape the decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Swap in a selection with no object where there were some (`--allow-empty`).
    pub(crate) allow_empty: bool,
    /// Reload after the first snapshot too (`--reload-on-start`).
    pub(crate) reload_on_start: bool,
    /// A reload method is configured.
    pub(crate) reload_configured: bool,
    /// Roll back when the app refuses a reload (`--rollback-on-refusal`, on by default).
    pub(crate) rollback_on_refusal: bool,
}

/// What to do with a freshly rendered snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The files already hold this content and the app knows.
    UpToDate,
    /// The files hold this content but the app was not told yet (superseded or failed).
    Reload,
    /// Validate it and swap it in.
    Swap,
    /// Keep the files as they are.
    Hold(Hold),
}

/// What a swap is followed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterSwap {
    /// Tell the app.
    Reload,
    /// Nothing to tell (no method, or the app reads the first snapshot at start): good.
    Good,
}

/// How telling the app went (reload, then verification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every method succeeded and the app is verified healthy.
    Accepted,
    /// A newer content arrived while the app was being told.
    Superseded,
    /// The app said no: an HTTP error status, a non-zero exit, a failed verification.
    Refused,
    /// The app could not be reached (connection error, timeout, no process).
    Unreachable,
}

/// What follows a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterReload {
    /// Remember it as the last good snapshot (and save the last-good copy).
    Good,
    /// Swap this earlier good snapshot back in and reload the app with it.
    RollBack(ContentHash),
    /// Refused with nothing to roll back to: the files stay, the content is blocked.
    Blocked,
    /// Try telling the app again later (with backoff).
    Retry,
    /// Leave it: the newer content's sync tells the app.
    Pending,
}

/// The decision state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    rules: Rules,
    /// The content `..data` points at, and how many objects it has.
    current: Option<(ContentHash, u64)>,
    /// The last content the app accepted: the rollback target.
    last_good: Option<ContentHash>,
    /// A content that was refused: not tried again until the content changes.
    blocked: Option<ContentHash>,
    /// On disk, but the app has not been told yet.
    reload_pending: Option<ContentHash>,
    /// A snapshot was on disk before, so the app may have read files already.
    app_has_files: bool,
}

// === impl Policy ===

impl Policy {
    /// A policy that has seen nothing yet.
    #[must_use]
    pub(crate) fn new(rules: Rules) -> Self {
        Self {
            rules,
            current: None,
            last_good: None,
            blocked: None,
            reload_pending: None,
            app_has_files: false,
        }
    }

    /// The content on disk.
    #[must_use]
    pub(crate) fn current(&self) -> Option<ContentHash> {
        self.current.map(|(hash, _)| hash)
    }

    #[cfg(test)]
    /// The rollback target.
    #[must_use]
    pub(crate) fn last_good(&self) -> Option<ContentHash> {
        self.last_good
    }

    /// A snapshot found on disk at start (or restored from last-good): the app may have
    /// read it, and it is the best rollback target known.
    pub(crate) fn adopt(&mut self, hash: ContentHash, objects: u64) {
        self.current = Some((hash, objects));
        self.last_good = Some(hash);
        self.app_has_files = true;
    }

    /// The last-good copy holds `hash`, which may differ from what is on disk (a restart
    /// after a failed verification): roll back to it, not to what is on disk.
    pub(crate) fn known_good(&mut self, hash: ContentHash) {
        self.last_good = Some(hash);
    }

    /// A render produced `hash` with `objects` objects.
    pub(crate) fn decide(&mut self, hash: ContentHash, objects: u64) -> Decision {
        if self.current() == Some(hash) {
            return if self.reload_pending == Some(hash) { Decision::Reload } else { Decision::UpToDate };
        }
        if self.blocked == Some(hash) {
            return Decision::Hold(Hold::Blocked);
        }
        let emptied = objects == 0 && self.current.is_none_or(|(_, had)| had > 0);
        if emptied && !self.rules.allow_empty {
            return Decision::Hold(Hold::EmptySelection);
        }
        self.blocked = None;
        Decision::Swap
    }

    /// Validation refused `hash` before the swap.
    pub(crate) fn refused_before_swap(&mut self, hash: ContentHash) {
        self.blocked = Some(hash);
    }

    /// A swap to `hash` happened (the files changed).
    pub(crate) fn swapped(&mut self, hash: ContentHash, objects: u64) -> AfterSwap {
        self.current = Some((hash, objects));
        let had_files = std::mem::replace(&mut self.app_has_files, true);
        let rules = self.rules;
        if rules.reload_configured && (had_files || rules.reload_on_start) {
            self.reload_pending = Some(hash);
            AfterSwap::Reload
        } else {
            self.good(hash);
            AfterSwap::Good
        }
    }

    /// The app was told about `hash` (on disk): what now.
    pub(crate) fn reloaded(&mut self, hash: ContentHash, verdict: &Verdict) -> AfterReload {
        match verdict {
            Verdict::Accepted => {
                self.reload_pending = None;
                self.good(hash);
                AfterReload::Good
            }
            Verdict::Superseded => {
                self.reload_pending = Some(hash);
                AfterReload::Pending
            }
            Verdict::Unreachable => {
                self.reload_pending = Some(hash);
                AfterReload::Retry
            }
            Verdict::Refused if !self.rules.rollback_on_refusal => {
                self.reload_pending = Some(hash);
                AfterReload::Pending
            }
            Verdict::Refused => {
                self.reload_pending = None;
                self.blocked = Some(hash);
                match self.last_good.filter(|good| *good != hash) {
                    Some(good) => AfterReload::RollBack(good),
                    None => AfterReload::Blocked,
                }
            }
        }
    }

    /// The rollback swap to `good` happened: the app must now be told about it.
    pub(crate) fn rolled_back(&mut self, good: ContentHash, objects: u64) {
        self.current = Some((good, objects));
        self.reload_pending = Some(good);
    }

    /// A reload is owed for the content on disk (to deliver before anything else).
    #[must_use]
    pub(crate) fn pending_reload(&self) -> Option<ContentHash> {
        self.reload_pending.filter(|pending| self.current() == Some(*pending))
    }

    fn good(&mut self, hash: ContentHash) {
        self.last_good = Some(hash);
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
