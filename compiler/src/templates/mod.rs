//! Templates (LANGUAGE.md §7): every message string, subject, body, `call`
//! URL and channel URL/header/body string is parsed with MiniJinja at compile
//! time. A syntax error points inside the string; every variable the template
//! reads must exist and be in scope where it is used (the caller, the type
//! checker, says what is in scope through [`TemplateScope`]). Every filter,
//! test and function it calls must exist in [`filters::environment`] — the
//! environment the runtime renders with — with the arguments MiniJinja
//! accepts, and literal arguments of Nudge's filters must be valid
//! (LANGUAGE.md A6). `{name}` around a readable name is a warning.

pub mod filters;
pub mod uses;

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
    /// `{{ x | datetimeformat }}`
    #[error("unknown template {what} `{name}`")]
    #[diagnostic(code(nudge::templates::unknown_filter))]
    UnknownFilter {
        what: &'static str,
        name: String,
        #[label("no {what} of this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `{% if x is evn %}`
    #[error("unknown template {what} `{name}`")]
    #[diagnostic(code(nudge::templates::unknown_test))]
    UnknownTest {
        what: &'static str,
        name: String,
        #[label("no {what} of this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `{{ lenght(x) }}`
    #[error("unknown template {what} `{name}`")]
    #[diagnostic(code(nudge::templates::unknown_function))]
    UnknownFunction {
        what: &'static str,
        name: String,
        #[label("no {what} of this name")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },
    /// `{{ x | upper(2) }}`
    #[error("wrong arguments for {what} `{name}`: {detail}")]
    #[diagnostic(
        code(nudge::templates::wrong_arguments),
        help(
            "see the {what}'s arguments in docs/language.md (Templates) or MiniJinja's documentation"
        )
    )]
    WrongArguments {
        what: &'static str,
        name: String,
        detail: String,
        #[label("called here")]
        span: SourceSpan,
    },
    /// `{{ t | datetime("%Q") }}`
    #[error("invalid argument for filter `{name}`: {reason}")]
    #[diagnostic(code(nudge::templates::invalid_filter_argument))]
    InvalidFilterArgument {
        name: String,
        reason: String,
        #[label("this argument")]
        span: SourceSpan,
        #[help]
        help: String,
    },
    /// `"Hi {client_name}"`
    #[error("`{{{text}}}` is printed as it is, braces included")]
    #[diagnostic(code(nudge::templates::single_brace), severity(Warning))]
    SingleBrace {
        text: String,
        #[label("single braces")]
        span: SourceSpan,
        #[help]
        help: String,
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

    /// The variable path `{name}` most likely meant, if one is readable
    /// here (`client_name` → `contact.client_name`).
    fn readable(&self, name: &str) -> Option<String>;
}

/// Where a template's text came from, for pointing at problems.
pub enum TemplateSource<'a> {
    /// A string literal: errors point inside it.
    Literal(&'a StrLit),
    /// A `file(…)` body: errors point at the `file(…)` call.
    File { span: Span, name: &'a str },
}

/// A parsed template: the variable paths it reads and its plain text.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub variables: Vec<String>,
    /// Plain-text parts with their byte offset (for `{name}`).
    pub raw: Vec<(usize, String)>,
}

/// Whether a text has template syntax (otherwise it is printed as it is).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Where a byte range of the template text is in the sources.
fn span_in(src: &TemplateSource<'_>, start: usize, end: usize) -> Span {
    match src {
        TemplateSource::Literal(lit) => lit.sub_span(start, end),
        TemplateSource::File { span, .. } => *span,
    }
}

/// Parse a template; on a syntax error report it and return `None`. Unknown
/// filters, tests and functions and bad arguments are reported here (they do
/// not depend on the place).
pub fn parse(text: &str, src: &TemplateSource<'_>, diags: &mut Diagnostics) -> Option<Parsed> {
    if !is_template(text) {
        let raw = if text.contains('{') {
            vec![(0, text.to_string())]
        } else {
            Vec::new()
        };
        return Some(Parsed {
            variables: Vec::new(),
            raw,
        });
    }
    let env = filters::shared();
    // the template, and its AST for the filters, tests and functions it
    // calls: an error from either is the template's syntax error
    let parsed = env.template_from_str(text).and_then(|t| {
        let ast = minijinja::machinery::parse(text, "<template>", Default::default())?;
        Ok((t, ast))
    });
    match parsed {
        Ok((t, ast)) => {
            let undeclared = t.undeclared_variables(true);
            let found = uses::collect(&ast);
            let called = check_uses(&found.uses, &undeclared, src, diags);
            let mut variables: Vec<String> = undeclared
                .into_iter()
                .filter(|v| !called.contains(v))
                .collect();
            variables.sort();
            Some(Parsed {
                variables,
                raw: found.raw,
            })
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

/// Check every filter, test and function call; returns the names called as
/// functions (not variables to check).
fn check_uses(
    found: &[uses::Use],
    undeclared: &std::collections::HashSet<String>,
    src: &TemplateSource<'_>,
    diags: &mut Diagnostics,
) -> std::collections::HashSet<String> {
    let known = filters::known();
    let mut called = std::collections::HashSet::new();
    for u in found {
        let span = span_in(src, u.at, u.at + u.name.len());
        if u.kind == uses::UseKind::Function {
            if !undeclared.contains(&u.name) {
                continue; // a macro or a variable set in the template
            }
            called.insert(u.name.clone());
        }
        if !filters::exists(u.kind, &u.name) {
            diags.push(span, unknown(u, known, span));
            continue;
        }
        if let Some(detail) = filters::probe_arguments(u) {
            diags.push(
                span,
                TemplateError::WrongArguments {
                    what: what(u.kind),
                    name: u.name.clone(),
                    detail,
                    span: ss(span),
                },
            );
            continue;
        }
        if u.kind == uses::UseKind::Filter
            && filters::NUDGE_FILTERS.contains(&u.name.as_str())
            && let Some(bad) = filters::check_literals(&u.name, &u.positional, &u.kwargs)
        {
            let index = match &bad.at {
                Ok(i) => Some(*i),
                Err(k) => u
                    .kwargs
                    .iter()
                    .position(|(n, _)| n == k)
                    .map(|i| i + u.positional.len()),
            };
            let span = match index.and_then(|i| u.arg_spans.get(i)) {
                Some((s, e)) => span_in(src, *s, *e),
                None => span,
            };
            diags.push(
                span,
                TemplateError::InvalidFilterArgument {
                    name: u.name.clone(),
                    reason: bad.reason,
                    span: ss(span),
                    help: bad.help,
                },
            );
        }
    }
    called
}

fn what(kind: uses::UseKind) -> &'static str {
    match kind {
        uses::UseKind::Filter => "filter",
        uses::UseKind::Test => "test",
        uses::UseKind::Function => "function",
    }
}

fn unknown(u: &uses::Use, known: &filters::Known, span: Span) -> TemplateError {
    let names = match u.kind {
        uses::UseKind::Filter => &known.filters,
        uses::UseKind::Test => &known.tests,
        uses::UseKind::Function => &known.functions,
    };
    let help = did_you_mean(&u.name, names.iter().map(String::as_str)).or_else(|| {
        Some(match u.kind {
            uses::UseKind::Filter => "the filters are MiniJinja's built-ins (`upper`, `default`, `round`, …) and Nudge's `datetime`, `number` and `tojson` (docs/language.md, Templates)".to_string(),
            uses::UseKind::Test => "the tests are MiniJinja's built-ins (`defined`, `none`, `odd`, `startingwith`, …; docs/language.md, Templates)".to_string(),
            uses::UseKind::Function => {
                let mut f: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                f.sort();
                format!("the template functions are {}", f.join(", "))
            }
        })
    });
    let (what, name, span) = (what(u.kind), u.name.clone(), ss(span));
    match u.kind {
        uses::UseKind::Filter => TemplateError::UnknownFilter {
            what,
            name,
            span,
            help,
        },
        uses::UseKind::Test => TemplateError::UnknownTest {
            what,
            name,
            span,
            help,
        },
        uses::UseKind::Function => TemplateError::UnknownFunction {
            what,
            name,
            span,
            help,
        },
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
    for (at, raw) in &parsed.raw {
        single_braces(*at, raw, src, scope, diags);
    }
}

/// `{client_name}`: a readable name in single braces is printed literally.
fn single_braces(
    at: usize,
    raw: &str,
    src: &TemplateSource<'_>,
    scope: &dyn TemplateScope,
    diags: &mut Diagnostics,
) {
    static BRACE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = BRACE
        .get_or_init(|| {
            regex::Regex::new(r"\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}")
                .ok()
        })
        .as_ref()
    else {
        return;
    };
    for m in re.captures_iter(raw) {
        let (Some(all), Some(name)) = (m.get(0), m.get(1)) else {
            continue;
        };
        let doubled = raw[..all.start()].ends_with('{') || raw[all.end()..].starts_with('}');
        if doubled {
            continue;
        }
        let Some(path) = scope.readable(name.as_str()) else {
            continue;
        };
        let span = span_in(src, at + all.start(), at + all.end());
        diags.push(
            span,
            TemplateError::SingleBrace {
                text: name.as_str().to_string(),
                span: ss(span),
                help: format!("write {{{{ {path} }}}}"),
            },
        );
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
