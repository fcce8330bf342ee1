//! `docs/language.md` is checked against the real binary.
//!
//! The page marks its fenced code blocks by their info string:
//!
//! * ```` ```nudge ```` — a complete project that must pass
//!   `nudge check --deny-warnings` with no diagnostic at all;
//! * ```` ```nudge,fails ```` — an example of a diagnostic: it must give the
//!   code of the `#### `nudge::…`` section it sits in;
//! * ```` ```nudge,ignore ```` — a fragment that cannot be checked alone;
//! * anything else (```` ```text ````, ```` ```sh ````) — not Nudge, skipped.
//!
//! Each checked block is written as `main.nudge` in its own scratch folder
//! under `CARGO_TARGET_TMPDIR` and checked there. A second test makes sure
//! every code that has a case folder in `tests/cases/` has its section on the
//! page, and that the page documents no code without one.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One fenced block of the page.
struct Block {
    /// The info string after the opening fence (`nudge`, `nudge,fails`, …).
    info: String,
    text: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The code of the diagnostic section the block is in, if any.
    section: Option<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn page() -> String {
    std::fs::read_to_string(root().join("docs/language.md")).expect("docs/language.md exists")
}

/// The code named by a heading like ``#### `nudge::types::mismatch` ``.
fn section_code(line: &str) -> Option<String> {
    let rest = line.strip_prefix("#### `")?;
    let code = rest.strip_suffix('`')?;
    code.starts_with("nudge::").then(|| code.to_string())
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = None;
    let mut open: Option<Block> = None;
    for (i, line) in page.lines().enumerate() {
        match open.as_mut() {
            Some(b) => {
                if line.trim_end() == "```" {
                    out.push(open.take().unwrap());
                } else {
                    b.text.push_str(line);
                    b.text.push('\n');
                }
            }
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_string(),
                        text: String::new(),
                        line: i + 1,
                        section: section.clone(),
                    });
                } else if line.starts_with('#') {
                    section = section_code(line);
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "docs/language.md has an unclosed code block"
    );
    out
}

/// Run `nudge check --format json EXTRA… DIR` on the block; exit code and JSON.
fn check(block: &Block, index: usize, extra: &[&str]) -> (i32, Value, String) {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("docs_language")
        .join(format!("block_{index}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.nudge"), &block.text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("check")
        .args(["--format", "json"])
        .args(extra)
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let report = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), json, report)
}

fn codes(json: &Value) -> Vec<String> {
    json["diagnostics"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .filter_map(|d| d["code"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn valid_examples_check_clean() {
    let page = page();
    let all = blocks(&page);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, b) in all.iter().enumerate().filter(|(_, b)| b.info == "nudge") {
        checked += 1;
        let (code, json, report) = check(b, i, &["--deny-warnings"]);
        let clean = json["diagnostics"].as_array().is_some_and(|d| d.is_empty());
        if code != 0 || !clean {
            failures.push(format!(
                "block at docs/language.md:{} (exit {code}):\n{report}",
                b.line
            ));
        }
    }
    assert!(
        checked >= 10,
        "only {checked} ```nudge blocks found: is the fence convention still followed?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn failing_examples_give_their_sections_code() {
    let page = page();
    let all = blocks(&page);
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, b) in all
        .iter()
        .enumerate()
        .filter(|(_, b)| b.info == "nudge,fails")
    {
        checked += 1;
        let Some(want) = &b.section else {
            failures.push(format!(
                "block at docs/language.md:{} is `nudge,fails` outside a diagnostic section",
                b.line
            ));
            continue;
        };
        let (_, json, report) = check(b, i, &[]);
        if !codes(&json).contains(want) {
            failures.push(format!(
                "block at docs/language.md:{} should give `{want}`:\n{report}",
                b.line
            ));
        }
    }
    assert!(checked >= 10, "only {checked} ```nudge,fails blocks found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_code_has_a_section_and_no_other() {
    let page = page();
    let documented: BTreeSet<String> = page.lines().filter_map(section_code).collect();
    let cases: BTreeSet<String> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // `resolve_unknown_name.message_field`: a variant of one code
            let name = name.split_once('.').map_or(name.as_str(), |(c, _)| c);
            let (stage, rest) = name.split_once('_').unwrap();
            format!("nudge::{stage}::{rest}")
        })
        .collect();
    let missing: Vec<&String> = cases.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "codes with a case folder but no `#### `code`` section in docs/language.md: {missing:?}"
    );
    let stale: Vec<&String> = documented.difference(&cases).collect();
    assert!(
        stale.is_empty(),
        "docs/language.md documents codes with no case folder in tests/cases: {stale:?}"
    );
    for code in &cases {
        assert!(
            page.contains(&format!("<a id=\"{code}\"></a>")),
            "`{code}` has no anchor `<a id=\"{code}\"></a>`"
        );
    }
}
