//! Random but valid Nudge source text, for the formatter's round-trip
//! property.
//!
//! Every declaration kind, statements nested through blocks, `if`, `split`,
//! handlers and every `wait` form, expressions of any operator shape with
//! and without parentheses, durations in short, long and combined spellings,
//! strings with escapes and `"""` strings with uneven indentation, and
//! comments (own-line, trailing, block, `///`) between entries and inside
//! expressions, joined by newlines, blank lines, `;` or spaces.
//!
//! Avoided on purpose (the grammar reads them otherwise, see the formatter
//! report): `expect [not] sent CHANNEL` directly followed by another test
//! statement, a `wait until` expression starting with a time of day, and a
//! flow-level `exit` statement directly followed by a `when` trigger.

use proptest::prelude::*;
use proptest::sample::select;

type Text = BoxedStrategy<String>;

fn pick(options: &'static [&'static str]) -> Text {
    select(options).prop_map(str::to_string).boxed()
}

/// Whitespace between two tokens, sometimes with a comment.
fn gap() -> Text {
    prop_oneof![
        8 => Just(" "),
        1 => Just("\n      "),
        1 => Just(" /* mid */ "),
        1 => Just(" // line end\n    "),
        1 => Just("\t"),
    ]
    .prop_map(str::to_string)
    .boxed()
}

/// What separates two statements, settings, fields or declarations.
fn sep() -> Text {
    pick(&[
        "\n  ",
        "\n  ",
        "\n  ",
        "\n\n  ",
        "; ",
        " ",
        "\n  // own line\n  ",
        " // trailing\n  ",
        "\n  /* block */ ",
        "\n\n\n  // after blanks\n\n  ",
        "\n  /// doc line\n  ",
        " /* trails */\n",
        "\n  /* two\n     lines */\n  ",
        " /// trailing doc\n  ",
        "\r\n  ",
    ])
}

/// `parts` each preceded by a separator, then a last separator.
fn joined(parts: impl Strategy<Value = String> + 'static, max: usize) -> Text {
    (prop::collection::vec((sep(), parts), 0..=max), sep())
        .prop_map(|(items, last)| {
            let mut s: String = items.into_iter().map(|(sep, p)| sep + &p).collect();
            s.push_str(&last);
            s
        })
        .boxed()
}

fn duration() -> Text {
    pick(&[
        "3d",
        "3 days",
        "1 day",
        "1h 30m",
        "1 hour 30 minutes",
        "2w",
        "90s",
        "1 week 2 days",
        "5m",
        "45 seconds",
        "1 minute",
        "2 hours",
    ])
}

fn string() -> Text {
    prop_oneof![
        6 => pick(&[
            r#""hi""#,
            r#""a \"quoted\" word""#,
            r#""back\\slash \n new\tline \u{e9}""#,
            r#""Привет, {{ contact.first_name | default('друг') }}!""#,
            r#""""#,
        ]),
        2 => multi_line(),
    ]
    .boxed()
}

fn multi_line() -> Text {
    let line = pick(&[
        "Hello,",
        "  indented more",
        "",
        "say \"hi\" \\\\ bye",
        "tab\there",
        "trailing   ",
    ]);
    (
        prop::collection::vec(line, 0..4),
        select(&["", "  ", "      "][..]),
    )
        .prop_map(|(lines, pad)| {
            let mut s = String::from("\"\"\"\n");
            for l in lines {
                s.push_str(pad);
                s.push_str(&l);
                s.push('\n');
            }
            s.push_str(pad);
            s.push_str("\"\"\"");
            s
        })
        .boxed()
}

fn leaf() -> Text {
    prop_oneof![
        4 => pick(&["a", "b", "score", "contact.score", "event.amount", "now", "paying", "flow.name"]),
        2 => (0u32..1000).prop_map(|n| n.to_string()),
        1 => pick(&["12.50", "0.5", "25%", "true", "false", "2026-12-24", "2026-12-24T09:00:00Z", "2026-01-01T00:00:00+02:00"]),
        2 => duration(),
        2 => string(),
        1 => pick(&["[]", "{}", "env(\"X\")", "json { id: 1, \"k\": [1, 2] }"]),
    ]
    .boxed()
}

fn binop() -> Text {
    pick(&[
        "or",
        "and",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "contains",
        "starts_with",
        "ends_with",
        "matches",
        "??",
        "+",
        "-",
        "*",
        "/",
        "%",
    ])
}

fn expr() -> Text {
    leaf()
        .prop_recursive(4, 24, 3, |e| {
            prop_oneof![
                4 => (e.clone(), gap(), binop(), e.clone())
                    .prop_map(|(a, g, op, b)| format!("{a}{g}{op} {b}")),
                2 => e.clone().prop_map(|a| format!("({a})")),
                1 => e.clone().prop_map(|a| format!("not {a}")),
                1 => e.clone().prop_map(|a| format!("-{a}")),
                1 => (e.clone(), any::<bool>())
                    .prop_map(|(a, n)| format!("{a} is {}set", if n { "not " } else { "" })),
                1 => (e.clone(), e.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
                1 => (e.clone(), e.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
                1 => e.clone().prop_map(|a| format!("{{ k: {a}, \"s\": 1 }}")),
                1 => e.clone().prop_map(|a| format!("({a}).field")),
            ]
        })
        .boxed()
}

fn settings() -> Text {
    let setting = (pick(&["a", "subject", "text", "url", "x_1"]), expr())
        .prop_map(|(n, v)| format!("{n} = {v}"));
    (prop::collection::vec((setting, pick(&[", ", "\n", " ", ",\n", " // c\n"])), 0..4))
        .prop_map(|items| {
            let body: String = items.into_iter().map(|(s, sep)| s + &sep).collect();
            format!("{{ {body}}}")
        })
        .boxed()
}

fn event_ref() -> Text {
    pick(&["sale", "resale #2", "email_clicked", "start #10"])
}

fn where_clause() -> Text {
    prop_oneof![2 => Just(String::new()), 1 => expr().prop_map(|e| format!(" where {e}"))].boxed()
}

fn simple_stmt() -> Text {
    prop_oneof![
        (string(), pick(&["", " to contact.phone", " force"]))
            .prop_map(|(s, t)| format!("send bot {s}{t}")),
        (settings(), expr()).prop_map(|(f, to)| format!("send email {f} to {to} force")),
        Just("send email welcome".to_string()),
        (settings(), pick(&["", " as res"])).prop_map(|(f, r)| format!(
            "call \"https://x.example/{{{{ contact.id }}}}\" with {f}{r}"
        )),
        Just("call crm".to_string()),
        expr().prop_map(|e| format!("set contact.score = {e}")),
        Just("unset contact.city".to_string()),
        expr().prop_map(|e| format!("add {e} to contact.lists")),
        expr().prop_map(|e| format!("remove {e} from contact.lists")),
        expr().prop_map(|e| format!("tag {e}")),
        expr().prop_map(|e| format!("untag {e}")),
        pick(&[
            "goto cold",
            "goto other.step_2",
            "start other",
            "stop other",
            "exit",
            "emit ping",
            "emit ping { n = 1 }"
        ]),
        string().prop_map(|s| format!("log {s}")),
        wait_simple(),
    ]
    .boxed()
}

fn within(body: Text) -> Text {
    prop_oneof![
        2 => Just(String::new()),
        1 => duration().prop_map(|d| format!(" within {d}")),
        1 => (duration(), body).prop_map(|(d, s)| format!(" within {d} else {s}")),
    ]
    .boxed()
}

fn wait_simple() -> Text {
    let kind = prop_oneof![
        duration(),
        expr().prop_map(|e| format!("until contact.at + {e}")),
        pick(&["until 09:00 local", "until monday 10:00", "until 23:59:30"]),
        (event_ref(), where_clause()).prop_map(|(e, w)| format!("for {e}{w}")),
    ];
    (
        kind,
        within(pick(&["exit", "goto cold", "{ tag \"late\"; exit }"])),
    )
        .prop_map(|(k, w)| format!("wait {k}{w}"))
        .boxed()
}

fn stmt() -> Text {
    simple_stmt()
        .prop_recursive(3, 20, 4, |s| {
            let body = joined(s.clone(), 3).prop_map(|b| format!("{{{b}}}"));
            let branch = prop_oneof![
                (event_ref(), where_clause()).prop_map(|(e, w)| format!("on {e}{w}")),
                expr().prop_map(|e| format!("until {e}")),
                duration().prop_map(|d| format!("after {d}")),
            ];
            prop_oneof![
                body.clone(),
                (
                    expr(),
                    body.clone(),
                    prop::option::of((expr(), body.clone())),
                    prop::option::of(body.clone())
                )
                    .prop_map(|(c, b, elif, other)| {
                        let mut t = format!("if {c} {b}");
                        if let Some((c2, b2)) = elif {
                            t.push_str(&format!(" else if {c2} {b2}"));
                        }
                        if let Some(o) = other {
                            t.push_str(&format!("\n  // before else\n  else {o}"));
                        }
                        t
                    }),
                joined(
                    (pick(&["50%", "25.5%", "10%"]), s.clone())
                        .prop_map(|(p, st)| format!("{p} -> {st}")),
                    3
                )
                .prop_map(|arms| format!("split {{{arms}}}")),
                (
                    joined(
                        (branch, s.clone()).prop_map(|(b, st)| format!("{b} -> {st}")),
                        3
                    ),
                    within(s.clone())
                )
                    .prop_map(|(branches, w)| format!("wait {{{branches}}}{w}")),
            ]
        })
        .boxed()
}

/// Items before the first step: statements, triggers, options, handlers.
fn flow_head_item() -> Text {
    prop_oneof![
        3 => stmt(),
        1 => (pick(&["sale", "resale #2", "contact.at + 7 days", "every day at 09:00 local", "every monday at 10:00", "every \"0 9 * * 1\" local"]), where_clause())
            // `holdout` first: after an `exit` statement, `when` would be
            // read as the `exit when` option.
            .prop_map(|(t, w)| format!("holdout 5%\n  when {t}{w}")),
        1 => pick(&["keyword \"PROMO\"", "reenter never", "reenter after_exit", "holdout 10%", "window 09:00..21:00 local", "goal sale"]),
        1 => (event_ref(), where_clause()).prop_map(|(e, w)| format!("exit when {e}{w}")),
        1 => (event_ref(), where_clause(), stmt()).prop_map(|(e, w, s)| format!("on {e}{w} -> {s}")),
    ]
    .boxed()
}

/// Items from the first step on: no statements outside steps.
fn flow_tail_item() -> Text {
    prop_oneof![
        1 => (pick(&["sale", "resale #2", "contact.at + 7 days", "every day at 09:00 local", "every monday at 10:00", "every \"0 9 * * 1\" local"]), where_clause())
            // `holdout` first: after an `exit` statement, `when` would be
            // read as the `exit when` option.
            .prop_map(|(t, w)| format!("holdout 5%\n  when {t}{w}")),
        1 => pick(&["keyword \"PROMO\"", "reenter never", "reenter after_exit", "holdout 10%", "window 09:00..21:00 local", "goal sale"]),
        1 => (event_ref(), where_clause()).prop_map(|(e, w)| format!("exit when {e}{w}")),
        1 => (event_ref(), where_clause(), stmt()).prop_map(|(e, w, s)| format!("on {e}{w} -> {s}")),
        1 => (pick(&["", " \"Title\""]), joined(stmt(), 3), any::<bool>()).prop_map(|(t, b, win)| {
            let window = if win { "window 08:00..20:00\n  " } else { "" };
            format!("step s_{}{t} {{ {window}{b}}}", b.len())
        }),
    ]
    .boxed()
}

fn field() -> Text {
    (
        pick(&["email", "plan", "score", "tags_2", "at"]),
        pick(&[
            "email?",
            "\"free\" | \"pro\"?",
            "int",
            "set<text>",
            "list<decimal>",
            "time?",
        ]),
        pick(&["", " unique"]),
        prop::option::of(expr()),
    )
        .prop_map(|(n, t, u, d)| match d {
            Some(d) => format!("{n}: {t}{u} = {d}"),
            None => format!("{n}: {t}{u}"),
        })
        .boxed()
}

fn test_stmt() -> Text {
    prop_oneof![
        Just("env SMTP_HOST = \"127.0.0.1\"".to_string()),
        (pick(&["", "bob "]), settings()).prop_map(|(id, s)| format!("contact {id}{s}")),
        (prop::option::of(settings()), pick(&["", " for bob"])).prop_map(|(s, f)| format!(
            "event sale{}{f}",
            s.map(|s| format!(" {s}")).unwrap_or_default()
        )),
        settings().prop_map(|s| format!("postback partner {s}")),
        expr().prop_map(|e| format!("set bob.score = {e}")),
        duration().prop_map(|d| format!("after {d}")),
        Just("at 2026-03-01T10:00:00Z".to_string()),
        (prop::option::of(expr())).prop_map(|j| format!(
            "reply crm status 201{}",
            j.map(|j| format!(" json {j}")).unwrap_or_default()
        )),
        pick(&[
            "expect in f.s",
            "expect not enrolled f",
            "expect enrolled f",
            "expect completed f",
            "expect exited f",
            "expect converted f",
            "expect nothing sent"
        ]),
        expr().prop_map(|e| format!("expect sent email welcome where {e}")),
        expr().prop_map(|e| format!("expect not sent bot where {e}")),
        expr().prop_map(|e| format!("expect called \"https://x.example\" where {e}")),
        expr().prop_map(|e| format!("expect score > {e}")),
    ]
    .boxed()
}

fn item() -> Text {
    prop_oneof![
        1 => joined(field(), 3).prop_map(|f| format!("contact {{{f}}}")),
        1 => (pick(&["", " {}"]), prop::collection::vec(field(), 0..3))
            .prop_map(|(empty, f)| if f.is_empty() { format!("event sale{empty}") } else { format!("event sale {{ {} }}", f.join(", ")) }),
        1 => (joined((pick(&["host", "url", "body"]), expr()).prop_map(|(n, e)| format!("{n} = {e}")), 3), pick(&["rate = 50 per second", "cap = 3 per 1d", "cap = 2 per 1 week 2 days"]))
            .prop_map(|(s, r)| format!("channel c: http {{ {r}{s}}}")),
        1 => (string(), string()).prop_map(|(a, b)| format!("template t: email {{\n  subject = {a}\n  text = {b}\n}}")),
        1 => settings().prop_map(|s| format!("source partner: postback {{ contact = clickid rename {{ \"dep\" = sale, \"x\" = y }} fields {s} }}")),
        2 => expr().prop_map(|e| format!("define d = {e}")),
        4 => (pick(&["", " \"A flow\""]), joined(flow_head_item(), 3), joined(flow_tail_item(), 2)).prop_map(|(t, a, b)| format!("flow f{t} {{{a}\n{b}}}")),
        2 => (string(), joined(test_stmt(), 4)).prop_map(|(n, b)| format!("test {n} {{{b}}}")),
    ]
    .boxed()
}

/// A whole file.
pub fn program() -> impl Strategy<Value = String> {
    (
        pick(&["", "// header\n\n", "/// doc of the first\n"]),
        joined(item(), 4),
    )
        .prop_map(|(head, items)| head + &items)
}
