//! Postback deduplication (LANGUAGE.md A5): the `dedupe` setting of a
//! source is typed (text from parameters), lowered into the bundle's
//! `SourceDef`, and its absence is warned about.

mod support;
use nudge_compiler::bundle::ParamValue;
use nudge_compiler::compile;
use nudge_compiler::files::{MemoryFs, SourceSet};
use support::{assert_diag, diags};

fn project(dedupe: &str) -> String {
    format!(
        r#"
contact {{ clickid: text? unique, email: email? unique }}
event sale {{}}
source partner: postback {{
  contact = clickid
  event = param("status")
  token = "t"
  {dedupe}
}}
flow f {{ when sale
  log "sale" }}
"#
    )
}

fn codes(src: &str) -> Vec<String> {
    diags(src).into_iter().map(|(c, _)| c).collect()
}

#[test]
fn a_parameter_or_parameters_joined_with_text_are_accepted() {
    assert_eq!(
        codes(&project(r#"dedupe = param("txid")"#)),
        Vec::<String>::new()
    );
    assert_eq!(
        codes(&project(
            r#"dedupe = param("network") + ":" + (param("txid"))"#
        )),
        Vec::<String>::new()
    );
}

#[test]
fn anything_but_parameters_and_text_is_refused_where_it_is() {
    assert_diag(
        &project("dedupe = contact.email"),
        "nudge::types::not_allowed_here",
        "contact.email",
    );
    assert_diag(
        &project(r#"dedupe = param("txid") + env("SECRET")"#),
        "nudge::types::not_allowed_here",
        r#"env("SECRET")"#,
    );
    assert_diag(
        &project(r#"dedupe = param("txid") - 1"#),
        "nudge::types::not_allowed_here",
        r#"param("txid") - 1"#,
    );
}

#[test]
fn a_constant_dedupe_is_refused() {
    assert_diag(
        &project(r#"dedupe = "always""#),
        "nudge::types::not_allowed_here",
        r#""always""#,
    );
}

#[test]
fn the_parameter_name_is_a_literal() {
    assert_diag(
        &project("dedupe = param(1)"),
        "nudge::types::wrong_arguments",
        "param(1)",
    );
}

#[test]
fn a_source_without_dedupe_is_warned_about_at_its_name() {
    assert_diag(
        &project(""),
        "nudge::analysis::source_without_dedupe",
        "partner",
    );
    assert!(
        !codes(&project(r#"dedupe = param("txid")"#))
            .iter()
            .any(|c| c.ends_with("source_without_dedupe"))
    );
}

fn lowered(dedupe: &str) -> nudge_compiler::bundle::Bundle {
    let mut set = SourceSet::new();
    set.add("main.nudge", "main.nudge", project(dedupe));
    let (checked, bundle) = compile(&set, &MemoryFs::new());
    assert!(!checked.diagnostics.has_errors());
    bundle.expect("a bundle")
}

#[test]
fn dedupe_is_lowered_into_the_source_in_order() {
    let b = lowered(r#"dedupe = param("network") + ":" + param("txid")"#);
    assert_eq!(
        b.source("partner").expect("source").dedupe,
        [
            ParamValue::Param("network".into()),
            ParamValue::Literal(":".into()),
            ParamValue::Param("txid".into()),
        ]
    );
    let back =
        nudge_compiler::bundle::Bundle::from_bytes(&b.to_bytes().expect("the bundle serialises"))
            .expect("reads back");
    assert_eq!(back.source("partner"), b.source("partner"));
}

#[test]
fn without_dedupe_the_bundle_bytes_do_not_mention_it() {
    let b = lowered("");
    assert!(b.source("partner").expect("source").dedupe.is_empty());
    let text = String::from_utf8(b.to_bytes().expect("the bundle serialises")).expect("json");
    assert!(!text.contains("dedupe"), "{text}");
}
