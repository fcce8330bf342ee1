//! `nudge test` end to end, through the real binary: every conformance
//! project and example passes; the `wrong_expectations` fixture, whose tests
//! are all wrong on purpose, fails test by test with the statement that
//! failed and what was found instead; each of those tests passes once its
//! last statement is put right (so it fails for that one reason only);
//! `--filter`, `--trace`, and a project that does not compile.

#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/wrong_expectations")
}

fn scratch(test: &str) -> PathBuf {
    cli_support::scratch("cli_test", test)
}

/// Every `*.nudge` file below `dir`, sorted.
fn nudge_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("project dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(nudge_files(&path));
        } else if path.extension().is_some_and(|e| e == "nudge") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The names of the `test "…"` blocks of a project, in bundle order.
fn test_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for file in nudge_files(dir) {
        let text = std::fs::read_to_string(&file).expect("read");
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("test \"") {
                names.push(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    names
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// The report of one test: its header line and what follows up to the next test.
fn section<'a>(stdout: &'a str, name: &str) -> &'a str {
    // Leave out the summary line.
    let body = stdout.trim_end_matches('\n');
    let stdout = &body[..body.rfind('\n').map_or(0, |i| i + 1)];
    let start = ["ok   ", "FAIL "]
        .iter()
        .find_map(|p| stdout.find(&format!("{p}{name} (")))
        .unwrap_or_else(|| panic!("no line for test `{name}` in:\n{stdout}"));
    let rest = &stdout[start..];
    let end = rest[1..]
        .find("\nok   ")
        .into_iter()
        .chain(rest[1..].find("\nFAIL "))
        .min()
        .map_or(rest.len(), |i| i + 2);
    &rest[..end]
}

fn projects() -> Vec<PathBuf> {
    let conformance = root().join("tests/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&conformance)
        .expect("tests/conformance sits beside the repository")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "expected the conformance projects");
    dirs.push(root().join("examples/affiliate_funnel"));
    dirs
}

#[test]
fn every_conformance_project_and_example_passes() {
    for dir in projects() {
        let names = test_names(&dir);
        assert!(!names.is_empty(), "{} has no tests", dir.display());
        let run = nudge(&["test", s(&dir)]);
        assert_eq!(
            run.code,
            0,
            "{}:\n{}{}",
            dir.display(),
            run.stdout,
            run.stderr
        );
        assert_eq!(
            last_line(&run.stdout),
            format!("{} passed, 0 failed", names.len()),
            "{}",
            dir.display()
        );
        for name in &names {
            assert!(
                section(&run.stdout, name).starts_with(&format!("ok   {name} (")),
                "{name}"
            );
        }
        assert!(run.stderr.is_empty(), "{}", run.stderr);
    }
}

/// One wrong test of the fixture: the statement that must fail, fragments
/// of the report that say what was found instead, and the statement that
/// puts it right.
struct Wrong {
    name: &'static str,
    statement: &'static str,
    found: &'static [&'static str],
    right: &'static str,
}

const WRONG: &[Wrong] = &[
    Wrong {
        name: "wrong step: the lead is still at the welcome step",
        statement: "expect in onboarding.cold",
        found: &["but it is at step `welcome`"],
        right: "expect in onboarding.welcome",
    },
    Wrong {
        name: "timer not due yet: the reminder is a day away, not 23 hours",
        statement: "expect sent sms",
        found: &[
            "expected a message sent to `sms`, found none",
            "at 2026-01-01T23:00:00Z",
            "(waiting; next timer at 2026-01-02T00:00:00Z)",
        ],
        right: "expect not sent sms",
    },
    Wrong {
        name: "timer not due yet: one second before the reminder",
        statement: "expect sent sms where message.text contains \"Reminder\"",
        found: &[
            "at 2026-01-01T23:59:59Z",
            "(waiting; next timer at 2026-01-02T00:00:00Z)",
        ],
        right: "expect not sent sms",
    },
    Wrong {
        name: "wrong value: one deposit is not two",
        statement: "expect contact.deposits == 2",
        found: &[
            "expected the condition to hold, but it does not",
            "deposits = 1,",
            "completed `deposits` at step `count`",
        ],
        right: "expect contact.deposits == 1",
    },
    Wrong {
        name: "wrong value of a named contact: bob deposited, not ann",
        statement: "expect ann.deposits == 1",
        found: &[
            "contact `ann`:\n       fields: clickid = \"ck-ann\", deposits = 0,",
            "       in no flow",
            "deposits = 1, phone = \"+393331112206\", tags = []\n       completed `deposits`",
        ],
        right: "expect ann.deposits == 0",
    },
    Wrong {
        name: "consumed twice: one welcome e-mail cannot match two expectations",
        statement: "expect sent email welcome",
        found: &[
            "expected a message sent to `email` with template `welcome`, found none",
            "no unconsumed messages",
        ],
        right: "expect nothing sent",
    },
    Wrong {
        name: "unconsumed: the reminder is left over",
        statement: "expect nothing sent",
        found: &[
            "expected nothing sent, but found 1: sms \"Reminder: your bonus expires in 3 days.\"",
        ],
        right: "expect sent sms where message.text contains \"Reminder\"",
    },
    Wrong {
        name: "wrong where on a message: the lead has no first name",
        statement: "expect sent email welcome where message.subject == \"Welcome, Ann!\"",
        found: &["email \"Welcome, friend!\" (template welcome) to cy@example.com"],
        right: "expect sent email welcome where message.subject == \"Welcome, friend!\"",
    },
    Wrong {
        name: "wrong not enrolled: a registration enrolls",
        statement: "expect not enrolled onboarding",
        found: &["expected the contact not to be in flow `onboarding`, but it is"],
        right: "expect enrolled onboarding",
    },
    Wrong {
        name: "wrong enrolled: no deposit, no deposits flow",
        statement: "expect enrolled deposits",
        found: &["expected the contact in flow `deposits`, but it is not"],
        right: "expect not enrolled deposits",
    },
    Wrong {
        name: "wrong completed: the lead is still waiting for a sale",
        statement: "expect completed onboarding",
        found: &["but it is still in it, at step `welcome`"],
        right: "expect in onboarding.welcome",
    },
    Wrong {
        name: "wrong exited: a deposit converts",
        statement: "expect exited onboarding",
        found: &[
            "but it is converted",
            "converted `onboarding` at step `welcome`",
        ],
        right: "expect converted onboarding",
    },
    Wrong {
        name: "wrong converted: without a deposit the lead goes cold and exits",
        statement: "expect converted onboarding",
        found: &["but it is exited", "exited `onboarding` at step `cold`"],
        right: "expect exited onboarding",
    },
    Wrong {
        name: "wrong where on a call: the CRM hears about a lead, not a depositor",
        statement: "expect called crm where request.json.stage == \"depositor\"",
        found: &[
            "expected a call to `crm` matching the condition, found POST https://crm.example/api/leads",
        ],
        right: "expect called crm where request.json.stage == \"lead\"",
    },
    Wrong {
        name: "wrong not sent: every deposit is acknowledged",
        statement: "expect not sent sms",
        found: &["but one was sent: sms \"Deposit received, thank you!\""],
        right: "expect sent sms where message.text == \"Deposit received, thank you!\"",
    },
    Wrong {
        name: "a postback for an unknown click is held, not applied",
        statement: "expect in onboarding.welcome",
        found: &["but it is not in flow `onboarding`"],
        right: "expect not enrolled onboarding",
    },
    Wrong {
        name: "a postback with the wrong token is refused",
        statement: "postback partner { clickid = \"ck-17\", status = \"reg\", txid = \"t-4\", token = \"guess\" }",
        found: &["postback refused: wrong or missing token"],
        right: "postback partner { clickid = \"ck-17\", status = \"reg\", txid = \"t-4\", token = \"s3cret\" }\n  expect in onboarding.welcome",
    },
];

/// The 1-based line of the last statement of each test block, by name.
fn last_statements(file: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(file).expect("read");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut last = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("test \"") {
            current = Some(rest.split('"').next().unwrap().to_string());
        } else if t == "}" {
            if let Some(name) = current.take() {
                out.push((name, last));
            }
        } else if current.is_some() && !t.is_empty() && !t.starts_with("//") {
            last = i + 1;
        }
    }
    out
}

#[test]
fn the_fixture_passes_check() {
    let run = nudge(&["check", s(&fixture())]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("no problems found in 2 files"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_wrong_expectation_fails_with_what_was_found() {
    let names = test_names(&fixture());
    assert_eq!(names.len(), WRONG.len(), "one table entry per fixture test");
    let lines = last_statements(&fixture().join("wrong_tests.nudge"));
    let run = nudge(&["test", s(&fixture())]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        format!("0 passed, {} failed", WRONG.len())
    );
    for w in WRONG {
        let report = section(&run.stdout, w.name);
        assert!(
            report.starts_with(&format!("FAIL {} (", w.name)),
            "{report}"
        );
        // It fails at its last statement: everything before it held.
        let (_, line) = lines.iter().find(|(n, _)| n == w.name).unwrap();
        assert!(
            report.contains(&format!(
                "\n  --> wrong_tests.nudge:{line}\n   | {}\n",
                w.statement
            )),
            "`{}` should fail at line {line}, `{}`:\n{report}",
            w.name,
            w.statement
        );
        for fragment in w.found {
            assert!(
                report.contains(fragment),
                "`{fragment}` missing in:\n{report}"
            );
        }
    }
}

#[test]
fn each_wrong_test_passes_once_its_last_statement_is_right() {
    let dir = scratch("twin");
    std::fs::copy(fixture().join("funnel.nudge"), dir.join("funnel.nudge")).unwrap();
    let text = std::fs::read_to_string(fixture().join("wrong_tests.nudge")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (name, line) in last_statements(&fixture().join("wrong_tests.nudge")) {
        let w = WRONG.iter().find(|w| w.name == name).unwrap();
        let slot = &mut lines[line - 1];
        assert_eq!(slot.trim(), w.statement, "{name}");
        *slot = format!("  {}", w.right);
    }
    std::fs::write(dir.join("right_tests.nudge"), lines.join("\n")).unwrap();
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        format!("{} passed, 0 failed", WRONG.len())
    );
}

#[test]
fn filter_runs_only_the_tests_whose_name_contains_it() {
    let run = nudge(&["test", s(&fixture()), "--filter", "wrong value"]);
    assert_eq!(run.code, 1);
    assert_eq!(last_line(&run.stdout), "0 passed, 2 failed");
    assert!(
        run.stdout
            .contains("FAIL wrong value: one deposit is not two (")
    );
    assert!(run.stdout.contains("FAIL wrong value of a named contact"));
    assert!(!run.stdout.contains("wrong step"), "{}", run.stdout);

    let funnel = root().join("tests/conformance/postback_funnel");
    let run = nudge(&["test", s(&funnel), "--filter", "repeat deposits"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout,
        "ok   repeat deposits are told apart by number (funnel_tests.nudge:25)\n1 passed, 0 failed\n"
    );

    let run = nudge(&["test", s(&funnel), "--filter", "no such test"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "0 passed, 0 failed\n");
}

#[test]
fn trace_prints_each_statement_and_the_journey() {
    let funnel = root().join("tests/conformance/postback_funnel");
    let plain = nudge(&["test", s(&funnel), "--filter", "a sale moves"]);
    assert!(!plain.stdout.contains(" | "), "{}", plain.stdout);

    let run = nudge(&["test", s(&funnel), "--filter", "a sale moves", "--trace"]);
    assert_eq!(run.code, 0);
    for line in [
        "      18 | after 2 hours",
        "         | 2026-01-01T00:00:00Z contact-1 fd.reg: entered step `reg`",
        "         | 2026-01-01T00:00:00Z contact-1 fd.reg: sent to `bot`",
        "         | 2026-01-01T02:00:00Z contact-1 fd.reg: handler on `sale`",
        "         | 2026-01-01T02:00:00Z contact-1 rd: entered the flow",
        "         | 2026-01-01T02:00:00Z contact-1 fd.reg: left for flow `rd`",
        "      22 | expect contact.deposits == 1",
    ] {
        assert!(
            run.stdout.contains(&format!("{line}\n")),
            "`{line}` in:\n{}",
            run.stdout
        );
    }

    // A failing test's trace shows the timers that fired and stops at the
    // statement that failed.
    let run = nudge(&[
        "test",
        s(&fixture()),
        "--filter",
        "wrong converted",
        "--trace",
    ]);
    let trace = section(
        &run.stdout,
        "wrong converted: without a deposit the lead goes cold and exits",
    );
    for line in [
        "| 2026-01-02T00:00:00Z contact-1 onboarding.welcome: sent to `sms`",
        "| 2026-01-05T00:00:00Z contact-1 onboarding.cold: entered step `cold`",
        "| 2026-01-05T00:00:00Z contact-1 onboarding.cold: exited",
    ] {
        assert!(trace.contains(line), "`{line}` in:\n{trace}");
    }
    let last_trace = trace.lines().last().unwrap();
    assert!(
        last_trace.ends_with("| expect converted onboarding"),
        "{trace}"
    );
}

#[test]
fn a_project_that_does_not_compile_runs_no_test() {
    let dir = scratch("syntax_error");
    std::fs::write(
        dir.join("a.nudge"),
        "contact { email: email? }\n\
         event ping {}\n\
         flow f {\n  when ping\n  wait 1 day\n}\n\
         test \"fine\" {\n  contact { email = \"a@b.example\" }\n  expect not enrolled f\n}\n\
         test \"broken\" {\n  contact { email = \"a@b.example\"\n  expect enrolled f\n}\n",
    )
    .unwrap();
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "", "no test runs");
    assert!(
        run.stderr.contains("nudge::syntax::unexpected"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("a.nudge:13:3"), "{}", run.stderr);
    assert!(run.stderr.contains("error: 1 error"), "{}", run.stderr);

    // A name error inside a test is caught by the checker too.
    std::fs::write(
        dir.join("a.nudge"),
        "contact { email: email? }\n\
         event ping {}\n\
         flow f {\n  when ping\n  wait 1 day\n}\n\
         test \"unknown step\" {\n  contact { email = \"a@b.example\" }\n  event ping\n  expect in f.nowhere\n}\n",
    )
    .unwrap();
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("nudge::resolve::unknown_step"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_test_that_leaves_an_env_value_unset_fails_naming_it() {
    let dir = scratch("env_unset");
    std::fs::write(
        dir.join("a.nudge"),
        "contact { email: email? }\n\
         event ping {}\n\
         channel hook: slack { webhook = env(\"HOOK\") }\n\
         flow f {\n  when ping\n  send hook \"hi\"\n}\n\
         test \"unset\" {\n  contact { email = \"a@b.example\" }\n  event ping\n  expect sent hook\n}\n\
         test \"set\" {\n  env HOOK = \"https://hooks.example/x\"\n  contact { email = \"a@b.example\" }\n  event ping\n  expect sent hook\n}\n",
    )
    .unwrap();
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        "1 passed, 1 failed",
        "{}",
        run.stdout
    );
    assert!(
        section(&run.stdout, "unset")
            .contains("the project reads env `HOOK` but this test does not set it"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_journey_never_shows_a_secret_of_a_call_url() {
    let dir = scratch("call_secret");
    std::fs::write(
        dir.join("a.nudge"),
        "contact { email: email? }\n\
         event ping {}\n\
         channel crm: http {\n  method = \"POST\"\n  url = env(\"CRM_URL\")\n  body = json { id: contact.id }\n}\n\
         flow f {\n  when ping\n  call crm\n  call \"https://bot:pw@hooks.example/v1/{{ contact.id }}?key=abc\"\n}\n\
         test \"calls\" {\n  env CRM_URL = \"https://crm.example/api?token=SECRET123\"\n  contact { email = \"a@b.example\" }\n  event ping\n  expect called crm\n}\n",
    )
    .unwrap();
    let run = nudge(&["test", "--trace", s(&dir)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // the journey lines (the test's own `env` statement is echoed as written)
    let journey: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" contact-1 "))
        .collect();
    assert!(journey.len() >= 4, "{}", run.stdout);
    for secret in ["SECRET123", "token=", "key=abc", "bot:pw"] {
        assert!(
            journey.iter().all(|l| !l.contains(secret)),
            "`{secret}` in\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("call POST `crm` at crm.example"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("call GET at hooks.example"),
        "{}",
        run.stdout
    );
}

#[test]
fn time_triggers_in_the_past_follow_late_in_test_blocks() {
    let dir = scratch("time_triggers_late");
    std::fs::write(
        dir.join("a.nudge"),
        r#"contact { email: email?  deal_created_at: time? }

flow nurture {
  when contact.deal_created_at + 7 days
  step s { wait 1 day }
}

flow grace {
  when contact.deal_created_at + 7 days late 30 days
  step s { wait 1 day }
}

test "a deal synced 30 days late starts only the flow that allows it" {
  contact { deal_created_at = 2025-12-02T00:00:00Z }
  expect not enrolled nurture
  expect enrolled grace
}

test "a deal synced in time starts both at their instant" {
  contact { deal_created_at = 2025-12-30T00:00:00Z }
  expect not enrolled nurture
  after 5 days
  expect enrolled nurture
  expect enrolled grace
}
"#,
    )
    .unwrap();
    let run = nudge(&["test", s(&dir), "--trace"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        "2 passed, 0 failed",
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "| 2026-01-01T00:00:00Z contact-1 nurture: missed nurture trigger: 2025-12-09T00:00:00Z is 23 days in the past\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_project_is_a_usage_error() {
    let run = nudge(&["test", "no/such/project"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("error: `no/such/project` does not exist"),
        "{}",
        run.stderr
    );
}

/// The ```nudge blocks of a Markdown file.
fn nudge_blocks(markdown: &str) -> Vec<&str> {
    markdown
        .split("```nudge\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect()
}

#[test]
fn the_testing_guide_examples_pass() {
    let guide = std::fs::read_to_string(root().join("docs/testing.md")).unwrap();
    let blocks = nudge_blocks(&guide);
    let dir = scratch("guide");
    // The first block is the project; the whole `test` blocks run against it,
    // except the one quoted from the chatbot conformance project.
    assert!(blocks[0].starts_with("contact {"), "{}", blocks[0]);
    std::fs::write(dir.join("funnel.nudge"), blocks[0]).unwrap();
    let tests: Vec<&str> = blocks
        .iter()
        .copied()
        .filter(|b| b.starts_with("test \"") && !b.contains("WA_TOKEN"))
        .collect();
    assert!(tests.len() >= 6, "{}", tests.len());
    std::fs::write(dir.join("guide_tests.nudge"), tests.join("\n")).unwrap();
    let run = nudge(&["test", s(&dir)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        format!("{} passed, 0 failed", tests.len())
    );
    let chatbot = blocks.iter().find(|b| b.contains("WA_TOKEN")).unwrap();
    let quoted =
        std::fs::read_to_string(root().join("tests/conformance/chatbot_keywords/bot_tests.nudge"))
            .unwrap();
    assert!(
        quoted.contains(chatbot),
        "the guide quotes the conformance test as it is"
    );
}

/// The reproductions of issue 9 (LANGUAGE.md amendment A4), in the
/// simulator: each runtime error fails the enrollment, the trace shows the
/// error with its line, and a test expecting the flow to complete fails
/// with it. `!=` with an unset side (amendment A1) holds.
#[test]
fn a_runtime_error_fails_the_enrollment_and_the_test_says_why() {
    let dir = scratch("runtime_errors");
    std::fs::write(
        dir.join("a.nudge"),
        "contact { orders: int = 0, avg: decimal = 0, big: int = 0, deal_status: \"won\" | \"lost\"? }\n\
         event ping {}\n\
         flow avg {\n  when ping\n  set contact.avg = 100 / contact.orders\n  if contact.avg > 1 { tag \"big\" } else { tag \"small\" }\n}\n\
         flow grow {\n  when ping\n  set contact.big = contact.big + 100\n}\n\
         flow open_deals {\n  when ping where contact.deal_status != \"won\"\n  tag \"open\"\n}\n\
         test \"division\" {\n  contact { orders = 0 }\n  event ping\n  expect completed avg\n}\n\
         test \"overflow\" {\n  contact { big = 9223372036854775800 }\n  event ping\n  expect contact.big == 9223372036854775800\n  expect completed grow\n}\n\
         test \"no status is not won\" {\n  contact { }\n  event ping\n  expect completed open_deals\n  expect \"open\" in contact.tags\n  expect not (\"small\" in contact.tags)\n}\n",
    )
    .unwrap();
    let run = nudge(&["test", s(&dir), "--trace"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        last_line(&run.stdout),
        "1 passed, 2 failed",
        "{}",
        run.stdout
    );
    let division = section(&run.stdout, "division");
    for want in [
        "| 2026-01-01T00:00:00Z contact-1 avg.start: failed: division by zero in `/` (line 5)",
        "= expected the contact to have completed flow `avg`, but it failed at step `start`: division by zero in `/` (line 5)",
    ] {
        assert!(division.contains(want), "`{want}` in:\n{division}");
    }
    let overflow = section(&run.stdout, "overflow");
    assert!(
        overflow.contains("but it failed at step `start`: integer overflow in `+` (line 10)"),
        "{overflow}"
    );
    assert!(
        overflow.contains("big = 9223372036854775800, orders = 0"),
        "the field keeps its value:\n{overflow}"
    );
    assert!(
        section(&run.stdout, "no status is not won").starts_with("ok   "),
        "{}",
        run.stdout
    );
}
