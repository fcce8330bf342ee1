//! Every conformance project parses (the checker's tests go further).

use nudge_grammar::{parse, span::FileId};
use std::path::Path;

#[test]
fn conformance_files_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut n = 0;
    for dir in std::fs::read_dir(&root).expect("conformance dir").flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("project").flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "nudge") {
                let text = std::fs::read_to_string(&p).expect("utf-8");
                if let Err(e) = parse(FileId(0), &text) {
                    let (s, _) = (e.span.start as usize, 0);
                    let line = text[..s].matches('\n').count() + 1;
                    panic!("{}:{line}: {}", p.display(), e.message);
                }
                n += 1;
            }
        }
    }
    assert_eq!(n, 10);
}

#[test]
fn spans_exclude_trailing_whitespace_and_comments() {
    let text = "contact {\n  email: email?   // the address\n  name: text?\n}\n";
    let m = parse(FileId(0), text).expect("parses");
    let nudge_grammar::ast::Item::Contact(c) = &m.items[0] else {
        panic!("contact")
    };
    assert_eq!(&text[c.fields[0].span.range()], "email: email?");
}

#[test]
fn expect_sent_without_template_before_another_statement() {
    let text = "test \"t\" {\n  expect sent bot\n  after 2 hours\n  expect sent bot welcome\n}\n";
    let m = parse(FileId(0), text).expect("parses");
    let nudge_grammar::ast::Item::Test(t) = &m.items[0] else {
        panic!("test")
    };
    assert_eq!(t.body.len(), 3);
}

#[test]
fn escaped_multibyte_characters_do_not_panic() {
    let text = "define x = \"\"\"\\é\"\"\"";
    assert!(parse(FileId(0), text).is_err());
}

#[test]
fn combined_short_durations() {
    let e = nudge_grammar::parse_expr(FileId(0), "1h30m").expect("parses");
    let nudge_grammar::ast::ExprKind::Duration(d) = e.kind else {
        panic!("duration")
    };
    assert_eq!(d.seconds(), 5400);
}

#[test]
fn late_follows_a_time_trigger_only() {
    let text =
        "flow f {\n  when contact.paid_at + 7 days late 1 day where contact.plan == \"pro\"\n}\n";
    let m = parse(FileId(0), text).expect("parses");
    let nudge_grammar::ast::Item::Flow(f) = &m.items[0] else {
        panic!("flow")
    };
    let nudge_grammar::ast::FlowItem::Trigger(t) = &f.body[0] else {
        panic!("trigger")
    };
    assert_eq!(t.late.as_ref().map(|l| l.seconds()), Some(86_400));
    assert!(t.cond.is_some());
    let text = "flow f {\n  when sale late 1 day\n}\n";
    let e = parse(FileId(0), text).expect_err("late after an event");
    assert_eq!(e.message, "`late` only follows a time trigger");
    assert_eq!(&text[e.span.range()], "1 day");
}
