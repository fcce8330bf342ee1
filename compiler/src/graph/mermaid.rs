//! Mermaid (`flowchart TD`) for [`FlowGraph`]s, as GitHub renders it: one
//! `subgraph` per flow, every label quoted and escaped ([`escape`]).

use super::{FlowGraph, Shape};
use std::fmt::Write;

/// The flowchart of `flows`.
pub fn render(flows: &[FlowGraph]) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, flow) in flows.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "  subgraph f{i}[\"{}\"]", escape(&flow.heading));
        for node in &flow.nodes {
            let (open, close) = brackets(node.shape);
            let _ = writeln!(
                out,
                "    {}{open}\"{}\"{close}",
                node.id,
                escape(&node.label)
            );
        }
        for edge in &flow.edges {
            let _ = match &edge.label {
                Some(l) => writeln!(out, "    {} -->|\"{}\"| {}", edge.from, escape(l), edge.to),
                None => writeln!(out, "    {} --> {}", edge.from, edge.to),
            };
        }
        out.push_str("  end\n");
    }
    out
}

fn brackets(shape: Shape) -> (&'static str, &'static str) {
    match shape {
        Shape::Box => ("[", "]"),
        Shape::Round => ("([", "])"),
        Shape::Diamond => ("{", "}"),
        Shape::Wait => ("[/", "/]"),
        Shape::Flow => ("[[", "]]"),
        Shape::Note => (">", "]"),
    }
}

/// A label's text for inside `"…"`: `"` as `#quot;`, and the characters
/// Mermaid would read as markup (`#` entities, `<`/`>` HTML, a backtick's
/// Markdown, `|` ending an edge label) as entities.
pub fn escape(label: &str) -> String {
    super::escape_with(label, |c| match c {
        '"' => Some("#quot;"),
        '#' => Some("#35;"),
        '<' => Some("#lt;"),
        '>' => Some("#gt;"),
        '`' => Some("#96;"),
        '|' => Some("#124;"),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn quotes_and_markup_become_entities() {
        assert_eq!(
            escape(r#"if contact.plan == "free" #1 <b>`x`|"#),
            "if contact.plan == #quot;free#quot; #35;1 #lt;b#gt;#96;x#96;#124;"
        );
    }
}
