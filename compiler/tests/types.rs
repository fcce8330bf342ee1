//! Type checking, name resolution inside expressions, and templates.

mod support;
use support::{assert_clean, assert_diag, diags_with};

const SCHEMA: &str = r#"
contact {
  email: email? unique
  first_name: text?
  deposits: int = 0
  bonus: int?
  plan: "free" | "pro" = "free"
  paid_at: time?
  lists: set<text>
}
event sale { amount: decimal? }
event registration { source: text }
channel email: smtp { host = "h", from = "a@b.example" }
channel bot: http { url = "https://bot.example/send", body = json { text: message } }
"#;

fn with(body: &str) -> String {
    format!("{SCHEMA}\n{body}")
}

#[test]
fn unknown_contact_field_suggests() {
    assert_diag(
        &with("flow f { when sale\n if contact.frist_name is set { exit } }"),
        "nudge::resolve::unknown_field",
        "frist_name",
    );
}

#[test]
fn mismatch_on_set() {
    assert_diag(
        &with("flow f { when sale\n set contact.deposits = \"many\" }"),
        "nudge::types::mismatch",
        "\"many\"",
    );
}

#[test]
fn condition_must_be_bool() {
    assert_diag(
        &with("flow f { when sale\n if contact.deposits { exit } }"),
        "nudge::types::condition_not_bool",
        "contact.deposits",
    );
}

#[test]
fn literal_formats() {
    assert_diag(
        &with("flow f { when sale\n set contact.email = \"ann@\" }"),
        "nudge::types::invalid_format",
        "\"ann@\"",
    );
    assert_diag(
        &with("flow f { when sale\n if contact.plan == \"gold\" { exit } }"),
        "nudge::types::not_in_union",
        "\"gold\"",
    );
    assert_diag(
        &with("flow f { when sale\n wait until 2026-02-30T09:00:00Z }"),
        "nudge::types::invalid_date",
        "2026-02-30T09:00:00Z",
    );
}

#[test]
fn optional_arithmetic_needs_default() {
    assert_diag(
        &with("flow f { when sale\n set contact.deposits = contact.bonus + 1 }"),
        "nudge::types::optional_arithmetic",
        "contact.bonus",
    );
    assert_clean(&with(
        "flow f { when sale\n set contact.deposits = (contact.bonus ?? 0) + 1 }",
    ));
}

#[test]
fn time_arithmetic() {
    assert_clean(&with(
        "flow f { when contact.paid_at + 30 days\n wait until now + 1 hour\n if now - contact.created_at > 7 days { exit } }",
    ));
    assert_diag(
        &with("flow f { when sale\n wait \"soon\" }"),
        "nudge::types::mismatch",
        "\"soon\"",
    );
}

#[test]
fn event_fields_follow_the_flow() {
    // after `wait for registration`, `event` is registration
    assert_clean(&with(
        "flow f { when sale\n wait for registration\n log \"x\"\n if event.source == \"ads\" { exit } }",
    ));
    // the trigger's event: sale has no `source`
    assert_diag(
        &with("flow f { when sale\n if event.source == \"ads\" { exit } }"),
        "nudge::resolve::unknown_field",
        "source",
    );
    // after a two-branch wait only common fields
    assert_diag(
        &with(
            "flow f { when sale\n wait { on sale -> log \"a\"\n on registration -> log \"b\" }\n if event.amount > 1 { exit } }",
        ),
        "nudge::types::not_common_field",
        "amount",
    );
    // a time trigger has no event
    assert_diag(
        &with("flow f { when contact.paid_at + 1 day\n if event.amount > 1 { exit } }"),
        "nudge::types::no_event",
        "event",
    );
}

#[test]
fn templates_are_checked_in_scope() {
    assert_diag(
        &with("flow f { when sale\n send bot \"Hi {{ contact.frist_name }}\" }"),
        "nudge::templates::unknown_variable",
        "contact.frist_name",
    );
    assert_diag(
        &with("flow f { when sale\n send bot \"Hi {{ event.source }}\" }"),
        "nudge::templates::unknown_variable",
        "event.source",
    );
    assert_diag(
        &with("flow f { when sale\n send bot \"Hi {{ contact.first_name \" }"),
        "nudge::templates::syntax",
        "first_name",
    );
    assert_clean(&with(
        "flow f { when registration\n send bot \"Hi {{ contact.first_name | default('x') }} from {{ event.source }}\" }",
    ));
}

#[test]
fn template_syntax_error_points_inside_the_string() {
    let src = with("flow f { when sale\n send bot \"Hi {% if %} there\" }");
    let found = support::diags(&src);
    let (code, text) = found.first().expect("a diagnostic");
    assert_eq!(code, "nudge::templates::syntax");
    assert!(
        !text.starts_with('"'),
        "span should be inside the string, got `{text}`"
    );
}

#[test]
fn file_bodies_are_read_relative_and_checked() {
    let src = with(
        "template w: email { subject = \"s\", html = file(\"w.html\") }\nflow f { when sale\n send email w }",
    );
    let fs = nudge_compiler::files::MemoryFs::new().with("w.html", "<p>{{ contact.nme }}</p>");
    let found = diags_with(&src, &fs);
    assert!(
        found
            .iter()
            .any(|(c, t)| c == "nudge::templates::unknown_variable" && t == "file(\"w.html\")"),
        "{found:?}"
    );
    let found = diags_with(&src, &nudge_compiler::files::MemoryFs::new());
    assert!(
        found
            .iter()
            .any(|(c, t)| c == "nudge::templates::missing_file" && t == "file(\"w.html\")"),
        "{found:?}"
    );
}

#[test]
fn test_blocks_are_typed() {
    let schema_req =
        "contact { email: email unique }\nevent e { n: int }\nflow f { when e\n log \"x\" }\n";
    assert_diag(
        &format!("{schema_req}test \"t\" {{ contact {{ }} }}"),
        "nudge::types::missing_field",
        "contact { }",
    );
    assert_diag(
        &format!(
            "{schema_req}test \"t\" {{ contact {{ email = \"a@b.example\" }}\n event e {{ n = \"x\" }} }}"
        ),
        "nudge::types::mismatch",
        "\"x\"",
    );
    assert_diag(
        &format!(
            "{schema_req}test \"t\" {{ contact {{ email = \"a@b.example\" }}\n event e {{ n = 1 }} for bob }}"
        ),
        "nudge::resolve::unknown_contact",
        "bob",
    );
    assert_diag(
        &format!(
            "{schema_req}test \"t\" {{ contact {{ email = \"a@b.example\" }}\n expect sent email where message.subjet == \"x\" }}"
        ),
        "nudge::resolve::unknown_channel",
        "email",
    );
}

#[test]
fn unknown_names_and_functions() {
    assert_diag(
        &with("define paying = contact.deposits > 0\nflow f { when sale\n if payng { exit } }"),
        "nudge::resolve::unknown_name",
        "payng",
    );
    assert_diag(
        &with("flow f { when sale\n if lowr(contact.first_name ?? \"\") == \"x\" { exit } }"),
        "nudge::resolve::unknown_function",
        "lowr",
    );
    assert_diag(
        &with("define a = b\ndefine b = a\nflow f { when sale\n if a { exit } }"),
        "nudge::types::recursive_define",
        "a",
    );
}

#[test]
fn operators() {
    assert_diag(
        &with("flow f { when sale\n set contact.first_name = \"a\" + 1 }"),
        "nudge::types::invalid_operands",
        "\"a\" + 1",
    );
    assert_diag(
        &with("flow f { when sale\n if contact.first_name matches \"(\" { exit } }"),
        "nudge::types::invalid_regex",
        "\"(\"",
    );
    assert_clean(&with(
        "flow f { when sale\n add \"x\" to contact.lists\n if \"x\" in contact.lists and contact.plan != \"pro\" { tag \"y\" } }",
    ));
}

#[test]
fn message_in_a_channel_is_text_without_fields() {
    let src = r#"
contact { email: email? unique  phone: phone? }
event ping {}
channel sms: http {
  method = "POST"
  url = "https://sms.example/send"
  body = json { to: message.to, text: message }
}
flow f { when ping  send sms "hi" }
"#;
    assert_diag(src, "nudge::types::mismatch", "to");
    let found = support::diags(src);
    assert_eq!(found.len(), 1, "{found:?}");
}
