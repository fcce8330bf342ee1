//! Fuzz target: arbitrary bytes as one `.nudge` file through the whole
//! front end (`nudge_compiler::check`), with an in-memory file system that
//! also serves the same bytes for any `file("…")` body.
//!
//! Invariant under test: no input panics, overflows the stack or hangs; every
//! diagnostic's span lies inside its file. Run: `cargo +nightly fuzz run check`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_compiler::check;
use nudge_compiler::files::{MemoryFs, SourceSet};

fuzz_target!(|data: &[u8]| {
    // The CLI reports non-UTF-8 files before the compiler sees them; the
    // compiler takes text, so feed it the lossy text the CLI would show.
    let text = String::from_utf8_lossy(data).into_owned();
    let mut sources = SourceSet::new();
    sources.add("fuzz/input.nudge", "input.nudge", text.clone());
    let fs = MemoryFs::new().with("fuzz/body.html", text);
    let checked = check(&sources, &fs);
    for record in checked.diagnostics.records(&sources) {
        assert!(
            record.line >= 1 && record.column >= 1,
            "positions are 1-based"
        );
        assert!(!record.code.is_empty(), "every diagnostic has a code");
    }
    for d in &checked.diagnostics.items {
        let len = sources.files[d.file.0 as usize].text.len() as u32;
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "span inside the file"
        );
    }
});
