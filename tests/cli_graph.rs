//! `nudge graph` end to end: Mermaid and dot snapshots of every project in
//! `examples/` and of `tests/fixtures/graph_all` (every construct drawn),
//! Graphviz `dot -Tsvg` accepting each dot output, `--flow`, an unknown
//! flow (exit 2, the flows listed) and a project with errors (exit 1).
//!
//! Bless changed snapshots with `INSTA_UPDATE=always cargo test --test cli_graph`.

mod cli_support;

use cli_support::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every example project and the fixture with every construct, by name.
fn projects() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            (
                p.file_name().expect("named").to_string_lossy().into_owned(),
                p,
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 2, "expected the example projects");
    out.push((
        "graph_all".to_string(),
        root.join("tests/fixtures/graph_all"),
    ));
    out
}

fn graph(dir: &Path, format: &str) -> String {
    let run = nudge(&["graph", s(dir), "--format", format]);
    assert_eq!(run.code, 0, "{}: {}", dir.display(), run.all());
    assert_eq!(run.stderr, "");
    run.stdout
}

#[test]
fn mermaid_of_every_project() {
    for (name, dir) in projects() {
        let out = graph(&dir, "mermaid");
        assert!(out.starts_with("flowchart TD\n"), "{out}");
        insta::assert_snapshot!(format!("graph_{name}_mermaid"), out);
    }
}

#[test]
fn dot_of_every_project() {
    for (name, dir) in projects() {
        insta::assert_snapshot!(format!("graph_{name}_dot"), graph(&dir, "dot"));
    }
}

/// Fails (does not skip) without Graphviz: `.ci/run` installs it.
#[test]
fn graphviz_accepts_every_dot_output() {
    for (name, dir) in projects() {
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Graphviz `dot` is installed (apt-get install graphviz)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(graph(&dir, "dot").as_bytes())
            .expect("dot reads its input");
        let out = child.wait_with_output().expect("dot ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: dot refused: {stderr}");
        assert!(stderr.is_empty(), "{name}: dot warned: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("<svg"),
            "{name}"
        );
    }
}

#[test]
fn mermaid_labels_are_quoted_and_ids_safe() {
    let out = graph(Path::new("tests/fixtures/graph_all"), "mermaid");
    for line in out.lines().skip(1).map(str::trim) {
        if line == "end" {
            continue;
        }
        let id: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!id.is_empty(), "no safe id: {line}");
        let quotes = line.matches('"').count();
        assert!(
            quotes == 0 || quotes == 2,
            "one quoted label per line: {line}"
        );
    }
    assert!(out.contains("#quot;warm#quot; #lt;up#gt;"), "{out}");
}

#[test]
fn flow_option_draws_one_flow() {
    let run = nudge(&["graph", "examples/quickstart", "--flow", "upgrades"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("flow upgrades: Upgrades"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("onboarding"), "{}", run.stdout);
}

#[test]
fn unknown_flow_is_a_usage_error_listing_the_flows() {
    let run = nudge(&["graph", "examples/quickstart", "--flow", "nope"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: no flow `nope`; the flows are: onboarding, upgrades\n"
    );
}

#[test]
fn a_project_with_errors_reports_its_diagnostics() {
    let dir = scratch("cli_graph", "errors");
    std::fs::write(
        dir.join("a.nudge"),
        "flow f { when nothing\n goto nowhere }\n",
    )
    .expect("write");
    let run = nudge(&["graph", s(&dir)]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("nudge::resolve::"), "{}", run.stderr);
    assert!(run.stderr.contains("error"), "{}", run.stderr);
}
