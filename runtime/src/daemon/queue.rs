//! The applier's queue: callers (API handlers, the scheduler, the outbox
//! worker, the CLI) submit units of jobs and await their outcomes; one task
//! drains whatever is queued into one group commit, so the commit count falls
//! as the load rises and one contact's inputs apply one at a time, in
//! arrival order. The next group is prepared while the previous one commits
//! (see `group.rs`); callers are answered after their commit.
//!
//! The task ends when every [`Queue`] handle is dropped and the queue is
//! empty, so shutting down never drops a submitted job.

use super::apply::{Applier, ApplyError, Job, Outcome};
use super::deploy::Current;
use super::group::{Group, Overlay};
use crate::store::StoreError;
use tokio::task::JoinHandle;

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

struct Submit {
    jobs: Vec<Job>,
    reply: oneshot::Sender<Vec<Outcome>>,
}

/// A handle to submit jobs.
#[derive(Clone)]
pub struct Queue(mpsc::Sender<Submit>);

/// The receiving end, for [`run`].
pub struct Receiver(mpsc::Receiver<Submit>);

impl Queue {
    pub fn new(capacity: usize) -> (Queue, Receiver) {
        let (tx, rx) = mpsc::channel(capacity);
        (Queue(tx), Receiver(rx))
    }

    /// Apply jobs; returns after the commit holding them.
    pub async fn submit(&self, jobs: Vec<Job>) -> Vec<Outcome> {
        let n = jobs.len();
        let (reply, answer) = oneshot::channel();
        let gone = || (0..n).map(|_| Err(ApplyError::ShuttingDown)).collect();
        if self.0.send(Submit { jobs, reply }).await.is_err() {
            return gone();
        }
        answer.await.unwrap_or_else(|_| gone())
    }
}

impl Queue {
    /// Apply each job as a unit of its own (one failing leaves the others
    /// applied), in one group commit when the queue is quiet.
    pub async fn submit_each(&self, jobs: Vec<Job>) -> Vec<Outcome> {
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (reply, answer) = oneshot::channel();
            let sent = self
                .0
                .send(Submit {
                    jobs: vec![job],
                    reply,
                })
                .await
                .is_ok();
            answers.push(sent.then_some(answer));
        }
        let mut out = Vec::with_capacity(answers.len());
        for a in answers {
            let got = match a {
                Some(a) => a.await.ok().and_then(|mut v| v.pop()),
                None => None,
            };
            out.push(got.unwrap_or(Err(ApplyError::ShuttingDown)));
        }
        out
    }
}

/// What a commit task gives back.
type Committed = (Group, Result<(), StoreError>);

/// A group whose commit is in flight, with the callers to answer.
struct Inflight {
    /// The applier (deployment) the group was prepared with.
    applier: Arc<Applier>,
    replies: Vec<oneshot::Sender<Vec<Outcome>>>,
    /// Jobs per unit (to answer if the commit task itself died).
    lens: Vec<usize>,
    overlay: Overlay,
    commit: JoinHandle<Committed>,
}

impl Inflight {
    /// Wait for the commit and answer the callers; gives whether it committed.
    async fn settle(self) -> bool {
        let Inflight {
            applier,
            replies,
            lens,
            commit,
            ..
        } = self;
        let done = commit.await;
        answer(&applier, replies, lens, done).await
    }
}

/// Answer the callers of a finished commit; gives whether it committed.
async fn answer(
    applier: &Applier,
    replies: Vec<oneshot::Sender<Vec<Outcome>>>,
    lens: Vec<usize>,
    done: Result<Committed, tokio::task::JoinError>,
) -> bool {
    let (ok, outcomes) = match done {
        Ok((group, committed)) => {
            let ok = committed.is_ok();
            (ok, applier.finish_group(group, committed).await)
        }
        Err(e) => {
            tracing::error!(error = %e, "a commit task failed");
            let all = lens
                .iter()
                .map(|n| (0..*n).map(|_| Err(ApplyError::CommitLost)).collect())
                .collect();
            (false, all)
        }
    };
    for (reply, part) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(part);
    }
    ok
}

/// Drain the queue into group commits until every sender is gone. The next
/// group is prepared while the previous one commits (see `group.rs`).
/// Each group is prepared and committed by the applier of the deployment
/// in force when it was taken (`deploy.rs`), so a deploy never splits one.
pub async fn run(current: Current, mut rx: Receiver, max_group: usize) {
    let mut inflight: Option<Inflight> = None;
    loop {
        let first = match inflight.as_mut() {
            None => match rx.0.recv().await {
                Some(s) => s,
                None => break,
            },
            Some(f) => {
                tokio::select! {
                    s = rx.0.recv() => match s {
                        Some(s) => s,
                        None => break,
                    },
                    done = &mut f.commit => {
                        // the commit finished before anything new came
                        if let Some(f) = inflight.take() {
                            answer(&f.applier, f.replies, f.lens, done).await;
                        }
                        continue;
                    }
                }
            }
        };
        let mut group = vec![first];
        let mut n = group[0].jobs.len();
        while n < max_group {
            match rx.0.try_recv() {
                Ok(s) => {
                    n += s.jobs.len();
                    group.push(s);
                }
                Err(_) => break,
            }
        }
        let mut units = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        for s in group {
            replies.push(s.reply);
            units.push(s.jobs);
        }
        let applier = current.get().applier.clone();
        // prepare on the commit in flight only when its overlay covers it
        if inflight.as_ref().is_some_and(|f| !f.overlay.usable)
            && let Some(f) = inflight.take()
        {
            f.settle().await;
        }
        let lens: Vec<usize> = units.iter().map(Vec::len).collect();
        let mut prepared = applier
            .prepare_group(units, inflight.as_ref().map(|f| &f.overlay))
            .await;
        if let Some(f) = inflight.take() {
            let committed = f.settle().await;
            if !committed && prepared.on_overlay() {
                prepared = applier.prepare_group(prepared.into_units(), None).await;
            }
        }
        let overlay = prepared.overlay();
        let a = applier.clone();
        let commit = tokio::spawn(async move {
            let mut g = prepared;
            let r = a.commit_group(&mut g).await;
            (g, r)
        });
        inflight = Some(Inflight {
            applier,
            replies,
            lens,
            overlay,
            commit,
        });
    }
    if let Some(f) = inflight.take() {
        f.settle().await;
    }
}
