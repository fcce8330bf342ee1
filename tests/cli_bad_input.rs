//! Bad input never panics: each case runs the real binary and checks the
//! exit code, the message, and that nothing panicked.

mod cli_support;

use cli_support::{Run, s, scratch};
use std::path::{Path, PathBuf};

/// Run `nudge ARGS PATH`.
fn nudge(args: &[&str], path: &Path) -> Run {
    let mut all = args.to_vec();
    all.push(s(path));
    cli_support::nudge(&all)
}

/// A fresh scratch directory holding the given files.
fn project(test: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = scratch("cli_bad_input", test);
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("dirs");
        std::fs::write(path, bytes).expect("write");
    }
    dir
}

#[test]
fn non_utf8_bytes_are_reported_with_their_place() {
    let dir = project(
        "non_utf8",
        &[(
            "flows/a.nudge",
            b"event e {}\nflow f { log \"\xC3\x28\" }\n",
        )],
    );
    for cmd in [&["check"][..], &["fmt", "--check"], &["fmt"]] {
        let run = nudge(cmd, &dir);
        assert_eq!(run.code, 1, "{cmd:?}: {}", run.all());
        assert!(
            run.all()
                .contains("`flows/a.nudge` is not valid UTF-8: byte `0xC3` at line 2, column 15 (byte offset 25)"),
            "{cmd:?}: {}",
            run.all()
        );
    }
    let untouched = std::fs::read(dir.join("flows/a.nudge")).expect("still there");
    assert_eq!(untouched, b"event e {}\nflow f { log \"\xC3\x28\" }\n");
}

#[test]
fn a_missing_path_is_a_usage_error() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no/such/project");
    for cmd in [&["check"][..], &["fmt"]] {
        let run = nudge(cmd, &missing);
        assert_eq!(run.code, 2, "{cmd:?}");
        assert!(run.stdout.is_empty());
        assert!(run.stderr.starts_with("error: `"), "{}", run.stderr);
        assert!(
            run.stderr
                .trim_end()
                .ends_with("no/such/project` does not exist"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_directory_without_nudge_files_is_a_usage_error() {
    let dir = project(
        "no_sources",
        &[("README.md", b"# not a project"), ("sub/notes.txt", b"x")],
    );
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with("error: no `.nudge` files in `"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreadable_file_is_an_io_error() {
    let dir = project("unreadable", &[("ok.nudge", b"event e {}")]);
    // A dangling link cannot be read, even by root.
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("gone.txt"), dir.join("broken.nudge")).expect("symlink");
    #[cfg(unix)]
    {
        let run = nudge(&["check"], &dir);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(run.stderr.contains("cannot read `"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("broken.nudge`: no such file or directory"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_five_megabyte_file_is_refused() {
    let big = "// padding\n".repeat(5_000_000 / 11 + 1);
    let dir = project("big", &[("big.nudge", big.as_bytes())]);
    let run = nudge(&["check", "--format", "json"], &dir);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("\"code\":\"nudge::syntax::file_too_large\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("file is too large (5.0 MB; the limit is 4 MB)")
    );
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("nudge::syntax::file_too_large"));
}

#[test]
fn ten_thousand_nested_parentheses_are_refused() {
    let text = format!("define x = {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let dir = project("deep", &[("deep.nudge", text.as_bytes())]);
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("nudge::syntax::too_deep"));
    assert!(run.stdout.contains("nesting is deeper than 128 levels"));
    let run = nudge(&["fmt"], &dir);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nudge::syntax::too_deep"));
}

#[test]
fn an_unterminated_string_at_the_end_of_the_file_is_reported() {
    let dir = project("string_eof", &[("a.nudge", b"flow f { log \"abc")]);
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("nudge::syntax::unterminated_string"));
    assert!(run.stdout.contains("this string is never closed"));
    assert!(run.stdout.contains("[a.nudge:1:14]"), "{}", run.stdout);
}

#[test]
fn an_unterminated_block_comment_at_the_end_of_the_file_is_reported() {
    let dir = project(
        "comment_eof",
        &[("a.nudge", b"event e {}\n/* never closed")],
    );
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("nudge::syntax::unterminated_comment"));
    assert!(run.stdout.contains("this block comment is never closed"));
    assert!(run.stdout.contains("[a.nudge:2:1]"), "{}", run.stdout);
}

#[test]
fn odd_bytes_never_panic() {
    let inputs: [&[u8]; 6] = [
        b"",
        b"\0\0\0",
        b"\xEF\xBB\xBFevent e {}",
        b"flow f { log \"\\u{110000}\" }",
        b"flow f { log \"\\",
        b"\"\"\"",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let dir = project(&format!("odd_{i}"), &[("a.nudge", bytes)]);
        for format in ["human", "json", "github"] {
            let run = nudge(&["check", "--format", format], &dir);
            assert!(run.code == 0 || run.code == 1, "input {i}: {}", run.all());
        }
    }
}

#[test]
fn a_backslash_before_a_multibyte_char_in_a_triple_string_is_reported() {
    let dir = project(
        "triple_escape",
        &[("a.nudge", "define x = \"\"\"\\é\"\"\"\n".as_bytes())],
    );
    let run = nudge(&["check"], &dir);
    assert_eq!(run.code, 1, "{}", run.all());
}
