//! Frozen bundle bytes: a stored bundle never changes meaning silently.
//!
//! `tests/fixtures/bundle_v<N>/` holds a small project (`src/*.nudge`) that
//! uses every kind of declaration, trigger, wait and statement, and
//! `bundle.json`: the exact bytes `Bundle::to_bytes` gave for it in format
//! `N`. The project is compiled again and compared byte for byte with the
//! fixture of the current [`FORMAT_VERSION`]. Different bytes under the same
//! version mean a bundle stored by an earlier build would be read
//! differently (or not at all) by this one: bump `FORMAT_VERSION`
//! (`compiler/src/bundle/serial.rs`) and keep a reader for the old format or
//! a clear refusal. Fixtures of older versions stay in the tree, and
//! `Bundle::from_bytes` must refuse each one with an error naming its
//! version (or read it, if its version is listed in [`READABLE_OLD`]).
//!
//! Bless with one command, after bumping the version or editing the fixture
//! project (it writes `bundle_v<FORMAT_VERSION>/bundle.json`, first copying
//! the project of the newest older fixture when the version is new):
//!
//!     NUDGE_BLESS=1 cargo test -p nudge-compiler --test bundle_fixture
//!
//! (or both stored-format fixtures at once:
//! `NUDGE_BLESS=1 cargo test -p nudge-compiler -p nudge-runtime --test bundle_fixture --test state_fixture`).
//!
//! Then review `git diff` and commit the new fixture beside the old ones.

mod support;

use nudge_compiler::bundle::{Bundle, BundleError, FORMAT_VERSION};
use nudge_compiler::compile;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{Disk, project};

/// Older formats this build still reads (`READABLE_FORMATS` in `serial.rs`):
/// format 1, whose cron texts are parsed on reading.
const READABLE_OLD: &[u32] = &[1];

const BLESS: &str = "NUDGE_BLESS=1 cargo test -p nudge-compiler --test bundle_fixture";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_dir(version: u32) -> PathBuf {
    fixtures().join(format!("bundle_v{version}"))
}

/// Every `bundle_v<N>` fixture, oldest first.
fn stored_versions() -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures exists")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("bundle_v")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

fn blessing() -> bool {
    std::env::var("NUDGE_BLESS").is_ok_and(|v| v == "1")
}

/// The fixture project compiled; file names are relative, so the bytes do
/// not depend on where the tree is checked out.
fn compile_project(src: &Path) -> Bundle {
    let (checked, bundle) = compile(&project(src), &Disk);
    // Warnings are allowed: a new lint must not break the fixture.
    assert!(
        !checked.diagnostics.has_errors(),
        "the fixture project must check without errors: {:?}",
        checked.diagnostics.items
    );
    bundle.expect("a project without errors compiles")
}

/// A new format version starts from the newest older fixture's project.
fn bless_new_version(dir: &Path) {
    let older = stored_versions()
        .into_iter()
        .filter(|v| *v < FORMAT_VERSION)
        .max()
        .expect("an older fixture to copy the project from");
    let from = fixture_dir(older).join("src");
    let to = dir.join("src");
    std::fs::create_dir_all(&to).expect("fixture dir");
    for entry in std::fs::read_dir(&from)
        .expect("older fixture project")
        .flatten()
    {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy fixture source");
    }
}

/// The first place two JSON documents differ, as a path.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(&format!("{path}.{k}"), p, q),
                (p, q) => Some(format!("{path}.{k}: stored {p:?}, now {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => Some(format!("{path}: stored {a}, now {b}")),
    }
}

#[test]
fn the_current_format_has_frozen_bytes() {
    let dir = fixture_dir(FORMAT_VERSION);
    if !dir.exists() {
        assert!(
            blessing(),
            "no bundle fixture for format {FORMAT_VERSION} ({}); create it with `{BLESS}`",
            dir.display()
        );
        bless_new_version(&dir);
    }
    let bytes = compile_project(&dir.join("src"))
        .to_bytes()
        .expect("the bundle serialises");
    let stored_path = dir.join("bundle.json");
    if blessing() {
        std::fs::write(&stored_path, &bytes).expect("write the fixture");
        return;
    }
    let stored = std::fs::read(&stored_path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with `{BLESS}`", stored_path.display()));
    if stored != bytes {
        let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
        let at = first_difference("bundle", &parse(&stored), &parse(&bytes))
            .unwrap_or_else(|| "same JSON, different bytes (key order or spacing)".into());
        panic!(
            "the bundle bytes of the fixture project changed while FORMAT_VERSION is still \
             {FORMAT_VERSION}, so a bundle stored by an earlier build would change meaning \
             (first difference: {at}). Bump FORMAT_VERSION in compiler/src/bundle/serial.rs and \
             keep a reader for format {FORMAT_VERSION} or a clear refusal in Bundle::from_bytes, \
             then bless: `{BLESS}`"
        );
    }
    let read = Bundle::from_bytes(&stored).expect("the current fixture reads");
    assert_eq!(read.format, FORMAT_VERSION);
    assert_eq!(
        read.to_bytes().expect("the bundle serialises"),
        stored,
        "reading and writing again keeps the bytes"
    );
}

/// Every stored fixture of an older format is refused with its version named
/// (or read, if a reader was kept).
#[test]
fn older_formats_are_refused_by_name() {
    for version in stored_versions()
        .into_iter()
        .filter(|v| *v < FORMAT_VERSION)
    {
        let path = fixture_dir(version).join("bundle.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let result = Bundle::from_bytes(&bytes);
        if READABLE_OLD.contains(&version) {
            let b = result.unwrap_or_else(|e| panic!("format {version} has a reader: {e}"));
            assert_eq!(
                b.format, FORMAT_VERSION,
                "a reader upgrades to the current format"
            );
            continue;
        }
        assert_refused(result, version);
    }
}

/// Formats around the current one are refused, naming both versions.
#[test]
fn other_format_numbers_are_refused_by_name() {
    let newest = stored_versions()
        .into_iter()
        .filter(|v| *v <= FORMAT_VERSION)
        .max()
        .expect("a bundle fixture");
    let bytes = compile_project(&fixture_dir(newest).join("src"))
        .to_bytes()
        .expect("the bundle serialises");
    let mut doc: Value = serde_json::from_slice(&bytes).expect("the fixture is JSON");
    for other in [0, FORMAT_VERSION + 1] {
        doc["format"] = Value::from(other);
        let changed = serde_json::to_vec(&doc).expect("JSON");
        assert_refused(Bundle::from_bytes(&changed), other);
    }
}

fn assert_refused(result: Result<Bundle, BundleError>, version: u32) {
    match result {
        Err(e @ BundleError::Version { found }) => {
            assert_eq!(found, version);
            let text = e.to_string();
            assert!(
                text.contains(&format!("bundle format {version} is not supported"))
                    && text.contains(&format!("format {FORMAT_VERSION}")),
                "{text}"
            );
        }
        Err(e) => panic!("format {version}: refused, but not by its version: {e}"),
        Ok(_) => panic!("format {version} was read; refuse it or list it in READABLE_OLD"),
    }
}
