//! What a template calls, read from MiniJinja's AST (its `unstable_machinery`
//! feature: MiniJinja itself resolves filters, tests and functions only at
//! render time): every filter, test and function call with the byte offset
//! of its name and its literal arguments, and the plain-text parts of the
//! template (for the single-brace check).

use minijinja::Value;
use minijinja::machinery::ast::{CallArg, Expr, Stmt};

/// What kind of name a template calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    Filter,
    Test,
    Function,
}

/// One call of a filter, test or function.
#[derive(Debug, Clone)]
pub struct Use {
    pub kind: UseKind,
    pub name: String,
    /// Byte offset of the name in the template text.
    pub at: usize,
    /// Positional arguments: the value if it is a literal.
    pub positional: Vec<Option<Value>>,
    /// Keyword arguments: the value if it is a literal.
    pub kwargs: Vec<(String, Option<Value>)>,
    /// Byte range of each positional argument, then each keyword value.
    pub arg_spans: Vec<(usize, usize)>,
    /// `*args` / `**kwargs`: the arguments are not known.
    pub splat: bool,
}

/// Everything [`collect`] found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub uses: Vec<Use>,
    /// Plain text of the template, with its byte offset.
    pub raw: Vec<(usize, String)>,
}

/// Walk a parsed template.
pub fn collect(root: &Stmt<'_>) -> Found {
    let mut f = Found::default();
    stmt(root, &mut f);
    f
}

fn stmts(list: &[Stmt<'_>], f: &mut Found) {
    for s in list {
        stmt(s, f);
    }
}

fn stmt(s: &Stmt<'_>, f: &mut Found) {
    match s {
        Stmt::Template(t) => stmts(&t.children, f),
        Stmt::EmitExpr(e) => expr(&e.expr, f),
        Stmt::EmitRaw(r) => f
            .raw
            .push((r.span().start_offset as usize, r.raw.to_string())),
        Stmt::ForLoop(l) => {
            expr(&l.target, f);
            expr(&l.iter, f);
            if let Some(e) = &l.filter_expr {
                expr(e, f);
            }
            stmts(&l.body, f);
            stmts(&l.else_body, f);
        }
        Stmt::IfCond(c) => {
            expr(&c.expr, f);
            stmts(&c.true_body, f);
            stmts(&c.false_body, f);
        }
        Stmt::WithBlock(w) => {
            for (a, b) in &w.assignments {
                expr(a, f);
                expr(b, f);
            }
            stmts(&w.body, f);
        }
        Stmt::Set(s) => {
            expr(&s.target, f);
            expr(&s.expr, f);
        }
        Stmt::SetBlock(s) => {
            if let Some(e) = &s.filter {
                expr(e, f);
            }
            stmts(&s.body, f);
        }
        Stmt::AutoEscape(a) => {
            expr(&a.enabled, f);
            stmts(&a.body, f);
        }
        Stmt::FilterBlock(b) => {
            expr(&b.filter, f);
            stmts(&b.body, f);
        }
        Stmt::Block(b) => stmts(&b.body, f),
        Stmt::Import(i) => expr(&i.expr, f),
        Stmt::FromImport(i) => expr(&i.expr, f),
        Stmt::Extends(e) => expr(&e.name, f),
        Stmt::Include(i) => expr(&i.name, f),
        Stmt::Macro(m) => {
            for d in &m.defaults {
                expr(d, f);
            }
            stmts(&m.body, f);
        }
        Stmt::CallBlock(c) => {
            call(&c.call.expr, &c.call.args, f);
            stmts(&c.macro_decl.body, f);
        }
        Stmt::Do(d) => call(&d.call.expr, &d.call.args, f),
    }
}

fn expr(e: &Expr<'_>, f: &mut Found) {
    match e {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(s) => {
            expr(&s.expr, f);
            for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                expr(part, f);
            }
        }
        Expr::UnaryOp(u) => expr(&u.expr, f),
        Expr::BinOp(b) => {
            expr(&b.left, f);
            expr(&b.right, f);
        }
        Expr::Compare(c) => {
            expr(&c.expr, f);
            for op in &c.ops {
                expr(&op.expr, f);
            }
        }
        Expr::IfExpr(i) => {
            expr(&i.test_expr, f);
            expr(&i.true_expr, f);
            if let Some(e) = &i.false_expr {
                expr(e, f);
            }
        }
        Expr::Filter(x) => {
            if let Some(e) = &x.expr {
                expr(e, f);
            }
            record(UseKind::Filter, x.name, x.span().start_offset, &x.args, f);
        }
        Expr::Test(x) => {
            expr(&x.expr, f);
            record(UseKind::Test, x.name, x.span().start_offset, &x.args, f);
        }
        Expr::GetAttr(g) => expr(&g.expr, f),
        Expr::GetItem(g) => {
            expr(&g.expr, f);
            expr(&g.subscript_expr, f);
        }
        Expr::Call(c) => call(&c.expr, &c.args, f),
        Expr::List(l) => l.items.iter().for_each(|i| expr(i, f)),
        Expr::Tuple(t) => t.items.iter().for_each(|i| expr(i, f)),
        Expr::Map(m) => {
            m.keys.iter().for_each(|i| expr(i, f));
            m.values.iter().for_each(|i| expr(i, f));
        }
    }
}

/// A call: of a function when the callee is a plain name (`range(3)`),
/// otherwise of a method or a value (walked, not recorded).
fn call(callee: &Expr<'_>, args: &[CallArg<'_>], f: &mut Found) {
    match callee {
        Expr::Var(v) => record(UseKind::Function, v.id, v.span().start_offset, args, f),
        other => {
            expr(other, f);
            args_only(args, f);
        }
    }
}

fn args_only(args: &[CallArg<'_>], f: &mut Found) {
    for a in args {
        match a {
            CallArg::Pos(e)
            | CallArg::Kwarg(_, e)
            | CallArg::PosSplat(e)
            | CallArg::KwargSplat(e) => expr(e, f),
        }
    }
}

fn span_of(e: &Expr<'_>) -> (usize, usize) {
    let s = match e {
        Expr::Var(x) => x.span(),
        Expr::Const(x) => x.span(),
        Expr::Slice(x) => x.span(),
        Expr::UnaryOp(x) => x.span(),
        Expr::BinOp(x) => x.span(),
        Expr::Compare(x) => x.span(),
        Expr::IfExpr(x) => x.span(),
        Expr::Filter(x) => x.span(),
        Expr::Test(x) => x.span(),
        Expr::GetAttr(x) => x.span(),
        Expr::GetItem(x) => x.span(),
        Expr::Call(x) => x.span(),
        Expr::List(x) => x.span(),
        Expr::Tuple(x) => x.span(),
        Expr::Map(x) => x.span(),
    };
    (s.start_offset as usize, s.end_offset as usize)
}

fn literal(e: &Expr<'_>) -> Option<Value> {
    match e {
        Expr::Const(c) => Some(c.value.clone()),
        Expr::List(l) => l.as_const(),
        Expr::Map(m) => m.as_const(),
        _ => None,
    }
}

fn record(kind: UseKind, name: &str, at: u32, args: &[CallArg<'_>], f: &mut Found) {
    args_only(args, f);
    let mut u = Use {
        kind,
        name: name.to_string(),
        at: at as usize,
        positional: Vec::new(),
        kwargs: Vec::new(),
        arg_spans: Vec::new(),
        splat: false,
    };
    let mut kw_spans = Vec::new();
    for a in args {
        match a {
            CallArg::Pos(e) => {
                u.positional.push(literal(e));
                u.arg_spans.push(span_of(e));
            }
            CallArg::Kwarg(k, e) => {
                u.kwargs.push((k.to_string(), literal(e)));
                kw_spans.push(span_of(e));
            }
            CallArg::PosSplat(_) | CallArg::KwargSplat(_) => u.splat = true,
        }
    }
    u.arg_spans.extend(kw_spans);
    f.uses.push(u);
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::machinery::parse;

    fn found(src: &str) -> Found {
        let ast = parse(src, "t", Default::default()).expect("parses");
        collect(&ast)
    }

    #[test]
    fn finds_filters_tests_and_functions_with_offsets() {
        let src = "Hi {{ x | upper | datetime('%d', locale='ru') }}{% if y is odd %}{{ range(3) }}{% endif %}";
        let f = found(src);
        let names: Vec<(UseKind, &str, usize)> = f
            .uses
            .iter()
            .map(|u| (u.kind, u.name.as_str(), u.at))
            .collect();
        assert_eq!(
            names,
            vec![
                (UseKind::Filter, "upper", src.find("upper").unwrap_or(0)),
                (
                    UseKind::Filter,
                    "datetime",
                    src.find("datetime").unwrap_or(0)
                ),
                (UseKind::Test, "odd", src.find("odd").unwrap_or(0)),
                (UseKind::Function, "range", src.find("range").unwrap_or(0)),
            ]
        );
        let dt = &f.uses[1];
        assert_eq!(dt.positional, vec![Some(Value::from("%d"))]);
        assert_eq!(
            dt.kwargs,
            vec![("locale".to_string(), Some(Value::from("ru")))]
        );
        let (s, e) = dt.arg_spans[1];
        assert_eq!(&src[s..e], "'ru'");
        assert_eq!(f.raw, vec![(0, "Hi ".to_string())]);
    }

    #[test]
    fn method_calls_are_not_functions() {
        let f = found("{{ contact.name.upper() }}{% filter lower %}x{% endfilter %}");
        let names: Vec<&str> = f.uses.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, vec!["lower"]);
    }
}
