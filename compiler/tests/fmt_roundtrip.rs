//! `nudge fmt` guarantees: the formatted text parses to the same tree (spans
//! and string spelling aside) with the same comments in order, and formatting
//! is idempotent. Checked on the conformance projects, on generated programs,
//! and against exact expected layouts.

mod fmt_support;

use fmt_support::{check, comment_texts, programs};
use nudge_compiler::fmt::format_source;
use nudge_grammar::span::FileId;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance");

fn nudge_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the conformance directory is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            nudge_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push(path);
        }
    }
}

fn fmt(text: &str) -> String {
    format_source(FileId(0), text).expect("formats")
}

#[test]
fn conformance_files_round_trip() {
    let mut files = Vec::new();
    nudge_files(Path::new(CONFORMANCE), &mut files);
    assert!(
        files.len() >= 10,
        "expected the conformance files, found {files:?}"
    );
    for path in files {
        let source = std::fs::read_to_string(&path).expect("readable");
        let formatted = check(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let before = nudge_grammar::parse(FileId(0), &source).expect("parses");
        let after = nudge_grammar::parse(FileId(0), &formatted).expect("parses");
        assert_eq!(
            before.comments.len(),
            after.comments.len(),
            "{}",
            path.display()
        );
        assert_eq!(
            comment_texts(&before),
            comment_texts(&after),
            "{}",
            path.display()
        );
    }
}

#[test]
fn one_line_input_becomes_the_canonical_layout() {
    assert_eq!(
        fmt("flow a{when x;wait 3d;send bot \"hi\"}"),
        "flow a {\n  when x\n  wait 3 days\n  send bot \"hi\"\n}\n"
    );
}

#[test]
fn declarations_are_separated_and_blank_lines_kept_once() {
    let source = "event a {}\nevent b { x: int, y: text? }\nflow f {\n  when a\n\n\n\n  step s { log \"1\"\n\n log \"2\" }\n}";
    let expected = "event a {}\n\nevent b { x: int, y: text? }\n\nflow f {\n  when a\n\n  step s {\n    log \"1\"\n\n    log \"2\"\n  }\n}\n";
    assert_eq!(fmt(source), expected);
}

#[test]
fn durations_rates_and_strings_are_canonical() {
    let source = "channel c: http { rate = 50 per seconds, cap = 3 per 1d, url = \"a\\\"b\\\\c\\u{e9}\" }\nflow f { wait 1h 30m within 1w else exit; wait 1 days }";
    let expected = "channel c: http {\n  rate = 50 per second\n  cap = 3 per 1 day\n  url = \"a\\\"b\\\\cé\"\n}\n\nflow f {\n  wait 1 hour 30 minutes within 1 week else exit\n  wait 1 day\n}\n";
    assert_eq!(fmt(source), expected);
}

#[test]
fn multi_line_strings_are_indented_under_their_statement() {
    let source =
        "template t: email {\ntext = \"\"\"\n        Hi,\n          there\n        \"\"\"\n}";
    let expected = "template t: email {\n  text = \"\"\"\n    Hi,\n      there\n  \"\"\"\n}\n";
    assert_eq!(fmt(source), expected);
}

#[test]
fn parentheses_are_kept_only_where_written() {
    let source = "define x = (a + b) * c == d and not (e or f) ?? 1\ndefine y = (((a)))";
    let expected = "define x = (a + b) * c == d and not (e or f) ?? 1\n\ndefine y = (((a)))\n";
    assert_eq!(fmt(source), expected);
}

#[test]
fn short_bodies_stay_on_one_line_and_blocks_open_up() {
    let source = "flow f { on sale -> goto first ; on w -> { tag \"w\"; goto x } wait { on a -> exit after 3d -> { log \"l\" } } split { 50% -> exit 50% -> goto y } if a { exit } else if b {} else { stop f } }";
    let expected = "\
flow f {
  on sale -> goto first
  on w -> {
    tag \"w\"
    goto x
  }
  wait {
    on a -> exit
    after 3 days -> {
      log \"l\"
    }
  }
  split {
    50% -> exit
    50% -> goto y
  }
  if a {
    exit
  } else if b {} else {
    stop f
  }
}
";
    assert_eq!(fmt(source), expected);
}

#[test]
fn comments_stay_where_they_were() {
    let source = "\
// file header

/// The doc.
flow f { // after the brace
  when x // trailing
  // before a step

  step s {
    log \"a\" /* inside */ ; log \"b\"
    // at the end of the step
  }
} // after the flow
// end of file
";
    let expected = "\
// file header

/// The doc.
flow f { // after the brace
  when x // trailing
  // before a step

  step s {
    log \"a\" /* inside */
    log \"b\"
    // at the end of the step
  }
} // after the flow
// end of file
";
    assert_eq!(fmt(source), expected);
    check(source).expect("round trips");
}

#[test]
fn statement_braces_stay_inline_when_short() {
    let source = "test \"t\" { contact { email = \"a@b.c\",\n name = \"A\" }\n event e { x = 1 } for bob\n expect sent c t where message.text contains \"x\" }";
    let expected = "test \"t\" {\n  contact { email = \"a@b.c\", name = \"A\" }\n  event e { x = 1 } for bob\n  expect sent c t where message.text contains \"x\"\n}\n";
    assert_eq!(fmt(source), expected);
}

#[test]
fn a_doc_comment_never_joins_another_declaration() {
    // `/// b` trails `a`'s line in the source: it is `b`'s doc and stays so.
    check("define a = 1 /// b\nflow b {}").expect("round trips");
    // A `///` inside an expression is no one's doc, even once moved.
    check("flow f {\n  set contact.x = [1, /// not a doc\n 2]\n  step s {}\n}")
        .expect("round trips");
}

#[test]
fn comments_in_awkward_places_round_trip() {
    for source in [
        "flow f /* a */ \"T\" /* b */ { /* c */ when x /* d */ }",
        "flow f { if a /* c */ { log \"x\" } /* d */ else /* e */ if b { } // f\n else { } }",
        "flow f { if a { // only\n } }",
        "flow f { wait /* a */ { /* b */ on x -> exit /* c */ } /* d */ within 3d /* e */ else /* f */ { exit } }",
        "flow f { wait { } within 1d }",
        "event sale /* c */ { a: int }",
        "event sale // c\n { a: int }",
        "event sale // c\n\nflow f {}",
        "test \"t\" { event sale /* a */ { x = 1 /* b */ } /* c */ for bob }",
        "test \"t\" { contact /* a */ bob { } }",
        "flow f { send bot /* a */ { subject = \"s\" /* b */ } /* c */ to x force }",
        "flow f { call \"u\" with { a = 1, // x\n b = 2 } as r }",
        "flow f { emit e /* a */ { } }",
        "source s: postback { rename { \"a\" = b // c\n } fields { // d\n } }",
        "\u{FEFF}// bom\nflow f {}",
        "flow f { step a { window 09:00..10:00 // w\n log \"x\" } }",
        "flow f { step a { log \"x\" window 09:00..10:00 local } }",
        "flow f {\n  /// doc a\n  step a {}\n  /// doc b\n\n  step b { log \"x\" } /// doc c\n  step c {}\n}",
        "/// a\n/// b\n\n/// c\nflow f {}",
        "define a = 1 //// not doc\nflow f {}",
        "define a = 1 // x\n/// d\nflow f {}",
        "define a = 1 // x\n/* y */ /// d\nflow f {}",
        "flow f { set contact.x = [1, // a\n /* b */ 2, /// c\n 3] }",
        "flow f { log \"\"\"\n   a\n  \"\"\" /* after */ }",
        "flow f {\r\n  log \"\"\"\r\n    a  \r\n\r\n      b\r\n    \"\"\"\r\n}\r\n",
        "flow f { split { 50% -> { } 50% -> exit } }",
        "contact {}\ntest \"t\" {}\n// the end",
        "// only a comment",
        "/* a */ /* b */ flow f {} /* c */ /* d */",
    ] {
        check(source).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn syntax_errors_are_returned() {
    assert!(format_source(FileId(0), "flow {").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_programs_round_trip(source in programs::program()) {
        if let Err(e) = check(&source) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn a_time_trigger_keeps_its_late() {
    assert_eq!(
        fmt(
            "flow f { when contact.paid_at + 7d late 2d where contact.plan == \"pro\"  log \"x\" }"
        ),
        "flow f {\n  when contact.paid_at + 7 days late 2 days where contact.plan == \"pro\"\n  log \"x\"\n}\n"
    );
}
