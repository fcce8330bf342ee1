//! Diagnostic case folders: `tests/cases/<stage>_<name>/` holds a small
//! project that must trigger `nudge::<stage>::<name>` (the stage is the part
//! of the folder name before the first `_`). Every folder is picked up
//! automatically: add one and run the tests. A second folder for one code
//! (a specific help of that code) adds `.<variant>`:
//! `resolve_unknown_name.message_field` must trigger `nudge::resolve::unknown_name`.
//!
//! For each folder the real binary runs `nudge check --format json` and
//! `nudge check` (human, `NO_COLOR=1`, `COLUMNS=100`); both outputs are
//! insta snapshots named after the folder (`tests/snapshots/`), and the
//! folder's code must appear in the JSON diagnostics.
//!
//! Bless new or changed snapshots with one command:
//!
//!     INSTA_UPDATE=always cargo test --test diagnostic_cases
//!
//! (or `cargo insta accept` after a failing run), then review the diff.
//!
//! A folder may hold a `generate` file instead of committing a big input:
//! each line `NAME BYTES` asks for a file NAME of BYTES bytes of comment
//! lines; the folder is copied to a scratch directory and expanded there.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn case_folders() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(cases_dir())
        .expect("tests/cases exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p.file_name().expect("named").to_string_lossy().into_owned();
            (name, p)
        })
        .collect();
    out.sort();
    out
}

/// `syntax_unterminated_string` → `nudge::syntax::unterminated_string`;
/// a `.variant` suffix is not part of the code.
fn expected_code(folder: &str) -> String {
    let folder = folder.split_once('.').map_or(folder, |(code, _)| code);
    let (stage, name) = folder
        .split_once('_')
        .unwrap_or_else(|| panic!("case folder `{folder}` is not named `<stage>_<name>`"));
    format!("nudge::{stage}::{name}")
}

/// The folder itself, or an expanded copy when it has a `generate` file.
fn prepare(name: &str, dir: &Path) -> PathBuf {
    let recipe = dir.join("generate");
    if !recipe.exists() {
        return dir.to_path_buf();
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cases")
        .join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("scratch dir");
    for entry in std::fs::read_dir(dir).expect("case dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "generate") {
            std::fs::copy(&path, out.join(path.file_name().expect("named"))).expect("copy");
        }
    }
    let recipe = std::fs::read_to_string(recipe).expect("generate is text");
    for line in recipe.lines().filter(|l| !l.trim().is_empty()) {
        let (file, bytes) = line.split_once(' ').expect("`NAME BYTES`");
        let bytes: usize = bytes.trim().parse().expect("BYTES is a number");
        let filler = "// generated filler, to make this file larger than the limit\n";
        let mut text = filler.repeat(bytes / filler.len() + 1);
        text.truncate(bytes);
        std::fs::write(out.join(file), text).expect("write generated file");
    }
    out
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(dir: &Path, format: &str) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["check", "--format", format])
        .arg(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Trailing spaces that miette leaves on empty source lines are dropped, so
/// an editor that trims them cannot break a snapshot.
fn trim_lines(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check_case(name: &str, dir: &Path) {
    let code = expected_code(name);
    let dir = prepare(name, dir);

    let json = check(&dir, "json");
    assert!(!json.stderr.contains("panicked"), "{name}: {}", json.stderr);
    assert!(
        json.stderr.is_empty(),
        "{name}: unexpected stderr: {}",
        json.stderr
    );
    let report: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("{name}: stdout is not JSON ({e}): {}", json.stdout));
    let codes: Vec<&str> = report["diagnostics"]
        .as_array()
        .expect("diagnostics is a list")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(
        codes.contains(&code.as_str()),
        "{name}: `{code}` not among {codes:?}"
    );
    let errors = report["errors"].as_u64().expect("errors is a number");
    assert_eq!(
        json.code,
        if errors > 0 { 1 } else { 0 },
        "{name}: exit code"
    );
    insta::assert_json_snapshot!(format!("{name}.json"), report);

    let human = check(&dir, "human");
    assert!(
        human.stderr.is_empty(),
        "{name}: unexpected stderr: {}",
        human.stderr
    );
    assert_eq!(
        human.code, json.code,
        "{name}: same exit code in both formats"
    );
    assert!(
        human.stdout.contains(&code),
        "{name}: `{code}` not in the human report"
    );
    let human_report = format!("exit code: {}\n\n{}", human.code, trim_lines(&human.stdout));
    insta::assert_snapshot!(format!("{name}.human"), human_report);
}

#[test]
fn every_case_folder_triggers_its_diagnostic() {
    let folders = case_folders();
    assert!(!folders.is_empty(), "no case folders in tests/cases");
    // Run every folder, then report all failures together.
    let failed: Vec<String> = folders
        .iter()
        .filter(|(name, dir)| std::panic::catch_unwind(|| check_case(name, dir)).is_err())
        .map(|(name, _)| name.clone())
        .collect();
    assert!(failed.is_empty(), "failing case folders: {failed:?}");
}

#[test]
fn folder_names_map_to_codes() {
    assert_eq!(
        expected_code("syntax_unterminated_string"),
        "nudge::syntax::unterminated_string"
    );
    assert_eq!(expected_code("io_invalid_utf8"), "nudge::io::invalid_utf8");
    assert_eq!(
        expected_code("resolve_unknown_name.message_field"),
        "nudge::resolve::unknown_name"
    );
}
