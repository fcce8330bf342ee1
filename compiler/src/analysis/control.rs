//! Control within one step: follows its statements in order and tells, at
//! each point, whether control can be there without having passed a `wait`
//! since the step's entry ("fresh"), after one ("waited"), or not at all.
//!
//! Takes a list of statements and the [`Reach`] at its start; gives the
//! [`Reach`] at its end, the `goto`s met on the way with the reach at each,
//! and the statements that can never run.
//!
//! The rules: `goto` and `exit` leave (nothing after them runs); `if` and
//! `split` branches are alternatives (an `if` without `else` may also run
//! none); a `wait` makes everything after it "waited", and its branch bodies
//! and `within … else` statement run after it, then go on after the `wait`.
//! A `wait { … }` whose every branch leaves, and that has no `within` or a
//! `within … else` that leaves, goes on nowhere. `call … as` is not a wait.

use super::head;
use nudge_grammar::ast::{GotoTarget, Stmt, StmtKind, WaitKind};
use nudge_grammar::span::Span;

/// Where control can be at a point of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Reached from the step's entry without passing a `wait`.
    pub fresh: bool,
    /// Reached after passing a `wait` (or in code that runs while, or after,
    /// the contact waits: handlers, wait branches).
    pub waited: bool,
}

impl Reach {
    pub const NONE: Reach = Reach {
        fresh: false,
        waited: false,
    };
    pub const FRESH: Reach = Reach {
        fresh: true,
        waited: false,
    };
    pub const WAITED: Reach = Reach {
        fresh: false,
        waited: true,
    };

    /// Can control be here at all?
    pub fn any(self) -> bool {
        self.fresh || self.waited
    }

    pub fn or(self, other: Reach) -> Reach {
        Reach {
            fresh: self.fresh || other.fresh,
            waited: self.waited || other.waited,
        }
    }

    /// The reach after a `wait` that this reach arrives at.
    fn after_wait(self) -> Reach {
        if self.any() {
            Reach::WAITED
        } else {
            Reach::NONE
        }
    }
}

/// A `goto` met while scanning, and how control can get there.
#[derive(Debug, Clone)]
pub struct Goto<'a> {
    pub target: &'a GotoTarget,
    /// The `goto` statement, as [`head`] gives it.
    pub span: Span,
    pub reach: Reach,
}

/// A statement that never runs: the first one of its block, and the
/// statement after which every path has left.
#[derive(Debug, Clone, Copy)]
pub struct Dead {
    pub span: Span,
    pub cause: Option<Span>,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan<'a> {
    pub gotos: Vec<Goto<'a>>,
    pub dead: Vec<Dead>,
}

impl<'a> Scan<'a> {
    /// Scan a list of statements (a step body) entered with `entry`; gives
    /// the reach at its end.
    pub fn block(&mut self, stmts: impl IntoIterator<Item = &'a Stmt>, entry: Reach) -> Reach {
        let mut reach = entry;
        let mut cause = None;
        let mut reported = false;
        for s in stmts {
            if !reach.any() && entry.any() && !reported {
                self.dead.push(Dead {
                    span: head(s),
                    cause,
                });
                reported = true;
            }
            let before = reach;
            reach = self.stmt(s, reach);
            if before.any() && !reach.any() {
                cause = Some(head(s));
            }
        }
        reach
    }

    /// Scan one statement entered with `reach`; gives the reach after it.
    pub fn stmt(&mut self, s: &'a Stmt, reach: Reach) -> Reach {
        match &s.kind {
            StmtKind::Goto { target } => {
                self.gotos.push(Goto {
                    target,
                    span: head(s),
                    reach,
                });
                Reach::NONE
            }
            StmtKind::Exit => Reach::NONE,
            StmtKind::Block(b) => self.block(b, reach),
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut out = match otherwise {
                    Some(b) => self.block(b, reach),
                    None => reach,
                };
                for (_, b) in branches {
                    out = out.or(self.block(b, reach));
                }
                out
            }
            StmtKind::Split { arms } => {
                if arms.is_empty() {
                    return reach;
                }
                arms.iter()
                    .fold(Reach::NONE, |out, arm| out.or(self.stmt(&arm.body, reach)))
            }
            StmtKind::Wait(w) => {
                let after = reach.after_wait();
                let mut out = match &w.kind {
                    WaitKind::Block(branches) => branches
                        .iter()
                        .fold(Reach::NONE, |out, b| out.or(self.stmt(&b.body, after))),
                    _ => after,
                };
                if let Some(within) = &w.within {
                    out = out.or(match &within.otherwise {
                        Some(body) => self.stmt(body, after),
                        None => after,
                    });
                }
                out
            }
            _ => reach,
        }
    }
}

/// Does every path through `s` leave (with `goto` or `exit`)? Used for
/// handler bodies: one that does not returns the contact to its wait.
pub fn always_leaves(s: &Stmt) -> bool {
    !Scan::default().stmt(s, Reach::WAITED).any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_grammar::ast::{FlowItem, Item};
    use nudge_grammar::parse;
    use nudge_grammar::span::FileId;

    fn body(src: &str) -> Vec<Stmt> {
        let m = parse(FileId(0), &format!("flow f {{ step s {{ {src} }} }}")).expect("parses");
        match &m.items[0] {
            Item::Flow(f) => match &f.body[0] {
                FlowItem::Step(s) => s.body.clone(),
                _ => panic!("not a step"),
            },
            _ => panic!("not a flow"),
        }
    }

    fn end(src: &str) -> Reach {
        let b = body(src);
        Scan::default().block(&b, Reach::FRESH)
    }

    #[test]
    fn waits_and_jumps() {
        assert_eq!(end("log \"a\""), Reach::FRESH);
        assert_eq!(end("wait 1 day"), Reach::WAITED);
        assert_eq!(end("exit"), Reach::NONE);
        assert_eq!(
            end("if true { wait 1 day }"),
            Reach::FRESH.or(Reach::WAITED)
        );
        assert_eq!(end("if true { exit } else { goto s }"), Reach::NONE);
        assert_eq!(end("wait for x within 1 day else exit"), Reach::WAITED);
        assert_eq!(
            end("wait { on x -> exit  after 1 day -> goto s }"),
            Reach::NONE
        );
        assert_eq!(
            end("wait { on x -> exit } within 1 day"),
            Reach::WAITED,
            "a timeout without else goes on after the wait"
        );
    }

    #[test]
    fn dead_code_is_reported_once_per_block() {
        let b = body("exit log \"a\" log \"b\"");
        let mut scan = Scan::default();
        scan.block(&b, Reach::FRESH);
        assert_eq!(scan.dead.len(), 1);
        assert_eq!(scan.dead[0].span, head(&b[1]));
        assert_eq!(scan.dead[0].cause, Some(head(&b[0])));
    }
}
