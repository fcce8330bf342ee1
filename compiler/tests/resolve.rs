//! Name resolution outside expressions: declarations, references, settings.

mod support;
use support::assert_diag;

const BASE: &str = r#"
contact { email: email? unique, clickid: text? unique, name: text? }
event sale { amount: decimal? }
channel email: smtp { host = "h", from = "a@b.example" }
template welcome: email { subject = "Hi", text = "Welcome" }
"#;

fn with(body: &str) -> String {
    format!("{BASE}\n{body}")
}

#[test]
fn duplicates() {
    assert_diag(&with("event sale {}"), "nudge::resolve::duplicate", "sale");
    assert_diag(
        &with("flow f { when sale\n step a { exit }\n step a { exit } }"),
        "nudge::resolve::duplicate",
        "a",
    );
    assert_diag(
        &with("contact { name: text? }"),
        "nudge::resolve::duplicate",
        "name",
    );
    assert_diag(
        &with("event subscribed {}"),
        "nudge::resolve::duplicate",
        "subscribed",
    );
}

#[test]
fn unknown_references() {
    assert_diag(
        &with("flow f { when sael\n exit }"),
        "nudge::resolve::unknown_event",
        "sael",
    );
    assert_diag(
        &with("flow f { when sale\n send emial welcome }"),
        "nudge::resolve::unknown_channel",
        "emial",
    );
    assert_diag(
        &with("flow f { when sale\n send email welcom }"),
        "nudge::resolve::unknown_template",
        "welcom",
    );
    assert_diag(
        &with("flow f { when sale\n start g }"),
        "nudge::resolve::unknown_flow",
        "g",
    );
    assert_diag(
        &with("flow f { when sale\n goto nowhere }"),
        "nudge::resolve::unknown_step",
        "nowhere",
    );
    assert_diag(
        &with("flow f { when sale\n goto g.x }\nflow g { when sale\n step y { exit } }"),
        "nudge::resolve::unknown_step",
        "x",
    );
    assert_diag(
        &with("test \"t\" { postback partner { a = \"1\" } }"),
        "nudge::resolve::unknown_source",
        "partner",
    );
    assert_diag(
        &with("contact { score: integer }"),
        "nudge::resolve::unknown_type",
        "integer",
    );
}

#[test]
fn kinds_and_settings() {
    assert_diag(
        &with("channel fax: fax { url = \"https://x.example\" }"),
        "nudge::resolve::unknown_kind",
        "fax",
    );
    assert_diag(
        &with("channel e2: smtp { hots = \"h\", host = \"h\", from = \"a@b.example\" }"),
        "nudge::resolve::unknown_setting",
        "hots",
    );
    assert_diag(
        &with("channel e2: smtp { from = \"a@b.example\" }"),
        "nudge::resolve::missing_setting",
        "e2",
    );
}

#[test]
fn ambiguous_goto() {
    assert_diag(
        &with("flow f { when sale\n step g { goto g } }\nflow g { when sale\n exit }"),
        "nudge::resolve::ambiguous_goto",
        "goto g",
    );
}

#[test]
fn source_key_must_be_unique() {
    assert_diag(
        &with("source p: postback { contact = name, event = param(\"e\"), token = \"t\" }"),
        "nudge::resolve::unknown_field",
        "name",
    );
}
