//! Walking statements: every statement of a body, nested ones included, in
//! source order. Passes that only look at statements one by one use this
//! instead of matching every nesting form themselves.

use nudge_grammar::ast::{FlowDecl, FlowItem, Stmt, StmtKind, WaitKind};

/// Call `f` on each statement of `stmts` and every statement nested in them.
pub fn each_stmt<'a>(stmts: impl IntoIterator<Item = &'a Stmt>, f: &mut impl FnMut(&'a Stmt)) {
    for s in stmts {
        f(s);
        for child in children(s) {
            each_stmt([child], f);
        }
    }
}

/// Every statement of a flow: handlers' bodies and every step, in source order.
pub fn each_flow_stmt<'a>(flow: &'a FlowDecl, f: &mut impl FnMut(&'a Stmt)) {
    for item in &flow.body {
        match item {
            FlowItem::Stmt(s) => each_stmt([s], f),
            FlowItem::Handler(h) => each_stmt([h.body.as_ref()], f),
            FlowItem::Step(step) => each_stmt(&step.body, f),
            FlowItem::Trigger(_) | FlowItem::Option(_) => {}
        }
    }
}

/// The statements directly nested in `s`.
pub fn children(s: &Stmt) -> Vec<&Stmt> {
    match &s.kind {
        StmtKind::If {
            branches,
            otherwise,
        } => branches
            .iter()
            .flat_map(|(_, b)| b.iter())
            .chain(otherwise.iter().flatten())
            .collect(),
        StmtKind::Split { arms } => arms.iter().map(|a| &a.body).collect(),
        StmtKind::Block(b) => b.iter().collect(),
        StmtKind::Wait(w) => {
            let mut v: Vec<&Stmt> = Vec::new();
            if let WaitKind::Block(branches) = &w.kind {
                v.extend(branches.iter().map(|b| &b.body));
            }
            if let Some(within) = &w.within {
                v.extend(within.otherwise.as_deref());
            }
            v
        }
        _ => Vec::new(),
    }
}
