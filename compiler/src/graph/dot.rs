//! Graphviz dot (`digraph`) for [`FlowGraph`]s: one `cluster` subgraph per
//! flow, every id and label quoted and escaped ([`escape`]).

use super::{FlowGraph, Shape};
use std::fmt::Write;

/// The digraph of `flows`.
pub fn render(flows: &[FlowGraph]) -> String {
    let mut out = String::from("digraph \"nudge\" {\n  rankdir=\"TB\";\n");
    for (i, flow) in flows.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "  subgraph \"cluster_f{i}\" {{");
        let _ = writeln!(out, "    label=\"{}\";", escape(&flow.heading));
        for node in &flow.nodes {
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{}\", shape=\"{}\"];",
                node.id,
                escape(&node.label),
                shape(node.shape)
            );
        }
        for edge in &flow.edges {
            let _ = match &edge.label {
                Some(l) => writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [label=\"{}\"];",
                    edge.from,
                    edge.to,
                    escape(l)
                ),
                None => writeln!(out, "    \"{}\" -> \"{}\";", edge.from, edge.to),
            };
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

fn shape(shape: Shape) -> &'static str {
    match shape {
        Shape::Box => "box",
        Shape::Round => "oval",
        Shape::Diamond => "diamond",
        Shape::Wait => "parallelogram",
        Shape::Flow => "component",
        Shape::Note => "note",
    }
}

/// A string's text for inside `"…"`: `\` and `"` escaped, line breaks as
/// spaces.
pub fn escape(text: &str) -> String {
    super::escape_with(text, |c| match c {
        '\\' => Some("\\\\"),
        '"' => Some("\\\""),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn backslashes_and_quotes_are_escaped() {
        assert_eq!(escape(r#"a "b" \n c"#), r#"a \"b\" \\n c"#);
    }
}
