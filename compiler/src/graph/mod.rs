//! `nudge graph`: a picture of each flow, built from the checked syntax
//! trees (not the bytecode) into one small model ([`FlowGraph`]) that the
//! renderers turn into Mermaid ([`mermaid`]) or Graphviz dot ([`dot`]).
//!
//! Takes the modules of a project that checked without errors and their
//! sources (labels quote conditions and durations as written); gives one
//! [`FlowGraph`] per flow, in source order. Nodes are the flow's doc comment, triggers,
//! goals and `exit when`s, its steps (name and title), waits, `if`s, splits,
//! handlers, `start`/`stop`/`emit`, `exit` and *completed*; edges follow the
//! control flow, a `goto` to another flow ends at a node named for it.
//!
//! INVARIANT: node ids are `f<flow>n<index>`, from a safe alphabet in both
//! formats; every label is escaped by the renderer that prints it.

mod build;
pub mod dot;
pub mod mermaid;

use crate::files::SourceSet;
use nudge_grammar::ast::{Item, Module};
use nudge_grammar::span::FileId;

/// What a node stands for; the renderers pick a shape from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A step, an action (`start`, `stop`, `emit`).
    Box,
    /// A trigger, a handler, an end (`exit`, completed).
    Round,
    /// A decision: `if`, `split`, a wait with branches.
    Diamond,
    /// A wait.
    Wait,
    /// Another flow, the target of a `goto`.
    Flow,
    /// A goal or an `exit when`, beside the flow.
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub label: String,
    pub shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: Option<String>,
}

/// One flow: its name, its heading (name and title) and its picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowGraph {
    pub name: String,
    pub heading: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The graph of every flow of the project, in source order.
pub fn flows(sources: &SourceSet, modules: &[(FileId, Module)]) -> Vec<FlowGraph> {
    let mut out = Vec::new();
    for (file, module) in modules {
        let text = sources.get(*file).map_or("", |f| f.text.as_str());
        for item in &module.items {
            if let Item::Flow(flow) = item {
                out.push(build::flow(out.len(), flow, text));
            }
        }
    }
    out
}

/// `text` on one line (line breaks and tabs as spaces), each character that
/// `special` names replaced by what it gives: the renderers' escaping.
fn escape_with(text: &str, special: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match (special(c), c) {
            (Some(s), _) => out.push_str(s),
            (None, '\n' | '\r' | '\t') => out.push(' '),
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_breaks_become_spaces_in_both_formats() {
        assert_eq!(super::mermaid::escape("a\nb\tc"), "a b c");
        assert_eq!(super::dot::escape("a\r\nb"), "a  b");
    }
}
