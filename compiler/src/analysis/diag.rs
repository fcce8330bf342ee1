//! The diagnostics of the analysis stage: [`AnalysisError`] (the program is
//! rejected) and [`AnalysisWarning`] (the program runs, but probably not as
//! meant). Codes are `nudge::analysis::<name>`; each variant's doc comment
//! shows an input that triggers it, and `tests/cases/analysis_<name>/` holds
//! a whole project for each.

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

/// Programs the analysis rejects.
#[derive(Debug, Error, Diagnostic)]
pub enum AnalysisError {
    /// `step ask { send sms "hi"; goto ask }`: nothing on the way waits, so the
    /// contact would be messaged over and over at the same instant. Cycles
    /// across flows (`goto other` … `goto this.step`) count too.
    #[error("`goto {target}` closes a loop that never waits")]
    #[diagnostic(code(nudge::analysis::loop_without_wait))]
    LoopWithoutWait {
        target: String,
        #[label("loops back without passing a `wait`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `on sale -> { wait 1 day; tag "x" }` (a flow-level handler), or
    /// `wait { after 1 day -> wait 2 days }` (a wait branch). Handlers run while
    /// the contact waits and hand it back to that wait; a wait branch runs as
    /// its wait ends. Neither may start a wait of its own: the place to wait is
    /// a step, reached with `goto`, or the statements after the `wait`.
    #[error("`wait` in {place}")]
    #[diagnostic(code(nudge::analysis::wait_in_handler))]
    WaitInHandler {
        place: &'static str,
        #[label("cannot wait here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `flow promo { … start promo }`
    #[error("flow `{flow}` starts itself")]
    #[diagnostic(
        code(nudge::analysis::start_self),
        help(
            "`start` enrolls the contact in another flow; to go back to a step of this flow, write `goto STEP`"
        )
    )]
    StartSelf {
        flow: String,
        #[label("`{flow}` is the flow this statement is in")]
        span: SourceSpan,
    },

    /// `flow promo { … stop promo }`
    #[error("flow `{flow}` stops itself")]
    #[diagnostic(
        code(nudge::analysis::stop_self),
        help("to leave this flow, write `exit`")
    )]
    StopSelf {
        flow: String,
        #[label("`{flow}` is the flow this statement is in")]
        span: SourceSpan,
    },

    /// `split { 50% -> tag "a"  40% -> tag "b" }`
    #[error("split shares do not add up to 100%")]
    #[diagnostic(code(nudge::analysis::split_shares))]
    SplitShares {
        #[label("these shares add up to {sum}%")]
        span: SourceSpan,
        sum: String,
        #[help]
        help: String,
    },

    /// `keyword "PROMO"` in one flow and `keyword " promo"` in another (or
    /// twice in one flow): keywords are compared without case and
    /// surrounding spaces, as they are matched.
    #[error("keyword `{keyword}` is already used by flow `{first_flow}`")]
    #[diagnostic(
        code(nudge::analysis::duplicate_keyword),
        help(
            "a message can only enroll by keyword in one flow, and keywords are compared without case and surrounding spaces; choose another keyword or remove this trigger"
        )
    )]
    DuplicateKeyword {
        keyword: String,
        first_flow: String,
        #[label("used again here")]
        span: SourceSpan,
        #[label("first used here")]
        first: Option<SourceSpan>,
    },

    /// `send team welcome` where `welcome` is an `email` template and `team` a
    /// `slack` channel; `send email "hi"` on an `smtp` channel (no subject);
    /// `send sms { subject = "…", text = "…" }` on an `http` channel;
    /// `call email` on an `smtp` channel.
    #[error("{message}")]
    #[diagnostic(code(nudge::analysis::wrong_channel_kind))]
    WrongChannelKind {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: String,
    },

    /// `send email welcome` on an `smtp` channel when the contact schema has
    /// no field `email: email` (optional or not) and the `send` has no `to`.
    #[error("e-mail on channel `{channel}` has no recipient")]
    #[diagnostic(code(nudge::analysis::no_recipient))]
    NoRecipient {
        channel: String,
        #[label("no `to`, and the contact has no `email` field of type `email`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `send leads_api "hi"` where channel `leads_api` builds its request
    /// from `data.interest`: only `call leads_api with { … }` supplies `data`.
    #[error("channel `{channel}` reads `data`, so it can only be used with `call`")]
    #[diagnostic(code(nudge::analysis::send_to_data_channel))]
    SendToDataChannel {
        channel: String,
        #[label("`send` gives a message, not `data`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `call sms with { … }` where channel `sms` has `text: message` in its
    /// body (or is a `slack` channel, which posts a message): only `send`
    /// renders a `message`.
    #[error("channel `{channel}` reads `message`, so it can only be used with `send`")]
    #[diagnostic(code(nudge::analysis::call_to_message_channel))]
    CallToMessageChannel {
        channel: String,
        #[label("`call` gives `data`, not a message")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `call leads_api` (or `call leads_api with { phone = … }`) where channel
    /// `leads_api` reads `data.interest`.
    #[error("`call {channel}` does not supply {missing}")]
    #[diagnostic(code(nudge::analysis::missing_call_data))]
    MissingCallData {
        channel: String,
        missing: String,
        #[label("channel `{channel}` reads {missing}")]
        span: SourceSpan,
        #[help]
        help: String,
    },
}

/// Programs that run, but probably not as their author meant.
#[derive(Debug, Error, Diagnostic)]
pub enum AnalysisWarning {
    /// `step a { goto c }  step b { … }  step c { … }`: `b` is not first, the
    /// step before it always leaves, and no `goto` (in any flow, handler, wait
    /// branch or `within … else`) names it.
    #[error("step `{name}` can never be reached")]
    #[diagnostic(
        code(nudge::analysis::unreachable_step),
        severity(Warning),
        help(
            "the step before it always leaves with `goto` or `exit`, and no `goto` names it; add `goto {name}` where it should run, or remove it"
        )
    )]
    UnreachableStep {
        name: String,
        #[label("never entered")]
        span: SourceSpan,
    },

    /// `exit; send sms "bye"`, or a statement after
    /// `if c { goto a } else { exit }`: control never gets there. Reported once
    /// per block, at its first unreachable statement. Also a statement after
    /// the first `step` that is in no step (it never runs).
    #[error("unreachable statement")]
    #[diagnostic(code(nudge::analysis::unreachable_code), severity(Warning))]
    UnreachableCode {
        #[label("never runs")]
        span: SourceSpan,
        #[label("every path leaves here")]
        cause: Option<SourceSpan>,
        #[help]
        help: String,
    },

    /// `event refund {}` that no flow, source `rename` or other declaration
    /// uses. Uses inside `test` blocks do not count: an event only tests send,
    /// a channel only tests expect, a named condition only tests read, are
    /// still reported. A named condition used only by unused named conditions
    /// is unused too. Contact fields and sources are never reported.
    #[error("{what} `{name}` is never used")]
    #[diagnostic(code(nudge::analysis::unused), severity(Warning))]
    Unused {
        what: &'static str,
        name: String,
        #[label("declared here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `source partner: postback { … }` without `dedupe = param("…")`: a
    /// postback the partner sends again (a retry after a timeout) counts
    /// again (LANGUAGE.md A5).
    #[error("source `{source_name}` has no `dedupe`: a retried postback counts again")]
    #[diagnostic(code(nudge::analysis::source_without_dedupe), severity(Warning))]
    SourceWithoutDedupe {
        source_name: String,
        #[label("postbacks from here are not deduplicated")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    /// `flow tips { wait 2 days … }` with no `when`/`keyword` that no other
    /// flow `start`s or `goto`s: it can only be entered by hand (API, CLI).
    #[error("flow `{flow}` has no trigger and no other flow enters it")]
    #[diagnostic(
        code(nudge::analysis::no_trigger),
        severity(Warning),
        help(
            "add a trigger such as `when EVENT`, or enter it from another flow with `start {flow}` or `goto {flow}`; as it is, only the API or the CLI can enroll a contact"
        )
    )]
    NoTrigger {
        flow: String,
        #[label("no trigger, and no `start` or `goto` in another flow")]
        span: SourceSpan,
    },

    /// `goal sale` then `on sale -> goto thanks`: the goal takes every `sale`
    /// first (dispatch order: `exit when`, `goal`, handlers in source order,
    /// then the branches of the current wait). Also a handler after another
    /// one on the same event without `where` (and no `#N`, or the same `#N`),
    /// a wait branch taken by such a handler, and `wait for sale` under a
    /// handler `on sale` that may return the contact to the wait.
    #[error("{what} can never fire")]
    #[diagnostic(code(nudge::analysis::shadowed_handler), severity(Warning))]
    ShadowedHandler {
        what: String,
        #[label("never fires")]
        span: SourceSpan,
        #[label("takes the event first")]
        by_span: Option<SourceSpan>,
        #[help]
        help: String,
    },
}
