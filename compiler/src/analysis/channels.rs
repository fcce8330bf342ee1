//! `send` and `call` against their channel (LANGUAGE.md §4.3, §4.4, §10).
//!
//! * `wrong_channel_kind`: e-mail content (an `email` template, `subject` or
//!   `html`) on a channel that is not `smtp`; content without a subject (a
//!   `text` template, a string) on an `smtp` channel; `call` of an `smtp`
//!   channel.
//! * `no_recipient`: e-mail without `to` when the contact has no field
//!   `email` of type `email`.
//! * `send_to_data_channel`, `call_to_message_channel`, `missing_call_data`:
//!   a channel whose request reads `message` is for `send`, one that reads
//!   `data` is for `call`, and a `call` must give every `data.F` it reads.
//!   A `slack` channel posts the message, so it reads `message`.

use super::Bundle;
use super::diag::AnalysisError;
use super::reads::{ChannelReads, channel_reads};
use crate::diagnostics::{Diagnostics, ss};
use crate::model::{ChannelKind, TemplateKind, Type};
use crate::walk::each_flow_stmt;
use nudge_grammar::ast::{CallTarget, Content, Ident, Setting, Stmt, StmtKind};
use nudge_grammar::span::Span;
use std::collections::BTreeMap;

pub fn check(b: &Bundle<'_, '_>, diags: &mut Diagnostics) {
    let mut reads: BTreeMap<&str, ChannelReads> = BTreeMap::new();
    for (name, (decl, kind)) in &b.env.channels {
        let mut r = channel_reads(decl);
        if *kind == Some(ChannelKind::Slack) {
            r.message = true;
        }
        reads.insert(name.as_str(), r);
    }
    let c = Checker { b, reads };
    for flow in &b.flows {
        each_flow_stmt(flow.decl, &mut |s| c.stmt(s, diags));
    }
}

struct Checker<'b, 'e, 'a> {
    b: &'b Bundle<'e, 'a>,
    reads: BTreeMap<&'b str, ChannelReads>,
}

impl Checker<'_, '_, '_> {
    fn kind(&self, channel: &Ident) -> Option<ChannelKind> {
        self.b.env.channels.get(&channel.name).and_then(|(_, k)| *k)
    }

    fn stmt(&self, s: &Stmt, diags: &mut Diagnostics) {
        match &s.kind {
            StmtKind::Send {
                channel,
                content,
                to,
                ..
            } => {
                let Some(kind) = self.kind(channel) else {
                    return;
                };
                self.content(channel, kind, content, diags);
                if kind == ChannelKind::Smtp {
                    if to.is_none() {
                        self.recipient(s, channel, diags);
                    }
                    return;
                }
                if self
                    .reads
                    .get(channel.name.as_str())
                    .is_some_and(|r| r.data)
                {
                    diags.push(
                        channel.span,
                        AnalysisError::SendToDataChannel {
                            channel: channel.name.clone(),
                            span: ss(channel.span),
                            help: format!(
                                "`data` is what `call {c} with {{ … }}` gives; use `call`, or build the channel's request from `message`",
                                c = channel.name
                            ),
                        },
                    );
                }
            }
            StmtKind::Call {
                target: CallTarget::Channel(channel),
                with,
                ..
            } => {
                let Some(kind) = self.kind(channel) else {
                    return;
                };
                if kind == ChannelKind::Smtp {
                    let c = &channel.name;
                    diags.push(
                        channel.span,
                        AnalysisError::WrongChannelKind {
                            message: format!("e-mail channel `{c}` cannot be called"),
                            span: ss(channel.span),
                            label: "an `smtp` channel".into(),
                            help: format!("e-mail can only be sent: `send {c} TEMPLATE`"),
                        },
                    );
                    return;
                }
                let Some(reads) = self.reads.get(channel.name.as_str()) else {
                    return;
                };
                if reads.message {
                    let c = &channel.name;
                    let help = if kind == ChannelKind::Slack {
                        format!("a `slack` channel posts a message: write `send {c} \"…\"`")
                    } else {
                        format!(
                            "`message` is the text of a `send`: write `send {c} \"…\"`, or build the channel's request from `data`"
                        )
                    };
                    diags.push(
                        channel.span,
                        AnalysisError::CallToMessageChannel {
                            channel: c.clone(),
                            span: ss(channel.span),
                            help,
                        },
                    );
                }
                self.call_data(s, channel, with.as_deref(), reads, diags);
            }
            _ => {}
        }
    }

    fn content(
        &self,
        channel: &Ident,
        kind: ChannelKind,
        content: &Content,
        diags: &mut Diagnostics,
    ) {
        let c = &channel.name;
        let email = kind == ChannelKind::Smtp;
        let (span, message, label, help) = match content {
            Content::Template(t) => {
                let tkind = self.b.env.templates.get(&t.name).and_then(|(_, k)| *k);
                match tkind {
                    Some(TemplateKind::Email) if !email => (
                        t.span,
                        format!("e-mail template `{}` cannot be sent on channel `{c}`", t.name),
                        "an `email` template".to_string(),
                        format!(
                            "`{c}` is a `{}` channel, which takes text: send `{}` on an `smtp` channel, or send a `text` template or a string here",
                            kind.name(),
                            t.name
                        ),
                    ),
                    Some(TemplateKind::Text) if email => (
                        t.span,
                        format!("text template `{}` cannot be sent on e-mail channel `{c}`", t.name),
                        "a `text` template has no subject".to_string(),
                        "an e-mail needs a subject: use an `email` template, or `{ subject = \"…\", text = \"…\" }`".to_string(),
                    ),
                    _ => return,
                }
            }
            Content::Inline(lit) if email => (
                lit.span,
                format!("a string cannot be sent on e-mail channel `{c}`"),
                "no subject".to_string(),
                "an e-mail needs a subject: use an e-mail template, or `{ subject = \"…\", text = \"…\" }`".to_string(),
            ),
            Content::Inline(_) => return,
            Content::Fields(settings, span) => {
                match fields_problem(c, kind, settings, *span) {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        diags.push(
            span,
            AnalysisError::WrongChannelKind {
                message,
                span: ss(span),
                label,
                help,
            },
        );
    }

    fn recipient(&self, s: &Stmt, channel: &Ident, diags: &mut Diagnostics) {
        let env = self.b.env;
        if env
            .contact_field("email")
            .is_some_and(|f| *f.ty.base() == Type::Email)
        {
            return;
        }
        let other = env
            .contact
            .iter()
            .find(|f| *f.ty.base() == Type::Email)
            .map(|f| f.name.clone());
        let help = match other {
            Some(f) => format!("send it to an e-mail field: add `to contact.{f}`"),
            None => "add `to EXPR` with an e-mail address, or declare `email: email?` in the `contact` schema".into(),
        };
        let span = Span {
            end: channel.span.end,
            ..s.span
        };
        diags.push(
            span,
            AnalysisError::NoRecipient {
                channel: channel.name.clone(),
                span: ss(span),
                help,
            },
        );
    }

    fn call_data(
        &self,
        s: &Stmt,
        channel: &Ident,
        with: Option<&[Setting]>,
        reads: &ChannelReads,
        diags: &mut Diagnostics,
    ) {
        let given = |f: &str| with.is_some_and(|w| w.iter().any(|s| s.name.name == f));
        let missing: Vec<&String> = reads.data_fields.iter().filter(|f| !given(f)).collect();
        if missing.is_empty() {
            return;
        }
        let listed = missing
            .iter()
            .map(|f| format!("`data.{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let settings = missing
            .iter()
            .map(|f| format!("{f} = …"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match with {
            Some(_) => format!("add `{settings}` to its `with {{ … }}`"),
            None => format!("give them: `call {} with {{ {settings} }}`", channel.name),
        };
        let span = Span {
            end: channel.span.end,
            ..s.span
        };
        diags.push(
            span,
            AnalysisError::MissingCallData {
                channel: channel.name.clone(),
                missing: listed,
                span: ss(span),
                help,
            },
        );
    }
}

/// `{ subject = …, text = … }` on a channel: e-mail needs a subject and a
/// body; other channels take only `text`.
fn fields_problem(
    c: &str,
    kind: ChannelKind,
    settings: &[Setting],
    span: Span,
) -> Option<(Span, String, String, String)> {
    let has = |n: &str| settings.iter().any(|s| s.name.name == n);
    if kind == ChannelKind::Smtp {
        if !has("subject") {
            return Some((
                span,
                format!("an e-mail on channel `{c}` needs a `subject`"),
                "no `subject`".into(),
                "add `subject = \"…\"`".into(),
            ));
        }
        if !has("text") && !has("html") {
            return Some((
                span,
                format!("an e-mail on channel `{c}` needs a body"),
                "no `text` or `html`".into(),
                "add `text = \"…\"` or `html = \"…\"`".into(),
            ));
        }
        return None;
    }
    let s = settings
        .iter()
        .find(|s| matches!(s.name.name.as_str(), "subject" | "html"))?;
    let n = &s.name.name;
    Some((
        s.name.span,
        format!("`{n}` cannot be sent on channel `{c}`"),
        format!("only e-mail has `{n}`"),
        format!(
            "a `{}` channel takes only `text`: write `{{ text = \"…\" }}` or a string",
            kind.name()
        ),
    ))
}
