//! Declarations (`contact`, `event`, `channel`, `template`, `source`,
//! `define`, `flow`, `test`), flow items, and the `{ name = value }` entries
//! shared with statements.
//!
//! Takes AST nodes and a [`Printer`]; writes them in the canonical layout.
//! `contact`, `channel`, `template`, `source`, `flow`, `step` and `test`
//! bodies are always one entry per line; the brace lists of `event`
//! declarations, `rename`/`fields`, and of statements (`send … { … }`,
//! `call … with { … }`, `emit`, test `contact`/`event`/`postback`) stay on one
//! line when they fit in [`super::printer::WIDTH`] columns and hold no comment,
//! else go one entry per line.

use super::expr::expr;
use super::lit;
use super::printer::{Printer, Slot};
use super::stmt::stmt;
use super::test::test_stmt;
use nudge_grammar::ast::*;
use nudge_grammar::span::Span;

pub(super) fn item_slot(item: &Item) -> Slot {
    let doc = match item {
        Item::Contact(d) => &d.doc,
        Item::Event(d) => &d.doc,
        Item::Channel(d) => &d.doc,
        Item::Template(d) => &d.doc,
        Item::Source(d) => &d.doc,
        Item::Define(d) => &d.doc,
        Item::Flow(d) => &d.doc,
        Item::Test(d) => &d.doc,
    };
    Slot::with_doc(item.span(), doc.as_deref())
}

pub(super) fn item(p: &mut Printer, item: &Item) {
    match item {
        Item::Contact(d) => {
            p.write("contact {");
            p.block(
                &d.fields,
                p.close_of(d.span),
                |f| Slot::plain(f.span),
                field,
            );
        }
        Item::Event(d) => {
            p.write(&format!("event {} ", d.name.name));
            let start = d.name.span.end as usize;
            braces(
                p,
                &d.fields,
                start,
                p.close_of(d.span),
                |f| f.span,
                field_text,
            );
        }
        Item::Channel(d) => decl_settings(p, "channel", &d.name, &d.kind, &d.settings, d.span),
        Item::Template(d) => decl_settings(p, "template", &d.name, &d.kind, &d.settings, d.span),
        Item::Source(d) => {
            p.write(&format!("source {}: {} {{", d.name.name, d.kind.name));
            p.block(
                &d.entries,
                p.close_of(d.span),
                |e| Slot::plain(source_entry_span(e)),
                source_entry,
            );
        }
        Item::Define(d) => {
            let value = expr(&d.value, p.width());
            p.write(&format!("define {} = {value}", d.name.name));
        }
        Item::Flow(d) => {
            p.write(&format!("flow {}", d.name.name));
            title(p, d.title.as_ref());
            p.write(" {");
            p.block(&d.body, p.close_of(d.span), flow_item_slot, flow_item);
        }
        Item::Test(d) => {
            let name = lit::string(&d.name, p.width());
            p.write(&format!("test {name} {{"));
            p.block(
                &d.body,
                p.close_of(d.span),
                |s| Slot::plain(s.span),
                test_stmt,
            );
        }
    }
}

fn title(p: &mut Printer, t: Option<&StrLit>) {
    if let Some(t) = t {
        let s = lit::string(t, p.width());
        p.write(" ");
        p.write(&s);
    }
}

fn decl_settings(
    p: &mut Printer,
    keyword: &str,
    name: &Ident,
    kind: &Ident,
    settings: &[Setting],
    span: Span,
) {
    p.write(&format!("{keyword} {}: {} {{", name.name, kind.name));
    p.block(
        settings,
        p.close_of(span),
        |s| Slot::plain(s.span),
        |p, s| {
            let text = setting_text(s, p.width());
            p.write(&text);
        },
    );
}

fn field(p: &mut Printer, f: &FieldDecl) {
    let text = field_text(f, p.width());
    p.write(&text);
}

/// `name: type [unique] [= default]`
fn field_text(f: &FieldDecl, indent: usize) -> String {
    let mut s = format!("{}: {}", f.name.name, type_expr(&f.ty, indent));
    if f.unique {
        s.push_str(" unique");
    }
    if let Some(d) = &f.default {
        s.push_str(" = ");
        s.push_str(&expr(d, indent));
    }
    s
}

fn type_expr(t: &TypeExpr, indent: usize) -> String {
    match &t.kind {
        TypeExprKind::Named(n) => n.name.clone(),
        TypeExprKind::Set(inner) => format!("set<{}>", type_expr(inner, indent)),
        TypeExprKind::List(inner) => format!("list<{}>", type_expr(inner, indent)),
        TypeExprKind::Union(options) => {
            let options: Vec<String> = options.iter().map(|o| lit::string(o, indent)).collect();
            options.join(" | ")
        }
        TypeExprKind::Optional(inner) => format!("{}?", type_expr(inner, indent)),
    }
}

/// `name = value`
pub(super) fn setting_text(s: &Setting, indent: usize) -> String {
    format!("{} = {}", s.name.name, expr(&s.value, indent))
}

/// A `{ … }` list of `name = value` settings; see [`braces`].
pub(super) fn settings(p: &mut Printer, settings: &[Setting], start: usize, close: usize) {
    braces(p, settings, start, close, |s| s.span, setting_text);
}

/// A brace list: `{ a, b }` on one line when it fits and no comment lies in
/// `start..close` (`close` is the offset of its `}`), else `{`, one entry per
/// line, `}`. `text` gives an entry at an indentation.
pub(super) fn braces<T>(
    p: &mut Printer,
    items: &[T],
    start: usize,
    close: usize,
    span: impl Fn(&T) -> Span,
    text: impl Fn(&T, usize) -> String,
) {
    if !p.has_comment_in(start, close) {
        let parts: Vec<String> = items.iter().map(|t| text(t, p.width())).collect();
        let one_line = if parts.is_empty() {
            "{}".to_string()
        } else {
            format!("{{ {} }}", parts.join(", "))
        };
        if p.fits(&one_line) {
            p.write(&one_line);
            return;
        }
    }
    p.write("{");
    p.block(
        items,
        close,
        |t| Slot::plain(span(t)),
        |p, t| {
            let s = text(t, p.width());
            p.write(&s);
        },
    );
}

fn source_entry_span(e: &SourceEntry) -> Span {
    match e {
        SourceEntry::Setting(s) => s.span,
        SourceEntry::Rename { span, .. } | SourceEntry::Fields { span, .. } => *span,
    }
}

fn source_entry(p: &mut Printer, e: &SourceEntry) {
    match e {
        SourceEntry::Setting(s) => {
            let text = setting_text(s, p.width());
            p.write(&text);
        }
        SourceEntry::Rename { pairs, span } => {
            p.write("rename ");
            let (start, close) = (span.start as usize, p.close_of(*span));
            braces(
                p,
                pairs,
                start,
                close,
                |(from, to)| from.span.to(to.span),
                |(from, to), indent| format!("{} = {}", lit::string(from, indent), to.name),
            );
        }
        SourceEntry::Fields { settings: s, span } => {
            p.write("fields ");
            let (start, close) = (span.start as usize, p.close_of(*span));
            settings(p, s, start, close);
        }
    }
}

fn flow_item_slot(i: &FlowItem) -> Slot {
    match i {
        FlowItem::Trigger(t) => Slot::plain(t.span),
        FlowItem::Option(o) => Slot::plain(match o {
            FlowOption::Reenter { span, .. }
            | FlowOption::ExitWhen { span, .. }
            | FlowOption::Goal { span, .. }
            | FlowOption::Holdout { span, .. } => *span,
            FlowOption::Window(w) => w.span,
        }),
        FlowItem::Handler(h) => Slot::plain(h.span),
        FlowItem::Step(s) => Slot::with_doc(s.span, s.doc.as_deref()),
        FlowItem::Stmt(s) => Slot::plain(s.span),
    }
}

/// `sale`, `resale #2`
pub(super) fn event_ref(e: &EventRef) -> String {
    match e.nth {
        Some((n, _)) => format!("{} #{n}", e.name.name),
        None => e.name.name.clone(),
    }
}

/// ` where COND`, or nothing.
pub(super) fn where_clause(cond: Option<&Expr>, indent: usize) -> String {
    cond.map_or_else(String::new, |c| format!(" where {}", expr(c, indent)))
}

fn local(local: bool) -> &'static str {
    if local { " local" } else { "" }
}

pub(super) fn window(w: &Window) -> String {
    format!(
        "window {}..{}{}",
        lit::time_of_day(&w.from),
        lit::time_of_day(&w.to),
        local(w.local)
    )
}

/// `[monday ]10:00[ local]`
pub(super) fn clock(day: Option<Weekday>, time: &TimeOfDay, is_local: bool) -> String {
    let day = day.map_or_else(String::new, |d| format!("{} ", d.name()));
    format!("{day}{}{}", lit::time_of_day(time), local(is_local))
}

fn flow_item(p: &mut Printer, i: &FlowItem) {
    let w = p.width();
    match i {
        FlowItem::Trigger(t) => {
            let head = match &t.kind {
                TriggerKind::Keyword(k) => format!("keyword {}", lit::string(k, w)),
                TriggerKind::Event(e) => format!("when {}", event_ref(e)),
                TriggerKind::Time(e) => format!("when {}", expr(e, w)),
                TriggerKind::Schedule(Schedule::At {
                    day, time, local, ..
                }) => {
                    let day = day.map_or("day", |d| d.name());
                    let at = clock(None, time, *local);
                    format!("when every {day} at {at}")
                }
                TriggerKind::Schedule(Schedule::Cron {
                    expr: e, local: l, ..
                }) => {
                    format!("when every {}{}", lit::string(e, w), local(*l))
                }
            };
            p.write(&head);
            if let Some(l) = &t.late {
                p.write(&format!(" late {}", lit::duration(l)));
            }
            p.write(&where_clause(t.cond.as_ref(), w));
        }
        FlowItem::Option(o) => {
            let text = match o {
                FlowOption::Reenter { mode, .. } => format!("reenter {}", mode.name()),
                FlowOption::ExitWhen { event, cond, .. } => {
                    format!(
                        "exit when {}{}",
                        event_ref(event),
                        where_clause(cond.as_ref(), w)
                    )
                }
                FlowOption::Goal { event, cond, .. } => {
                    format!(
                        "goal {}{}",
                        event_ref(event),
                        where_clause(cond.as_ref(), w)
                    )
                }
                FlowOption::Holdout { percent, .. } => {
                    format!("holdout {}", lit::percent(percent))
                }
                FlowOption::Window(win) => window(win),
            };
            p.write(&text);
        }
        FlowItem::Handler(h) => {
            let head = format!(
                "on {}{} -> ",
                event_ref(&h.event),
                where_clause(h.cond.as_ref(), w)
            );
            p.write(&head);
            stmt(p, &h.body);
        }
        FlowItem::Step(s) => step(p, s),
        FlowItem::Stmt(s) => stmt(p, s),
    }
}

/// A step's body in source order: its `window` among its statements.
enum StepPart<'a> {
    Window(&'a Window),
    Stmt(&'a Stmt),
}

fn step(p: &mut Printer, s: &Step) {
    p.write(&format!("step {}", s.name.name));
    title(p, s.title.as_ref());
    p.write(" {");
    let mut parts: Vec<StepPart> = s.body.iter().map(StepPart::Stmt).collect();
    if let Some(w) = &s.window {
        let at = s.body.partition_point(|st| st.span.start < w.span.start);
        parts.insert(at, StepPart::Window(w));
    }
    let slot = |part: &StepPart| {
        Slot::plain(match part {
            StepPart::Window(w) => w.span,
            StepPart::Stmt(st) => st.span,
        })
    };
    p.block(&parts, p.close_of(s.span), slot, |p, part| match part {
        StepPart::Window(w) => p.write(&window(w)),
        StepPart::Stmt(st) => stmt(p, st),
    });
}
