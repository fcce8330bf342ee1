//! How long `nudge_compiler::check` takes on a 10 000-line project.
//!
//! Run with `cargo bench --bench check` (release profile). It generates a
//! realistic, valid project in memory (contact fields, events, channels of
//! every kind, templates that read contact and event fields, defines, flows
//! with steps, waits, handlers, branches, calls and sends, and test blocks,
//! modelled on the conformance projects in `tests/conformance`), checks it once to make sure it has
//! no errors, then times N runs (`NUDGE_BENCH_RUNS`, default 20) and prints
//! the minimum and the median. The target is under 200 ms.

use nudge_compiler::check;
use nudge_compiler::files::{MemoryFs, SourceSet};
use std::time::{Duration, Instant};

/// Lines the generated project has at least.
const TARGET_LINES: usize = 10_000;

fn main() {
    let (sources, fs) = generate(TARGET_LINES);
    let lines: usize = sources.files.iter().map(|f| f.text.lines().count()).sum();
    let bytes: usize = sources.files.iter().map(|f| f.text.len()).sum();
    println!(
        "generated project: {lines} lines, {} files, {} KB",
        sources.files.len(),
        bytes / 1024
    );

    let checked = check(&sources, &fs);
    if checked.diagnostics.has_errors() {
        for r in checked.diagnostics.records(&sources).iter().take(20) {
            eprintln!(
                "{}:{}:{}: {}: {}",
                r.file, r.line, r.column, r.code, r.message
            );
        }
        eprintln!("the generated project has errors: fix the generator");
        std::process::exit(1);
    }
    println!(
        "diagnostics: {} errors, {} warnings",
        checked.diagnostics.error_count(),
        checked.diagnostics.warning_count()
    );

    let runs: usize = std::env::var("NUDGE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(20);
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let checked = check(&sources, &fs);
            let took = start.elapsed();
            std::hint::black_box(checked);
            took
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let min = times[0];
    let median = times[times.len() / 2];
    println!(
        "check: {lines} lines, {runs} runs: min {:.1} ms, median {:.1} ms ({:.0} lines/ms at the median; target < 200 ms)",
        ms(min),
        ms(median),
        lines as f64 / ms(median).max(0.001)
    );
}

/// A project of at least `target` lines: one shared file, then modules of
/// about 200 lines each, one file per module.
fn generate(target: usize) -> (SourceSet, MemoryFs) {
    let mut sources = SourceSet::new();
    let shared = shared_file();
    let mut lines = shared.lines().count();
    sources.add("bench/shared.nudge", "shared.nudge", shared);
    let mut fs = MemoryFs::new().with(
        "bench/templates/welcome.html",
        "<p>Hello {{ contact.first_name | default('there') }}, welcome!</p>\n",
    );
    let mut i = 0;
    while lines < target {
        let text = module(i);
        lines += text.lines().count();
        let name = format!("modules/m{i:03}.nudge");
        sources.add(format!("bench/{name}"), name, text);
        i += 1;
    }
    fs = fs.with(
        "bench/modules/offer.html",
        "<p>Offer for {{ contact.city }}</p>\n",
    );
    (sources, fs)
}

fn shared_file() -> String {
    r#"// Shared declarations: the contact schema and the channels.

contact {
  email: email? unique
  phone: phone?
  clickid: text? unique
  first_name: text?
  city: text?
  company: text?
  manager: text?
  plan: "free" | "pro" = "free"
  deposits: int = 0
  score: int = 0
  lists: set<text>
  deal_created_at: time?
}

event registration {}
event sale { amount: decimal? }

channel email: smtp {
  host = env("SMTP_HOST")
  port = 465
  security = "tls"
  username = env("SMTP_USER")
  password = env("SMTP_PASSWORD")
  from = "Shop <news@shop.example>"
  cap = 3 per 1 day
}

channel team: slack { webhook = env("SLACK_WEBHOOK") }

channel bot: http {
  method = "POST"
  url = "https://bot.example/api/send"
  headers = { "Authorization": "Bearer " + env("BOT_TOKEN") }
  body = json { to: contact.phone, text: message }
}

channel crm: http {
  method = "POST"
  url = "https://crm.example/api/tasks"
  headers = { "X-Api-Key": env("CRM_KEY") }
  body = json { title: data.title, client: contact.id, assignee: contact.manager }
}

channel tasks: http {
  method = "POST"
  url = "https://crm.example/api/notes"
  body = json { text: message, client: contact.id }
}

source partner: postback {
  contact = clickid
  event = param("event")
  token = env("PARTNER_TOKEN")
  fields { amount = param("sum") }
}

template welcome: email {
  subject = "Welcome, {{ contact.first_name | default('friend') }}!"
  html = file("templates/welcome.html")
}

define paying = contact.deposits > 0
define vip = "vip" in contact.tags and contact.deposits >= 3

/// New registrations are pushed towards a first deposit.
flow onboarding "Onboarding" {
  when registration
  reenter never
  goal sale

  send email welcome
  wait 1 day
  if not paying {
    send bot "Make your first deposit to unlock the bonus."
  }
  wait for sale within 3 days else exit
  tag "depositor"
}
"#
    .to_string()
}

/// One module: its own contact fields, events, templates, defines, three
/// flows and two tests, about 200 lines.
fn module(i: usize) -> String {
    format!(
        r#"// Module {i}: orders, visits and a follow-up sequence.

contact {{
  orders_{i}: int = 0
  last_order_{i}: text?
  segment_{i}: "new" | "active" | "lapsed" = "new"
  visited_{i}_at: time?
}}

event order_{i} {{ order_id: text, price: decimal, status: text? }}
event visit_{i} {{
  visit_id: text
  page: text?
  source: text?
}}
event cancel_{i} {{ reason: text? }}

template thanks_{i}: email {{
  subject = "Thanks for order {{{{ event.order_id }}}}, {{{{ contact.first_name | default('friend') }}}}"
  text = """
    Hi {{{{ contact.first_name | default('there') }}}},
    your order {{{{ event.order_id }}}} of {{{{ event.price }}}} EUR is confirmed.
    {{% if contact.city %}}We deliver to {{{{ contact.city }}}} in two days.{{% endif %}}
  """
}}

template offer_{i}: email {{
  subject = "An offer for {{{{ contact.city | default('you') }}}}"
  html = file("offer.html")
}}

template reminder_{i}: text {{ text = "Still thinking about it, {{{{ contact.first_name | default('friend') }}}}?" }}

define active_{i} = contact.orders_{i} > 0 and contact.segment_{i} != "lapsed"
define big_spender_{i} = contact.orders_{i} >= 5 or vip

/// Every order: thank, then follow up until the next one.
flow orders_{i} "Orders {i}" {{
  when order_{i} where event.price > 0
  reenter restart
  exit when unsubscribed
  goal sale where event.amount ?? 0 >= 100
  window 09:00..21:00 local

  on cancel_{i} -> {{ tag "cancelled_{i}"; goto cancelled }}
  on email_bounced -> exit

  step thanks "Thank you" {{
    set contact.orders_{i} = contact.orders_{i} + 1
    set contact.last_order_{i} = event.order_id
    set contact.segment_{i} = "active"
    send email thanks_{i}
    if event.price >= 100 {{
      send team "Big order {{{{ event.order_id }}}} from {{{{ contact.email }}}}: {{{{ event.price }}}} EUR"
      tag "big_order_{i}"
    }} else if event.status == "gift" {{
      tag "gift_{i}"
    }} else {{
      log "small order"
    }}
    wait 2 days
  }}

  step review "Review request" {{
    send email {{ subject = "How was order {{{{ contact.last_order_{i} }}}}?", text = "Tell us in one click." }}
    wait {{
      on email_clicked where event.url contains "review" -> tag "reviewed_{i}"
      on order_{i} -> goto thanks
      after 5 days -> goto reminder
    }}
    exit
  }}

  step reminder "Reminder" {{
    send bot reminder_{i}
    wait for order_{i} within 7 days else goto lapsed
    goto thanks
  }}

  step lapsed "Lapsed" {{
    set contact.segment_{i} = "lapsed"
    call crm with {{ title = "Call back a lapsed customer" }} as task
    if task.status == 201 {{
      log "crm task created"
    }}
    start winback_{i}
    exit
  }}

  step cancelled "Cancelled" {{
    send team "Order cancelled by {{{{ contact.email }}}}"
    untag "big_order_{i}"
    exit
  }}
}}

/// Visitors who come back with orders get a manager.
flow visits_{i} "Visits {i}" {{
  when visit_{i} where active_{i}
  reenter after_exit

  set contact.visited_{i}_at = event.at
  send tasks "{{{{ contact.email }}}} is back on {{{{ event.page | default('the site') }}}} (source: {{{{ event.source | default('direct') }}}})"
  split {{
    50% -> send email offer_{i}
    50% -> log "control group"
  }}
  wait until contact.score > 50 within 3 days else exit
  if big_spender_{i} {{
    add "priority_{i}" to contact.lists
    send team "Priority customer: {{{{ contact.email }}}}"
  }}
}}

/// Lapsed customers: two tries, a week apart.
flow winback_{i} "Win-back {i}" {{
  holdout 10%
  exit when order_{i}

  send email {{ subject = "We miss you", text = "Here is 10% off: COMEBACK{i}" }}
  wait 7 days
  send email {{ subject = "Last chance", text = "Your code COMEBACK{i} ends tomorrow." }}
  wait until 09:00 local
  remove "priority_{i}" from contact.lists
}}

test "module {i}: an order is thanked and followed up" {{
  env SMTP_HOST = "127.0.0.1"
  env SMTP_USER = "u"
  env SMTP_PASSWORD = "p"
  env SLACK_WEBHOOK = "https://hooks.slack.example/x"
  env BOT_TOKEN = "t"
  env CRM_KEY = "k"
  env PARTNER_TOKEN = "p"
  contact {{ email = "ann{i}@example.com", phone = "+393331234567", first_name = "Ann" }}
  event order_{i} {{ order_id = "o-{i}", price = 120 }}
  expect in orders_{i}.thanks
  expect sent email thanks_{i} where message.subject contains "o-{i}"
  expect sent team where message.text contains "Big order"
  expect contact.orders_{i} == 1
  after 2 days
  expect in orders_{i}.review
  after 5 days
  expect sent bot reminder_{i}
}}

test "module {i}: a cancellation ends the flow" {{
  env SMTP_HOST = "127.0.0.1"
  env SMTP_USER = "u"
  env SMTP_PASSWORD = "p"
  env SLACK_WEBHOOK = "https://hooks.slack.example/x"
  env BOT_TOKEN = "t"
  env CRM_KEY = "k"
  env PARTNER_TOKEN = "p"
  contact {{ email = "bob{i}@example.com", phone = "+393331234568" }}
  event order_{i} {{ order_id = "o-{i}-b", price = 20, status = "gift" }}
  event cancel_{i} {{ reason = "changed mind" }}
  expect exited orders_{i}
  expect not enrolled winback_{i}
}}
"#
    )
}
