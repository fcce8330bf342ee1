//! The analysis stage: for each `nudge::analysis::*` code, programs that
//! trigger it (with the span it points at) and near misses that do not.
//! Every program here is well typed: it declares what it uses.

use nudge_compiler::check;
use nudge_compiler::files::{FileSystem, MemoryFs, SourceSet};
use std::path::{Path, PathBuf};

/// Declarations most tests share. The flows below use them.
const PRELUDE: &str = r#"
contact { email: email? unique, phone: phone?, score: int = 0 }
event sale { amount: decimal? }
event resale {}
channel mail: smtp { host = "smtp.example", from = "Shop <shop@example.com>" }
channel sms: http { url = "https://sms.example/send", body = json { to: contact.phone, text: message } }
channel team: slack { webhook = "https://hooks.slack.example/x" }
channel crm: http { url = "https://crm.example/leads", body = json { interest: data.interest, phone: contact.phone } }
template welcome: email { subject = "Hi", text = "Welcome" }
template bonus: text { text = "Your bonus" }
"#;

/// One diagnostic: code, the source text its span covers, message, help.
#[derive(Debug)]
struct Found {
    code: String,
    text: String,
    message: String,
    help: String,
    warning: bool,
}

fn run(src: &str) -> Vec<Found> {
    let mut sources = SourceSet::new();
    sources.add("main.nudge", "main.nudge", src);
    let checked = check(&sources, &MemoryFs::new());
    checked
        .diagnostics
        .items
        .iter()
        .map(|d| Found {
            code: d.code(),
            text: src.get(d.span.range()).unwrap_or("").to_string(),
            message: d.message(),
            help: d.help().unwrap_or_default(),
            warning: d.is_warning(),
        })
        .collect()
}

fn with_prelude(flows: &str) -> String {
    format!("{PRELUDE}\n{flows}")
}

fn code(name: &str) -> String {
    format!("nudge::analysis::{name}")
}

/// The diagnostics of `src` with code `name`; fails if there are none or if
/// there are errors of another code.
fn expect(src: &str, name: &str) -> Vec<Found> {
    let all = run(src);
    let others: Vec<&Found> = all
        .iter()
        .filter(|f| f.code != code(name) && !f.warning)
        .collect();
    assert!(others.is_empty(), "other errors: {others:#?}");
    let hits: Vec<Found> = all.into_iter().filter(|f| f.code == code(name)).collect();
    assert!(!hits.is_empty(), "no `{name}` in:\n{src}");
    hits
}

/// `src` has no diagnostic of code `name`, and no error at all.
fn clean_of(src: &str, name: &str) {
    let all = run(src);
    assert!(
        all.iter().all(|f| f.code != code(name) && f.warning),
        "unexpected diagnostics: {all:#?}\nin:\n{src}"
    );
}

// ---- loop_without_wait ------------------------------------------------------

#[test]
fn loop_in_one_step() {
    let hits = expect(
        &with_prelude(r#"flow f { when sale  step a { send sms "hi"  goto a } }"#),
        "loop_without_wait",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "goto a");
    assert!(hits[0].help.contains("`a` → `a`"), "{}", hits[0].help);
}

#[test]
fn loop_through_fall_through_names_its_steps() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  step a { log "a" }  step b { if contact.score > 1 { goto a } } }"#,
        ),
        "loop_without_wait",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "goto a");
    assert!(hits[0].help.contains("`a` → `b` → `a`"), "{}", hits[0].help);
}

#[test]
fn loop_across_flows_is_reported_once() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  step a { log "a"  goto g } }
               flow g { step b { log "b"  goto f.a } }"#,
        ),
        "loop_without_wait",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "goto g");
    assert!(
        hits[0].help.contains("`g.b` → `f.a` → `g.b`"),
        "{}",
        hits[0].help
    );
}

#[test]
fn goto_to_the_flow_itself_is_a_loop() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  send sms "hi"  split { 50% -> goto f  50% -> exit } }"#,
        ),
        "loop_without_wait",
    );
    assert_eq!(hits[0].text, "goto f");
    assert!(
        hits[0].help.contains("`start` → `start`"),
        "{}",
        hits[0].help
    );
}

#[test]
fn loop_with_a_wait_on_one_path_only_is_reported() {
    expect(
        &with_prelude(
            r#"flow f { when sale  step a { if contact.score > 1 { wait 1 day }  goto a } }"#,
        ),
        "loop_without_wait",
    );
}

#[test]
fn loops_that_wait_are_fine() {
    clean_of(
        &with_prelude(r#"flow f { when sale  step a { send sms "hi"  wait 1 day  goto a } }"#),
        "loop_without_wait",
    );
    clean_of(
        &with_prelude(
            r#"flow f { when sale  step a { wait for resale within 1 day else goto a  goto b }
                        step b { wait { on resale -> goto a  after 1 day -> goto b } } }"#,
        ),
        "loop_without_wait",
    );
    // a handler's `goto` runs while the contact waits
    clean_of(
        &with_prelude(r#"flow f { when sale  on resale -> goto a  step a { log "a" } }"#),
        "loop_without_wait",
    );
}

// ---- wait_in_handler --------------------------------------------------------

#[test]
fn wait_in_a_flow_handler() {
    let hits = expect(
        &with_prelude(r#"flow f { when sale  on resale -> { wait 1 day  log "x" }  wait 2 days }"#),
        "wait_in_handler",
    );
    assert_eq!(hits[0].text, "wait 1 day");
    assert_eq!(hits[0].message, "`wait` in a handler");
}

#[test]
fn wait_in_a_wait_branch() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  wait { on resale -> wait 2 days  after 1 day -> exit } }"#,
        ),
        "wait_in_handler",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "wait 2 days");
    assert_eq!(hits[0].message, "`wait` in a wait branch");
}

#[test]
fn waits_in_steps_and_within_else_are_fine() {
    clean_of(
        &with_prelude(
            r#"flow f { when sale  on resale -> tag "r"
                 wait for resale within 1 day else { wait 1 day  log "late" } }"#,
        ),
        "wait_in_handler",
    );
}

// ---- start_self, stop_self --------------------------------------------------

#[test]
fn start_and_stop_of_the_flow_itself() {
    let src = with_prelude(r#"flow f { when sale  wait 1 day  start f }"#);
    assert_eq!(expect(&src, "start_self")[0].text, "start f");
    let src = with_prelude(r#"flow f { when sale  wait 1 day  stop f }"#);
    assert_eq!(expect(&src, "stop_self")[0].text, "stop f");
}

#[test]
fn start_and_stop_of_other_flows_are_fine() {
    let src =
        with_prelude(r#"flow f { when sale  start g  stop g }  flow g { when resale  log "g" }"#);
    clean_of(&src, "start_self");
    clean_of(&src, "stop_self");
}

// ---- split_shares -----------------------------------------------------------

#[test]
fn split_shares_below_100() {
    let hits = expect(
        &with_prelude(r#"flow f { when sale  split { 50% -> tag "a"  40% -> tag "b" } }"#),
        "split_shares",
    );
    assert!(hits[0].text.starts_with("split {"));
    assert!(hits[0].help.contains("90%"), "{}", hits[0].help);
}

#[test]
fn split_shares_adding_up_are_fine() {
    clean_of(
        &with_prelude(
            r#"flow f { when sale  split { 33.33% -> tag "a"  33.33% -> tag "b"  33.34% -> tag "c" } }"#,
        ),
        "split_shares",
    );
}

// ---- duplicate_keyword ------------------------------------------------------

#[test]
fn keyword_in_two_flows() {
    let hits = expect(
        &with_prelude(
            r#"flow f { keyword "PROMO"  log "f" }  flow g { keyword " promo "  log "g" }"#,
        ),
        "duplicate_keyword",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, r#"" promo ""#);
    assert!(hits[0].message.contains("flow `f`"), "{}", hits[0].message);
}

#[test]
fn different_keywords_are_fine() {
    clean_of(
        &with_prelude(
            r#"flow f { keyword "PROMO"  log "f" }  flow g { keyword "PROMOS"  log "g" }"#,
        ),
        "duplicate_keyword",
    );
}

// ---- wrong_channel_kind -----------------------------------------------------

#[test]
fn content_of_the_wrong_kind() {
    let cases = [
        (r#"send team welcome"#, "welcome"),
        (r#"send mail bonus"#, "bonus"),
        (r#"send mail "hi""#, r#""hi""#),
        (r#"send sms { subject = "s", text = "t" }"#, "subject"),
        (r#"send mail { text = "t" }"#, r#"{ text = "t" }"#),
        (r#"call mail"#, "mail"),
    ];
    for (stmt, text) in cases {
        let src = with_prelude(&format!("flow f {{ when sale  {stmt} }}"));
        let hits = expect(&src, "wrong_channel_kind");
        assert_eq!(hits[0].text, text, "{stmt}");
    }
}

#[test]
fn content_of_the_right_kind_is_fine() {
    clean_of(
        &with_prelude(
            r#"flow f { when sale
                 send mail welcome  send team bonus  send team "hi"  send sms { text = "t" }
                 send mail { subject = "s", html = "<p>t</p>" } }"#,
        ),
        "wrong_channel_kind",
    );
}

// ---- no_recipient -----------------------------------------------------------

const NO_EMAIL: &str = r#"
contact { phone: phone?, work: email? }
event sale {}
channel mail: smtp { host = "smtp.example", from = "Shop <shop@example.com>" }
template welcome: email { subject = "Hi", text = "Welcome" }
"#;

#[test]
fn email_without_recipient() {
    let hits = expect(
        &format!("{NO_EMAIL}\nflow f {{ when sale  send mail welcome }}"),
        "no_recipient",
    );
    assert_eq!(hits[0].text, "send mail");
    assert!(hits[0].help.contains("to contact.work"), "{}", hits[0].help);
}

#[test]
fn email_with_to_or_an_email_field_is_fine() {
    clean_of(
        &format!("{NO_EMAIL}\nflow f {{ when sale  send mail welcome to contact.work }}"),
        "no_recipient",
    );
    // the prelude's `email: email?` is optional: fine
    clean_of(
        &with_prelude("flow f { when sale  send mail welcome }"),
        "no_recipient",
    );
}

// ---- send_to_data_channel, call_to_message_channel, missing_call_data -------

#[test]
fn send_to_a_channel_that_reads_data() {
    let hits = expect(
        &with_prelude(r#"flow f { when sale  send crm "hi" }"#),
        "send_to_data_channel",
    );
    assert_eq!(hits[0].text, "crm");
}

#[test]
fn call_of_a_channel_that_reads_message() {
    let src = with_prelude(r#"flow f { when sale  call sms  call team }"#);
    let hits = expect(&src, "call_to_message_channel");
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["sms", "team"]);
}

#[test]
fn message_in_a_template_string_counts() {
    let src = format!(
        "{PRELUDE}\nchannel hook: http {{ url = \"https://x.example/?t={{{{ message }}}}\" }}\nflow f {{ when sale  call hook }}"
    );
    expect(&src, "call_to_message_channel");
}

#[test]
fn call_without_the_data_its_channel_reads() {
    let src = with_prelude(r#"flow f { when sale  call crm with { phone = "1" } }"#);
    let hits = expect(&src, "missing_call_data");
    assert_eq!(hits[0].text, "call crm");
    assert!(
        hits[0].message.contains("`data.interest`"),
        "{}",
        hits[0].message
    );
    assert!(hits[0].help.contains("interest = …"), "{}", hits[0].help);
    let src = format!(
        "{PRELUDE}\nchannel hook: http {{ url = \"https://x.example/{{{{ data.id }}}}\" }}\nflow f {{ when sale  call hook }}"
    );
    assert!(
        expect(&src, "missing_call_data")[0]
            .message
            .contains("`data.id`")
    );
}

#[test]
fn channels_used_as_they_read_are_fine() {
    let src = with_prelude(
        r#"flow f { when sale  send sms "hi"  send team "hi"  call crm with { interest = "shoes" } }"#,
    );
    for name in [
        "send_to_data_channel",
        "call_to_message_channel",
        "missing_call_data",
    ] {
        clean_of(&src, name);
    }
}

// ---- unreachable_step -------------------------------------------------------

#[test]
fn step_after_a_step_that_always_leaves() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  step a { if contact.score > 1 { exit } else { goto c } }
                        step b { log "b" }  step c { log "c" } }"#,
        ),
        "unreachable_step",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "b");
}

#[test]
fn steps_named_by_a_goto_anywhere_are_reachable() {
    let sources = [
        r#"flow f { when sale  on resale -> goto b  step a { exit }  step b { log "b" } }"#,
        r#"flow f { when sale  step a { wait { on resale -> goto b } }  step b { log "b" } }"#,
        r#"flow f { when sale  step a { wait 1 day within 1 day else goto b  exit }  step b { log "b" } }"#,
        r#"flow f { when sale  step a { exit }  step b { log "b" } }
           flow g { when resale  goto f.b }"#,
        r#"flow f { when sale  step a { log "a" }  step b { log "b" } }"#,
    ];
    for src in sources {
        clean_of(&with_prelude(src), "unreachable_step");
    }
}

// ---- unreachable_code -------------------------------------------------------

#[test]
fn statements_after_exit_are_reported_once() {
    let hits = expect(
        &with_prelude(r#"flow f { when sale  exit  log "a"  log "b" }"#),
        "unreachable_code",
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, r#"log "a""#);
}

#[test]
fn statement_after_an_if_whose_branches_all_leave() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  step a { if contact.score > 1 { goto b } else { exit }  tag "x" }  step b { log "b" } }"#,
        ),
        "unreachable_code",
    );
    assert_eq!(hits[0].text, r#"tag "x""#);
}

#[test]
fn statements_after_the_steps_belong_to_no_step() {
    // the parser rejects them: they would belong to no step
    let src = with_prelude(r#"flow f { when sale  step a { log "a" }  log "b"  log "c" }"#);
    let found = support_diags(&src);
    assert!(
        found
            .iter()
            .any(|(c, t)| c == "nudge::syntax::unexpected" && t == r#"log "b""#),
        "{found:?}"
    );
}

fn support_diags(src: &str) -> Vec<(String, String)> {
    let mut set = nudge_compiler::files::SourceSet::new();
    set.add("main.nudge", "main.nudge", src);
    let checked = nudge_compiler::check(&set, &nudge_compiler::files::MemoryFs::new());
    checked
        .diagnostics
        .items
        .iter()
        .map(|d| (d.code(), src.get(d.span.range()).unwrap_or("").to_string()))
        .collect()
}

#[test]
fn statements_after_an_if_without_else_are_fine() {
    clean_of(
        &with_prelude(
            r#"flow f { when sale  if contact.score > 1 { exit }  log "a"
                 wait { on resale -> exit  after 1 day -> log "late" }  log "b" }"#,
        ),
        "unreachable_code",
    );
}

// ---- unused -----------------------------------------------------------------

#[test]
fn declarations_never_used() {
    let src = r#"
contact { email: email? }
event refund {}
channel mail: smtp { host = "smtp.example", from = "Shop <shop@example.com>" }
template promo: email { subject = "Hi", text = "x" }
define vip = "vip" in contact.tags
flow f { when subscribed  log "hi" }
test "refund only in a test" { contact { email = "a@example.com" }  event refund  expect vip }
"#;
    let hits = expect(src, "unused");
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["refund", "mail", "promo", "vip"]);
    assert_eq!(hits[0].message, "event `refund` is never used");
}

#[test]
fn declarations_used_indirectly_are_fine() {
    let src = r#"
contact { email: email? unique, score: int = 0 }
event refund {}
event sale {}
channel mail: smtp { host = "smtp.example", from = "Shop <shop@example.com>" }
template promo: email { subject = "Hi", text = "{% if big %}big{% endif %}" }
define big = score_ok and contact.score > 10
define score_ok = contact.score > 0
source partner: postback { contact = email, event = param("e"), token = "t", rename { "r" = refund } }
flow f { when sale  send mail promo }
"#;
    clean_of(src, "unused");
}

// ---- no_trigger -------------------------------------------------------------

#[test]
fn flow_nothing_enters() {
    let hits = expect(&with_prelude(r#"flow lonely { log "x" }"#), "no_trigger");
    assert_eq!(hits[0].text, "lonely");
}

#[test]
fn flows_entered_by_other_flows_are_fine() {
    clean_of(
        &with_prelude(
            r#"flow a { when sale  start tips  goto later.s }
               flow tips { log "tip" }  flow later { step s { log "later" } }"#,
        ),
        "no_trigger",
    );
}

// ---- shadowed_handler -------------------------------------------------------

#[test]
fn handler_after_a_goal_on_the_same_event() {
    let hits = expect(
        &with_prelude(r#"flow f { when resale  goal sale  on sale -> tag "x"  wait 1 day }"#),
        "shadowed_handler",
    );
    assert_eq!(hits[0].text, "on sale");
    assert!(hits[0].help.contains("`goal sale`"), "{}", hits[0].help);
}

#[test]
fn handler_after_a_broader_handler() {
    let hits = expect(
        &with_prelude(
            r#"flow f { when sale  on resale -> tag "a"  on resale #2 -> tag "b"  wait 1 day }"#,
        ),
        "shadowed_handler",
    );
    assert_eq!(hits[0].text, "on resale #2");
}

#[test]
fn wait_branch_and_wait_for_under_a_handler() {
    let src = with_prelude(
        r#"flow f { when sale  on resale -> tag "r"
             wait { on resale -> tag "w"  after 1 day -> exit }
             wait for resale }"#,
    );
    let hits = expect(&src, "shadowed_handler");
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["on resale", "wait for resale"]);
}

#[test]
fn narrower_entries_first_are_fine() {
    let sources = [
        r#"flow f { when sale  on resale #3 -> tag "c"  on resale #2 -> tag "b"  on resale -> tag "a"  wait 1 day }"#,
        r#"flow f { when sale  on resale where contact.score > 1 -> tag "a"  on resale -> tag "b"  wait 1 day }"#,
        r#"flow f { when sale  goal resale where contact.score > 1  on resale -> tag "b"  wait 1 day }"#,
        // the idiom: the entry that takes the event leaves, so the wait still ends by it
        r#"flow f { when sale  goal resale  wait for resale within 3 days else exit }"#,
        r#"flow f { when sale  on resale -> goto b  step a { wait for resale within 3 days else exit }  step b { log "b" } }"#,
    ];
    for src in sources {
        clean_of(&with_prelude(src), "shadowed_handler");
    }
}

// ---- case folders -----------------------------------------------------------

struct Disk;

impl FileSystem for Disk {
    fn read_to_string(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

/// Each `tests/cases/analysis_<name>/` project gives exactly the diagnostic
/// `nudge::analysis::<name>`, and nothing else.
#[test]
fn case_folders_trigger_exactly_their_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("analysis_"))
        })
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 17);
    for dir in dirs {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let path = dir.join("main.nudge");
        let text = std::fs::read_to_string(&path).expect("main.nudge");
        let mut set = SourceSet::new();
        set.add(path, "main.nudge", text);
        let checked = check(&set, &Disk);
        let codes: Vec<String> = checked.diagnostics.items.iter().map(|d| d.code()).collect();
        let want = code(name.trim_start_matches("analysis_"));
        assert_eq!(codes, [want], "{name}");
    }
}
