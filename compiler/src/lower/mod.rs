//! Lowering a checked project to a [`Bundle`]: schema, events, channels,
//! templates, sources, one [`Program`] per flow (`flow.rs`), and the compiled
//! `test` blocks (`tests.rs`); `enums.rs` maps the AST's operators, re-entry
//! modes and weekdays to the bundle's own. Runs only on projects without errors, so it
//! never reports; anything it cannot place was rejected by the checker.

mod enums;
mod expr;
mod flow;
mod tests;

use crate::bundle::*;
use crate::files::SourceSet;
use crate::model::{Env, FieldInfo, Type};
use crate::types::TypeInfo;
use expr::{Names, code, const_value};
use nudge_grammar::ast::{self, Expr, ExprKind, Item, Module};
use nudge_grammar::span::FileId;
use std::collections::{BTreeSet, HashMap};

pub use expr::const_value as literal_value;

static NONE: BTreeSet<String> = BTreeSet::new();

fn names() -> Names<'static> {
    Names {
        calls: &NONE,
        contacts: &NONE,
    }
}

/// Lower a checked project.
pub fn lower(
    env: &Env<'_>,
    modules: &[(FileId, Module)],
    info: &TypeInfo,
    sources: &SourceSet,
) -> Bundle {
    let defaults: HashMap<&str, &Expr> = modules
        .iter()
        .flat_map(|(_, m)| m.items.iter())
        .filter_map(|i| match i {
            Item::Contact(c) => Some(c.fields.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|f| f.default.as_ref().map(|d| (f.name.name.as_str(), d)))
        .collect();
    let schema = env
        .contact
        .iter()
        .map(|f| {
            field_def(
                f,
                defaults.get(f.name.as_str()).and_then(|d| const_value(d)),
            )
        })
        .collect();
    let events = env
        .events
        .values()
        .map(|e| EventDef {
            name: e.name.clone(),
            fields: e.fields.iter().map(|f| field_def(f, None)).collect(),
            builtin: e.span.is_none(),
        })
        .collect();
    let channels = env
        .channels
        .values()
        .map(|(c, _)| channel_def(env, c, info))
        .collect();
    let templates = env
        .templates
        .values()
        .map(|(t, _)| {
            let get = |n: &str| {
                t.settings.iter().find(|s| s.name.name == n).and_then(|s| {
                    tpl_of(
                        &s.value,
                        sources.get(t.span.file).map(|f| f.path.as_path()),
                        info,
                    )
                })
            };
            TemplateDef {
                name: t.name.name.clone(),
                email: t.kind.name == "email",
                subject: get("subject"),
                text: get("text"),
                html: get("html"),
            }
        })
        .collect();
    let sources_out = env.sources.values().map(|s| source_def(s)).collect();
    let mut flows = Vec::new();
    for f in env.flows_in_order() {
        let Some(file) = sources.get(f.decl.span.file) else {
            continue;
        };
        flows.push(flow::FlowLowering::new(env, info, f, file).lower());
    }
    let mut tests_out = Vec::new();
    for (id, m) in modules {
        let Some(file) = sources.get(*id) else {
            continue;
        };
        for item in &m.items {
            if let Item::Test(t) = item {
                tests_out.push(tests::lower_test(env, t, file));
            }
        }
    }
    let mut bundle = Bundle {
        format: FORMAT_VERSION,
        schema,
        events,
        channels,
        templates,
        sources: sources_out,
        flows,
        tests: tests_out,
        defines: env
            .defines
            .iter()
            .map(|(n, d)| (n.clone(), code(env, &names(), &d.value)))
            .collect(),
        env: Vec::new(),
    };
    bundle.env = env_names(&bundle);
    bundle
}

fn field_type(t: &Type) -> FieldType {
    match t.base() {
        Type::Text | Type::TimeOfDay | Type::Percent => FieldType::Text,
        Type::Int => FieldType::Int,
        Type::Decimal => FieldType::Decimal,
        Type::Bool => FieldType::Bool,
        Type::Time => FieldType::Time,
        Type::Date => FieldType::Date,
        Type::Duration => FieldType::Duration,
        Type::Email => FieldType::Email,
        Type::Phone => FieldType::Phone,
        Type::Url => FieldType::Url,
        Type::Timezone => FieldType::Timezone,
        Type::Set(e) => FieldType::Set(Box::new(field_type(e))),
        Type::List(e) => FieldType::List(Box::new(field_type(e))),
        Type::Union(v) => FieldType::Union(v.clone()),
        Type::Optional(_) | Type::Json | Type::Map | Type::Unknown => FieldType::Json,
    }
}

fn field_def(f: &FieldInfo, default: Option<crate::value::Value>) -> FieldDef {
    let default = match (&f.ty, default) {
        (Type::Set(_), Some(crate::value::Value::List(items))) => {
            Some(crate::value::Value::set_of(items))
        }
        (_, d) => d,
    };
    FieldDef {
        name: f.name.clone(),
        ty: field_type(&f.ty),
        optional: f.ty.is_optional(),
        unique: f.unique,
        default,
    }
}

/// A template value: a string, or `file(…)` read through the checker.
pub(crate) fn tpl_of(e: &Expr, base: Option<&std::path::Path>, info: &TypeInfo) -> Option<Tpl> {
    match &e.kind {
        ExprKind::Str(s) => Some(Tpl(s.value.clone())),
        ExprKind::Call { func, args } if func.name == "file" => {
            let Some(ExprKind::Str(p)) = args.first().map(|a| &a.kind) else {
                return None;
            };
            let full = crate::files::normalize(
                &base
                    .map(|b| b.parent().unwrap_or(b).join(&p.value))
                    .unwrap_or_default(),
            );
            info.files
                .get(&full)
                .or_else(|| {
                    info.files
                        .iter()
                        .find(|(k, _)| k.ends_with(&p.value))
                        .map(|(_, v)| v)
                })
                .map(|t| Tpl(t.clone()))
        }
        _ => None,
    }
}

/// The message of a declared template.
pub(crate) fn template_message(env: &Env<'_>, name: &str, info: &TypeInfo) -> MessageDef {
    let Some((t, _)) = env.templates.get(name) else {
        return MessageDef {
            template: Some(name.into()),
            subject: None,
            text: None,
            html: None,
        };
    };
    let get = |n: &str| {
        t.settings
            .iter()
            .find(|s| s.name.name == n)
            .and_then(|s| tpl_of(&s.value, None, info))
    };
    MessageDef {
        template: Some(name.into()),
        subject: get("subject"),
        text: get("text"),
        html: get("html"),
    }
}

fn body(e: &Expr, env: &Env<'_>) -> Body {
    match &e.kind {
        ExprKind::Str(s) => Body::Tpl(Tpl(s.value.clone())),
        ExprKind::Json(inner) | ExprKind::Paren(inner) => body(inner, env),
        ExprKind::Map(entries) => Body::Object(
            entries
                .iter()
                .map(|en| (en.key.text().to_string(), body(&en.value, env)))
                .collect(),
        ),
        ExprKind::List(items) => Body::Array(items.iter().map(|i| body(i, env)).collect()),
        _ => Body::Expr(code(env, &names(), e)),
    }
}

fn rate(e: &Expr) -> Option<Rate> {
    match &e.kind {
        ExprKind::Rate { count, per } => Some(Rate {
            count: match count.kind {
                ExprKind::Int(n) => u32::try_from(n).unwrap_or(u32::MAX),
                _ => 1,
            },
            per_seconds: i64::try_from(per.seconds()).unwrap_or(i64::MAX),
        }),
        _ => None,
    }
}

fn channel_def(env: &Env<'_>, c: &ast::ChannelDecl, _info: &TypeInfo) -> ChannelDef {
    let get = |n: &str| {
        c.settings
            .iter()
            .find(|s| s.name.name == n)
            .map(|s| &s.value)
    };
    let c_of = |n: &str| get(n).map(|e| code(env, &names(), e));
    let text_of = |n: &str| match get(n).map(|e| &e.kind) {
        Some(ExprKind::Str(s)) => Some(s.value.clone()),
        _ => None,
    };
    let kind = match c.kind.name.as_str() {
        "smtp" => {
            let security = text_of("security").unwrap_or_else(|| "starttls".into());
            let default_port = match security.as_str() {
                "tls" => 465,
                "none" => 25,
                _ => 587,
            };
            let port = match get("port").map(|e| &e.kind) {
                Some(ExprKind::Int(p)) => u16::try_from(*p).unwrap_or(default_port),
                _ => default_port,
            };
            ChannelKind::Smtp {
                host: c_of("host").unwrap_or_default(),
                port,
                security,
                username: c_of("username"),
                password: c_of("password"),
                from: c_of("from").unwrap_or_default(),
                reply_to: c_of("reply_to"),
            }
        }
        "slack" => ChannelKind::Slack {
            webhook: c_of("webhook").unwrap_or_default(),
        },
        _ => ChannelKind::Http {
            method: text_of("method").unwrap_or_else(|| "POST".into()),
            url: get("url")
                .map(|e| body(e, env))
                .unwrap_or(Body::Tpl(Tpl(String::new()))),
            headers: match get("headers").map(|e| &e.kind) {
                Some(ExprKind::Map(entries)) => entries
                    .iter()
                    .map(|en| (en.key.text().to_string(), body(&en.value, env)))
                    .collect(),
                _ => Vec::new(),
            },
            body: get("body").map(|e| body(e, env)),
        },
    };
    ChannelDef {
        name: c.name.name.clone(),
        kind,
        rate: get("rate").and_then(rate),
        cap: get("cap").and_then(rate),
        timeout_seconds: get("timeout").and_then(|e| match &e.kind {
            ExprKind::Duration(d) => i64::try_from(d.seconds()).ok(),
            _ => None,
        }),
    }
}

fn param_value(e: &Expr) -> ParamValue {
    match &e.kind {
        ExprKind::Call { func, args } => {
            let arg = match args.first().map(|a| &a.kind) {
                Some(ExprKind::Str(s)) => s.value.clone(),
                _ => String::new(),
            };
            if func.name == "env" {
                ParamValue::Env(arg)
            } else {
                ParamValue::Param(arg)
            }
        }
        ExprKind::Str(s) => ParamValue::Literal(s.value.clone()),
        _ => ParamValue::Literal(String::new()),
    }
}

fn source_def(s: &ast::SourceDecl) -> SourceDef {
    let mut out = SourceDef {
        name: s.name.name.clone(),
        contact_key: String::new(),
        event: ParamValue::Param("event".into()),
        token: ParamValue::Literal(String::new()),
        rename: Vec::new(),
        fields: Vec::new(),
        hold_seconds: 7 * 86_400,
        dedupe: Vec::new(),
    };
    for e in &s.entries {
        match e {
            ast::SourceEntry::Setting(set) => match set.name.name.as_str() {
                "contact" => {
                    if let ExprKind::Name(n) = &set.value.kind {
                        out.contact_key = n.name.clone();
                    }
                }
                "event" => out.event = param_value(&set.value),
                "token" => out.token = param_value(&set.value),
                "dedupe" => {
                    let mut parts = Vec::new();
                    // checked by the types stage: only `param(…)` and strings
                    let _ = crate::types::dedupe_parts(&set.value, &mut parts);
                    out.dedupe = parts.into_iter().map(param_value).collect();
                }
                "hold" => {
                    if let ExprKind::Duration(d) = &set.value.kind {
                        out.hold_seconds = i64::try_from(d.seconds()).unwrap_or(i64::MAX);
                    }
                }
                _ => {}
            },
            ast::SourceEntry::Rename { pairs, .. } => {
                out.rename = pairs
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.name.clone()))
                    .collect();
            }
            ast::SourceEntry::Fields { settings, .. } => {
                out.fields = settings
                    .iter()
                    .map(|f| (f.name.name.clone(), param_value(&f.value)))
                    .collect();
            }
        }
    }
    out
}

/// Every `env("…")` name the bundle reads.
fn env_names(b: &Bundle) -> Vec<String> {
    let json = serde_json::to_value(b).unwrap_or_default();
    let mut out = BTreeSet::new();
    collect_env(&json, &mut out);
    out.into_iter().collect()
}

fn collect_env(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "Env"
                    && let serde_json::Value::String(s) = v
                {
                    out.insert(s.clone());
                    continue;
                }
                if k == "tests" {
                    continue;
                }
                collect_env(v, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                collect_env(v, out);
            }
        }
        _ => {}
    }
}
