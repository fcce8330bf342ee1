//! Building one [`FlowGraph`] from a flow's syntax tree. The walk keeps the
//! *loose ends* (the nodes whose outgoing edge is not drawn yet, with the
//! edge's label) and joins them to the next node it adds; `goto` and `exit`
//! leave none, so what follows them is not joined to them.

use super::{Edge, FlowGraph, Node, Shape};
use nudge_grammar::ast::{
    CallTarget, Content, EventRef, Expr, FlowDecl, FlowItem, GotoTarget, Handler, SplitArm, Stmt,
    StmtKind, Wait, WaitBranch, WaitBranchKind, WaitKind,
};
use nudge_grammar::span::Span;
use std::collections::HashMap;

/// Labels longer than this (in characters) end in `…`.
const MAX_LABEL: usize = 60;

/// Nodes whose next edge is still to be drawn, with that edge's label.
type Ends = Vec<(String, Option<String>)>;

struct Builder<'a> {
    prefix: String,
    flow: &'a str,
    text: &'a str,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    steps: HashMap<String, String>,
    others: HashMap<String, String>,
    exit: Option<String>,
}

/// The graph of `flow`, the `index`-th flow of the project; `text` is the
/// source of its file.
pub fn flow(index: usize, flow: &FlowDecl, text: &str) -> FlowGraph {
    let mut b = Builder {
        prefix: format!("f{index}"),
        flow: &flow.name.name,
        text,
        nodes: Vec::new(),
        edges: Vec::new(),
        steps: HashMap::new(),
        others: HashMap::new(),
        exit: None,
    };
    if let Some(doc) = &flow.doc {
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        b.node(doc, Shape::Note);
    }
    let entry = b.triggers(flow);
    b.options(flow);
    b.declare_steps(flow);
    let ends = b.body(flow, entry);
    if !ends.is_empty() {
        let done = b.node("completed".to_string(), Shape::Round);
        b.join(ends, &done);
    }
    for item in &flow.body {
        if let FlowItem::Handler(h) = item {
            b.handler(h);
        }
    }
    let heading = match &flow.title {
        Some(t) => format!("flow {}: {}", flow.name.name, t.value),
        None => format!("flow {}", flow.name.name),
    };
    FlowGraph {
        name: flow.name.name.clone(),
        heading,
        nodes: b.nodes,
        edges: b.edges,
    }
}

impl Builder<'_> {
    fn node(&mut self, label: String, shape: Shape) -> String {
        let id = format!("{}n{}", self.prefix, self.nodes.len());
        self.nodes.push(Node {
            id: id.clone(),
            label: shorten(&label),
            shape,
        });
        id
    }

    fn join(&mut self, ends: Ends, to: &str) {
        for (from, label) in ends {
            self.edges.push(Edge {
                from,
                to: to.to_string(),
                label,
            });
        }
    }

    /// The source text of a span, on one line.
    fn src(&self, span: Span) -> String {
        let text = self.text.get(span.range()).unwrap_or("");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn expr(&self, e: &Expr) -> String {
        self.src(e.span)
    }

    fn event(&self, event: &EventRef, cond: Option<&Expr>) -> String {
        let mut s = self.src(event.span);
        if let Some(c) = cond {
            s.push_str(" where ");
            s.push_str(&self.expr(c));
        }
        s
    }

    fn triggers(&mut self, flow: &FlowDecl) -> Ends {
        let mut ends = Ends::new();
        for item in &flow.body {
            if let FlowItem::Trigger(t) = item {
                let id = self.node(self.src(t.span), Shape::Round);
                ends.push((id, None));
            }
        }
        if ends.is_empty() {
            let id = self.node("entered by start".to_string(), Shape::Round);
            ends.push((id, None));
        }
        ends
    }

    fn options(&mut self, flow: &FlowDecl) {
        for item in &flow.body {
            if let FlowItem::Option(o) = item {
                let span = match o {
                    nudge_grammar::ast::FlowOption::Reenter { span, .. }
                    | nudge_grammar::ast::FlowOption::ExitWhen { span, .. }
                    | nudge_grammar::ast::FlowOption::Goal { span, .. }
                    | nudge_grammar::ast::FlowOption::Holdout { span, .. } => *span,
                    nudge_grammar::ast::FlowOption::Window(w) => w.span,
                };
                self.node(self.src(span), Shape::Note);
            }
        }
    }

    fn declare_steps(&mut self, flow: &FlowDecl) {
        for item in &flow.body {
            if let FlowItem::Step(s) = item {
                let label = match &s.title {
                    Some(t) => format!("step {}: {}", s.name.name, t.value),
                    None => format!("step {}", s.name.name),
                };
                let id = self.node(label, Shape::Box);
                self.steps.insert(s.name.name.clone(), id);
            }
        }
    }

    /// The statements before the first step, then every step in order.
    fn body(&mut self, flow: &FlowDecl, mut ends: Ends) -> Ends {
        for item in &flow.body {
            match item {
                FlowItem::Stmt(s) => ends = self.stmt(s, ends),
                FlowItem::Step(s) => {
                    let Some(id) = self.steps.get(&s.name.name).cloned() else {
                        continue;
                    };
                    self.join(ends, &id);
                    ends = self.stmts(&s.body, vec![(id, None)]);
                }
                _ => {}
            }
        }
        ends
    }

    fn handler(&mut self, h: &Handler) {
        let label = format!("on {}", self.event(&h.event, h.cond.as_ref()));
        let id = self.node(label, Shape::Round);
        // After its body the handler returns where the contact was: no edge.
        self.stmt(&h.body, vec![(id, None)]);
    }

    fn stmts(&mut self, list: &[Stmt], mut ends: Ends) -> Ends {
        for s in list {
            ends = self.stmt(s, ends);
        }
        ends
    }

    fn stmt(&mut self, s: &Stmt, ends: Ends) -> Ends {
        match &s.kind {
            StmtKind::If {
                branches,
                otherwise,
            } => self.branches(branches, otherwise.as_deref(), ends),
            StmtKind::Split { arms } => self.split(arms, ends),
            StmtKind::Wait(w) => self.wait(w, ends),
            StmtKind::Goto { target } => {
                let to = self.goto(target);
                self.join(ends, &to);
                Vec::new()
            }
            StmtKind::Exit => {
                let to = self.exit_node();
                self.join(ends, &to);
                Vec::new()
            }
            StmtKind::Block(list) => self.stmts(list, ends),
            _ => match self.action(s) {
                Some(label) => self.then(label, Shape::Box, ends),
                None => ends,
            },
        }
    }

    /// A node after the loose ends, which it replaces.
    fn then(&mut self, label: String, shape: Shape, ends: Ends) -> Ends {
        let id = self.node(label, shape);
        self.join(ends, &id);
        vec![(id, None)]
    }

    /// The label of a statement shown as a box; `None` for the ones left
    /// out of the picture (`set`, `tag`, `log`, …).
    fn action(&self, s: &Stmt) -> Option<String> {
        match &s.kind {
            StmtKind::Send {
                channel, content, ..
            } => Some(match content {
                Content::Template(t) => format!("send {} {}", channel.name, t.name),
                _ => format!("send {}", channel.name),
            }),
            StmtKind::Call { target, .. } => Some(match target {
                CallTarget::Channel(c) => format!("call {}", c.name),
                CallTarget::Url(u) => format!("call {}", u.value),
            }),
            StmtKind::Start { flow } => Some(format!("start {}", flow.name)),
            StmtKind::Stop { flow } => Some(format!("stop {}", flow.name)),
            StmtKind::Emit { event, .. } => Some(format!("emit {}", event.name)),
            _ => None,
        }
    }

    fn branches(
        &mut self,
        branches: &[(Expr, Vec<Stmt>)],
        otherwise: Option<&[Stmt]>,
        mut ends: Ends,
    ) -> Ends {
        let mut out = Ends::new();
        for (cond, body) in branches {
            let id = self.node(format!("if {}", self.expr(cond)), Shape::Diamond);
            self.join(ends, &id);
            out.extend(self.stmts(body, vec![(id.clone(), Some("yes".to_string()))]));
            ends = vec![(id, Some("no".to_string()))];
        }
        match otherwise {
            Some(list) => out.extend(self.stmts(list, ends)),
            None => out.extend(ends),
        }
        out
    }

    fn split(&mut self, arms: &[SplitArm], ends: Ends) -> Ends {
        let id = self.node("split".to_string(), Shape::Diamond);
        self.join(ends, &id);
        let mut out = Ends::new();
        for arm in arms {
            let from = vec![(id.clone(), Some(share(&arm.share.text)))];
            out.extend(self.stmt(&arm.body, from));
        }
        out
    }

    fn wait(&mut self, w: &Wait, ends: Ends) -> Ends {
        let branched = matches!(w.kind, WaitKind::Block(_)) || w.within.is_some();
        let shape = if branched {
            Shape::Diamond
        } else {
            Shape::Wait
        };
        let id = self.node(self.wait_label(&w.kind), shape);
        self.join(ends, &id);
        let mut out = match &w.kind {
            WaitKind::Block(list) => self.wait_branches(&id, list),
            WaitKind::For { event, .. } if w.within.is_some() => {
                vec![(id.clone(), Some(self.src(event.span)))]
            }
            WaitKind::Until(_) if w.within.is_some() => {
                vec![(id.clone(), Some("true".to_string()))]
            }
            _ => vec![(id.clone(), None)],
        };
        if let Some(within) = &w.within {
            let timeout = vec![(id, Some(format!("after {}", self.expr(&within.duration))))];
            match &within.otherwise {
                Some(s) => out.extend(self.stmt(s, timeout)),
                None => out.extend(timeout),
            }
        }
        out
    }

    fn wait_label(&self, kind: &WaitKind) -> String {
        match kind {
            WaitKind::Duration(e) => format!("wait {}", self.expr(e)),
            WaitKind::Until(e) => format!("wait until {}", self.expr(e)),
            WaitKind::Clock { day, time, local } => {
                let day = day.map_or(String::new(), |d| format!("{} ", d.name()));
                let local = if *local { " local" } else { "" };
                format!("wait until {day}{:02}:{:02}{local}", time.hour, time.minute)
            }
            WaitKind::For { event, cond } => {
                format!("wait for {}", self.event(event, cond.as_ref()))
            }
            WaitKind::Block(_) => "wait".to_string(),
        }
    }

    fn wait_branches(&mut self, id: &str, list: &[WaitBranch]) -> Ends {
        let mut out = Ends::new();
        for branch in list {
            let label = match &branch.kind {
                WaitBranchKind::On { event, cond } => {
                    format!("on {}", self.event(event, cond.as_ref()))
                }
                WaitBranchKind::Until(e) => format!("until {}", self.expr(e)),
                WaitBranchKind::After(e) => format!("after {}", self.expr(e)),
            };
            out.extend(self.stmt(&branch.body, vec![(id.to_string(), Some(shorten(&label)))]));
        }
        out
    }

    /// A step of this flow, or the node standing for another flow.
    fn goto(&mut self, t: &GotoTarget) -> String {
        let own_step = match &t.second {
            None => Some(&t.first.name),
            Some(step) if t.first.name == self.flow => Some(&step.name),
            Some(_) => None,
        };
        if let Some(id) = own_step.and_then(|s| self.steps.get(s)) {
            return id.clone();
        }
        let target = match &t.second {
            Some(step) => format!("{}.{}", t.first.name, step.name),
            None => t.first.name.clone(),
        };
        if let Some(id) = self.others.get(&target) {
            return id.clone();
        }
        let id = self.node(format!("flow {target}"), Shape::Flow);
        self.others.insert(target, id.clone());
        id
    }

    fn exit_node(&mut self) -> String {
        if let Some(id) = &self.exit {
            return id.clone();
        }
        let id = self.node("exit".to_string(), Shape::Round);
        self.exit = Some(id.clone());
        id
    }
}

/// A split arm's share as `50%`.
fn share(text: &str) -> String {
    if text.ends_with('%') {
        text.to_string()
    } else {
        format!("{text}%")
    }
}

/// A label on one line of at most [`MAX_LABEL`] characters.
fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL {
        return label.to_string();
    }
    let mut s: String = label.chars().take(MAX_LABEL - 1).collect();
    s.push('…');
    s
}
