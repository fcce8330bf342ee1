//! `nudge migrate-db --from sqlite://… --to postgres://…`: the copy of a
//! whole store (`nudge_runtime::store::copy`), its progress on stderr as
//! it goes, a summary per table on stdout at the end. No URL is shown
//! with its password.

use super::Outcome;
use super::args::MigrateDbArgs;
use super::error::CliError;
use super::ops::runtime;
use nudge_runtime::store::copy::{self, CopyOptions, CopyReport};
use std::fmt::Write as _;
use std::io::Write as _;

pub fn run(a: &MigrateDbArgs) -> Result<Outcome, CliError> {
    let progress = |line: &str| {
        // a closed stderr only loses the progress lines
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    };
    let report = runtime()?
        .block_on(copy::copy(
            &a.from,
            &a.to,
            &CopyOptions::default(),
            &progress,
        ))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok(Outcome {
        stdout: summary(&report),
        ..Outcome::default()
    })
}

fn summary(r: &CopyReport) -> String {
    let mut o = format!(
        "{:<22} {:>10} {:>10} {:>9}\n",
        "table", "copied", "skipped", "seconds"
    );
    for t in &r.tables {
        let _ = writeln!(
            o,
            "{:<22} {:>10} {:>10} {:>9.2}",
            t.table, t.copied, t.skipped, t.seconds
        );
    }
    o.push_str("verified: every table matches the source\n");
    o
}
