//! `nudge check` and `nudge fmt` end to end: the conformance projects, the
//! JSON and GitHub formats, `--deny-warnings`, and `fmt --check`.

mod cli_support;

use cli_support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn scratch(test: &str) -> PathBuf {
    cli_support::scratch("cli_check", test)
}

fn project(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(test);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("dirs");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

#[test]
fn every_conformance_project_checks_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/conformance sits beside the repository")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 5,
        "expected the conformance projects in {}",
        root.display()
    );
    for dir in dirs {
        let run = nudge(&["check", s(&dir)]);
        assert_eq!(
            run.code,
            0,
            "{}:\n{}{}",
            dir.display(),
            run.stdout,
            run.stderr
        );
        let human = run.stdout;
        let run = nudge(&["check", "--format", "json", s(&dir)]);
        assert_eq!(run.code, 0);
        let report = json(&run);
        assert_eq!(report["errors"], 0, "{}", dir.display());
        // the projects predate postback deduplication (LANGUAGE.md A5):
        // a source without `dedupe` is the one warning they may give
        let others: Vec<&Value> = report["diagnostics"]
            .as_array()
            .expect("a list of diagnostics")
            .iter()
            .filter(|d| d["code"] != "nudge::analysis::source_without_dedupe")
            .collect();
        assert!(others.is_empty(), "{}: {others:?}", dir.display());
        if report["warnings"] == 0 {
            assert!(human.starts_with("no problems found in "), "{human}");
        }
    }
}

#[test]
fn json_positions_are_one_based_and_files_relative_to_path() {
    let dir = project(
        "json_positions",
        &[
            ("a.nudge", "event e {}\n"),
            (
                "flows/welcome.nudge",
                "event signup {}\n\nflow welcome {\n  when signup\n  sned email welcome\n}\n",
            ),
        ],
    );
    let run = nudge(&["check", "--format", "json", s(&dir)]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(run.stdout.ends_with("}\n") && run.stdout.lines().count() == 1);
    let report = json(&run);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["warnings"], 0);
    let d = &report["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "nudge::syntax::unexpected");
    assert_eq!(d["file"], "flows/welcome.nudge");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(5), Some(3))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(5), Some(7))
    );
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("found `sned`"))
    );
    let keys: Vec<&str> = d
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "severity",
        "code",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "help",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "every key is present, `help` too");

    // A single file is named by its file name.
    let run = nudge(&[
        "check",
        "--format",
        "json",
        s(&dir.join("flows/welcome.nudge")),
    ]);
    assert_eq!(json(&run)["diagnostics"][0]["file"], "welcome.nudge");
}

#[test]
fn json_of_a_clean_project() {
    let dir = project(
        "json_clean",
        &[(
            "a.nudge",
            "event signup {}\nflow hello { when signup\n log \"hi\" }\n",
        )],
    );
    let run = nudge(&["check", "--format", "json", s(&dir)]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout,
        "{\"diagnostics\":[],\"errors\":0,\"warnings\":0}\n"
    );
}

#[test]
fn files_are_checked_in_path_order() {
    let dir = project(
        "order",
        &[
            ("b.nudge", "flow b { sned }\n"),
            ("a/z.nudge", "flow z { sned }\n"),
            ("a.nudge", "flow a { sned }\n"),
        ],
    );
    let report = json(&nudge(&["check", "--format", "json", s(&dir)]));
    let files: Vec<&str> = report["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert_eq!(files, ["a.nudge", "a/z.nudge", "b.nudge"]);
}

#[test]
fn github_format_prints_workflow_commands() {
    let dir = project(
        "github",
        &[("flows/a.nudge", "event e {}\nflow f {\n  log \"abc\n}\n")],
    );
    // Run from the scratch directory's parent so the path is relative.
    let parent = dir.parent().expect("has a parent");
    let run = nudge_in(parent, &["check", "--format", "github", "github"]);
    assert_eq!(run.code, 1);
    // An absolute PATH inside the current directory gives the same names.
    let absolute = nudge_in(parent, &["check", "--format", "github", s(&dir)]);
    assert_eq!(absolute.stdout, run.stdout);
    assert_eq!(
        run.stdout,
        "::error file=github/flows/a.nudge,line=3,col=7,endLine=3,endColumn=8,\
         title=nudge%3A%3Asyntax%3A%3Aunterminated_string::this string is never closed\
         %0Ahelp: end the string with `\"` on the same line, or use `\"\"\"` for text over several lines\n"
    );
}

/// A duplicate declared in another file shows both places in every format.
#[test]
fn a_duplicate_in_another_file_shows_where_the_first_one_is() {
    let dir = project(
        "duplicate_across_files",
        &[
            ("a.nudge", "event sale {}\n"),
            (
                "b.nudge",
                "\nevent sale {}\n\nflow f {\n  when sale\n  log \"x\"\n}\n",
            ),
        ],
    );
    let run = nudge(&["check", "--format", "json", s(&dir)]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report = json(&run);
    let d = &report["diagnostics"][0];
    assert_eq!(report["errors"], 1);
    assert_eq!(d["code"], "nudge::resolve::duplicate");
    assert_eq!(
        (&d["file"], &d["line"], &d["column"]),
        (&"b.nudge".into(), &2.into(), &7.into())
    );
    assert_eq!(
        d["related"],
        serde_json::json!([{
            "file": "a.nudge", "line": 1, "column": 7, "end_line": 1, "end_column": 11,
            "message": "first declared here"
        }])
    );

    let parent = dir.parent().expect("has a parent");
    let run = nudge_in(
        parent,
        &["check", "--format", "github", "duplicate_across_files"],
    );
    assert_eq!(
        run.stdout,
        "::error file=duplicate_across_files/b.nudge,line=2,col=7,endLine=2,endColumn=11,\
         title=nudge%3A%3Aresolve%3A%3Aduplicate::event `sale` is declared more than once\
         %0Afirst declared here: duplicate_across_files/a.nudge:1:7\
         %0Ahelp: rename one of them or remove the duplicate\n\
         ::notice file=duplicate_across_files/a.nudge,line=1,col=7,endLine=1,endColumn=11,\
         title=nudge%3A%3Aresolve%3A%3Aduplicate::first declared here \
         (event `sale` is declared more than once)\n"
    );

    let run = nudge(&["check", s(&dir)]);
    let human = &run.stdout;
    let again = human.find("╭─[b.nudge:2:7]").expect(human);
    let note = human.find("☞ first declared here").expect(human);
    let first = human.find("╭─[a.nudge:1:7]").expect(human);
    assert!(again < note && note < first, "{human}");
    assert!(human.contains("╰── declared again here"), "{human}");
    assert_eq!(human.lines().last(), Some("error: 1 error"));

    // In one file, the first place stays a label of the same snippet.
    let one = project(
        "duplicate_in_one_file",
        &[("a.nudge", "event sale {}\nevent sale {}\n")],
    );
    let run = nudge(&["check", "--format", "json", s(&one)]);
    assert!(
        json(&run)["diagnostics"][0].get("related").is_none(),
        "{}",
        run.stdout
    );
    let run = nudge(&["check", s(&one)]);
    assert!(
        run.stdout.contains("╰── first declared here"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('☞'), "{}", run.stdout);
}

#[test]
fn human_format_ends_with_a_summary() {
    let dir = project(
        "human",
        &[
            ("a.nudge", "flow a { sned }\n"),
            ("b.nudge", "flow b { log \"x }\n"),
        ],
    );
    let run = nudge(&["check", s(&dir)]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("╭─[a.nudge:1:10]"), "{}", run.stdout);
    assert!(run.stdout.contains("╭─[b.nudge:1:14]"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no colour when NO_COLOR is set"
    );
    assert_eq!(run.stdout.lines().last(), Some("error: 2 errors"));

    let clean = project(
        "human_clean",
        &[
            ("a.nudge", "event e {}\nflow a { when e\n log \"x\" }\n"),
            ("b.nudge", "event f {}\nflow b { when f\n log \"y\" }\n"),
        ],
    );
    let run = nudge(&["check", s(&clean)]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "no problems found in 2 files\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    let run = nudge(&["check", "--format", "xml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid value 'xml'"), "{}", run.stderr);
    assert_eq!(nudge(&["check", "--no-such-flag"]).code, 2);
    assert_eq!(nudge(&[]).code, 2);
    let help = nudge(&["check", "--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("goes to stdout"),
        "--help says where output goes"
    );
}

#[test]
fn deny_warnings_turns_warnings_into_failure() {
    let dir = project("deny", &[("a.nudge", "event e {}\nflow f { log \"x\" }\n")]);
    let run = nudge(&["check", "--format", "json", s(&dir)]);
    assert_eq!(run.code, 0, "warnings alone pass");
    let report = json(&run);
    assert_eq!(report["errors"], 0);
    assert!(report["warnings"].as_u64().is_some_and(|w| w >= 1));
    assert!(run.stdout.contains("nudge::analysis::no_trigger"));
    let run = nudge(&["check", "--deny-warnings", s(&dir)]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("(denied by `--deny-warnings`)"),
        "{}",
        run.stdout
    );
    let run = nudge(&["check", "--deny-warnings", "--format", "github", s(&dir)]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("::warning file="), "{}", run.stdout);
}

#[test]
fn fmt_leaves_a_file_with_a_syntax_error_untouched() {
    let text = "flow   f {  sned  }\n";
    let dir = project(
        "fmt_syntax",
        &[("a.nudge", text), ("b.nudge", "event e {}\n")],
    );
    for args in [&["fmt", "--check"][..], &["fmt"]] {
        let mut args = args.to_vec();
        args.push(s(&dir));
        let run = nudge(&args);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(
            run.stderr.contains("nudge::syntax::unexpected"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("1 left untouched because of errors"),
            "{}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("a.nudge")).expect("read"),
            text
        );
    }
}

#[test]
fn fmt_then_fmt_check_is_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/postback_funnel");
    let dir = scratch("fmt_idempotent");
    for entry in std::fs::read_dir(&root).expect("conformance project") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("named"))).expect("copy");
    }
    let run = nudge(&["fmt", s(&dir)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let run = nudge(&["fmt", "--check", s(&dir)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing would change: {}",
        run.stdout
    );
    assert_eq!(run.stderr, "2 files already formatted\n");
    // Formatting keeps the project valid.
    assert_eq!(nudge(&["check", s(&dir)]).code, 0);
}

#[test]
fn fmt_check_lists_files_that_would_change() {
    let messy = "event   signup{}\nflow welcome{when signup\n log \"hi\"}\n";
    let dir = project("fmt_check", &[("a.nudge", messy), ("sub/b.nudge", messy)]);
    let run = nudge(&["fmt", "--check", s(&dir)]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "a.nudge\nsub/b.nudge\n");
    assert!(
        run.stderr.contains("2 files would be reformatted"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("a.nudge")).expect("read"),
        messy
    );
    let run = nudge(&["fmt", s(&dir)]);
    assert_eq!(run.code, 0);
    assert_ne!(
        std::fs::read_to_string(dir.join("a.nudge")).expect("read"),
        messy
    );
    assert_eq!(nudge(&["fmt", "--check", s(&dir)]).code, 0);
}
