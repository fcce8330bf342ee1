//! Templates (LANGUAGE.md §7): every message string, subject, body, `call`
//! URL and channel URL/header/body string is parsed with MiniJinja at compile
//! time. A syntax error points inside the string; every variable the template
//! reads must exist and be in scope where it is used (the caller, the type
//! checker, says what is in scope through [`TemplateScope`]).

use crate::diagnostics::{Diagnostics, did_you_mean, ss};
use miette::{Diagnostic, SourceSpan};
use nudge_grammar::ast::StrLit;
use nudge_grammar::span::Span;
use thiserror::Error;

/// Template problems.
#[derive(Debug, Error, Diagnostic)]
pub enum TemplateError {
    /// `send bot "Hi {{ contact.name"`
    #[error("template syntax error: {detail}")]
    #[diagnostic(
        code(nudge::templates::syntax),
        help(
            "templates use MiniJinja syntax: `{{{{ contact.first_name }}}}`, `{{% if … %}}…{{% endif %}}`"
        )
    )]
    Syntax {
        detail: String,
        #[label("here")]
        span: SourceSpan,
    },
    /// `"Hi {{ contact.frist_name }}"`
    #[error("unknown template variable `{name}`")]
    #[diagnostic(code(nudge::templates::unknown_variable))]
    UnknownVariable {
        name: String,
        #[label("{reason}")]
        span: SourceSpan,
        reason: String,
        #[help]
        help: Option<String>,
    },
    /// `html = file("missing.html")`
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(
        code(nudge::templates::missing_file),
        help("`file(…)` paths are relative to the `.nudge` file that names them")
    )]
    MissingFile {
        path: String,
        reason: String,
        #[label("this file")]
        span: SourceSpan,
    },
}

/// What a template may read at the place it is used.
pub trait TemplateScope {
    /// `Ok(())` if the dotted variable path (`contact.first_name`) can be
    /// read; otherwise why not, and a help text.
    fn check_path(&self, path: &[&str]) -> Result<(), (String, Option<String>)>;
}

/// Where a template's text came from, for pointing at problems.
pub enum TemplateSource<'a> {
    /// A string literal: errors point inside it.
    Literal(&'a StrLit),
    /// A `file(…)` body: errors point at the `file(…)` call.
    File { span: Span, name: &'a str },
}

/// A parsed template: the variable paths it reads.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub variables: Vec<String>,
}

/// Parse a template; on a syntax error report it and return `None`.
pub fn parse(text: &str, src: &TemplateSource<'_>, diags: &mut Diagnostics) -> Option<Parsed> {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return Some(Parsed::default());
    }
    let env = minijinja::Environment::new();
    match env.template_from_str(text) {
        Ok(t) => {
            let mut variables: Vec<String> = t.undeclared_variables(true).into_iter().collect();
            variables.sort();
            Some(Parsed { variables })
        }
        Err(e) => {
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            let span = match (src, e.range()) {
                (TemplateSource::Literal(lit), Some(r)) => lit.sub_span(r.start, r.end),
                (TemplateSource::Literal(lit), None) => lit.span,
                (TemplateSource::File { span, .. }, _) => *span,
            };
            let detail = match (src, e.line()) {
                (TemplateSource::File { name, .. }, Some(line)) => {
                    format!("{detail} (in `{name}`, line {line})")
                }
                _ => detail,
            };
            diags.push(
                span,
                TemplateError::Syntax {
                    detail,
                    span: ss(span),
                },
            );
            None
        }
    }
}

/// Check that every variable of `parsed` is readable in `scope`.
pub fn check_variables(
    text: &str,
    parsed: &Parsed,
    src: &TemplateSource<'_>,
    scope: &dyn TemplateScope,
    diags: &mut Diagnostics,
) {
    for var in &parsed.variables {
        let path: Vec<&str> = var.split('.').collect();
        if let Err((reason, help)) = scope.check_path(&path) {
            let span = match src {
                TemplateSource::Literal(lit) => match find_var(text, var) {
                    Some(at) => lit.sub_span(at, at + var.len()),
                    None => lit.span,
                },
                TemplateSource::File { span, .. } => *span,
            };
            diags.push(
                span,
                TemplateError::UnknownVariable {
                    name: var.clone(),
                    span: ss(span),
                    reason,
                    help,
                },
            );
        }
    }
}

/// The first place `var` appears as a whole name in `text`.
fn find_var(text: &str, var: &str) -> Option<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut from = 0;
    while let Some(rel) = text.get(from..)?.find(var) {
        let at = from + rel;
        let before = text[..at].chars().next_back();
        let after = text[at + var.len()..].chars().next();
        if !before.is_some_and(is_name) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return Some(at);
        }
        from = at + var.len();
    }
    None
}

/// Help for an unknown root name.
pub fn root_help(name: &str, roots: &[&str]) -> Option<String> {
    did_you_mean(name, roots.iter().copied()).or_else(|| {
        Some(format!(
            "a template here can read {}",
            roots
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_names_only() {
        assert_eq!(
            find_var("{{ contact.names }} {{ contact.name }}", "contact.name"),
            Some(23)
        );
    }

    #[test]
    fn reads_nested_variables() {
        let mut d = Diagnostics::new();
        let lit = StrLit {
            value: String::new(),
            span: Span::default(),
            multiline: false,
            segments: vec![],
        };
        let p = parse(
            "Hi {{ contact.first_name | default('x') }}{% if event.amount %}!{% endif %}",
            &TemplateSource::Literal(&lit),
            &mut d,
        )
        .expect("parses");
        assert_eq!(p.variables, vec!["contact.first_name", "event.amount"]);
    }
}
