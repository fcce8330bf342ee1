//! The applier's queue: callers (API handlers, the scheduler, the outbox
//! worker) submit groups of jobs and await their outcomes; one task drains
//! whatever is queued into a single [`Applier::apply`] call, so the commit
//! count falls as the load rises (group commit) and one contact's inputs
//! apply one at a time, in arrival order.
//!
//! The task ends when every [`Queue`] handle is dropped and the queue is
//! empty, so shutting down never drops a submitted job.

use super::apply::{Applier, ApplyError, Job, Outcome};

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
        let gone = || {
            (0..n)
                .map(|_| Err(ApplyError::Store("the daemon is shutting down".into())))
                .collect()
        };
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
            out.push(
                got.unwrap_or_else(|| Err(ApplyError::Store("the daemon is shutting down".into()))),
            );
        }
        out
    }
}

/// Drain the queue into group commits until every sender is gone.
pub async fn run(applier: Arc<Applier>, mut rx: Receiver, max_group: usize) {
    while let Some(first) = rx.0.recv().await {
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
        let outcomes = applier.apply_units(units).await;
        for (reply, part) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(part);
        }
    }
}
