//! The shape of the code base, checked: operations live in `warden-ops`, the `warden`
//! crate holds only surfaces that parse, call one operation and render. Each rule below
//! names the files that break it; a failure here means a change put policy, store access,
//! flag parsing or printing in the wrong layer.
//!
//! Rules (see docs/architecture.md):
//! - clap only in `cli/` and `main.rs`;
//! - only `cli/`, `bench/` and `main.rs` print or reach into the CLI;
//! - `impl Warden` only in `warden-ops`;
//! - no surface opens a store transaction or reads the store;
//! - `warden-ops` depends on no surface crate (clap, axum, tungstenite, indicatif,
//!   comfy-table, anyhow);
//! - a `match` on an error kind lists every kind (no catch-all arm), so a new kind cannot
//!   slip through a surface with a made-up meaning.

use std::path::{Path, PathBuf};

/// The workspace's `crates/` directory.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/warden has a parent")
        .to_path_buf()
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The file's text with comments and string literals blanked (so a doc comment that
/// mentions `println!` or a string holding "clap" does not count), line structure kept.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) {
            // raw string r"…" or r#"…"#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            out.push_str("\"\"");
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == b'\n' {
                    out.push('\n');
                }
                j += 1;
            }
            i = j;
        } else if c == b'"' {
            out.push_str("\"\"");
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else if c == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // a char literal like 'x' (lifetimes have no closing quote two bytes on)
            out.push_str("' '");
            i += 3;
        } else if c == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // an escaped char literal like '\n' or '\''
            let mut j = i + 2;
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            // keep multi-byte UTF-8 intact
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The code of a file without its `#[cfg(test)]` module (tests may print and touch the
/// store to set things up).
fn production_code(text: &str) -> String {
    let code = code_of(text);
    match code.find("#[cfg(test)]") {
        Some(at) => code[..at].to_string(),
        None => code,
    }
}

/// `path` relative to `crates/warden/src`, with `/` separators.
fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Lines of `code` (1-based) that contain `needle`.
fn lines_with(code: &str, needle: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect()
}

fn report(rule: &str, offenders: &[String]) {
    assert!(
        offenders.is_empty(),
        "{rule}:\n  {}",
        offenders.join("\n  ")
    );
}

fn surface_files() -> (PathBuf, Vec<(String, String)>) {
    let base = crates_dir().join("warden/src");
    let files = rust_files(&base)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source file is readable");
            (rel(&p, &base), text)
        })
        .collect();
    (base, files)
}

fn in_cli_or_main(rel: &str) -> bool {
    rel.starts_with("cli/") || rel == "main.rs"
}

#[test]
fn clap_only_in_the_command_line() {
    let (_, files) = surface_files();
    let mut bad = Vec::new();
    for (rel, text) in &files {
        if in_cli_or_main(rel) {
            continue;
        }
        let code = production_code(text);
        for needle in ["clap::", "use clap", "#[arg(", "#[command("] {
            for line in lines_with(&code, needle) {
                bad.push(format!("crates/warden/src/{rel}:{line}: {needle}"));
            }
        }
    }
    report("clap outside crates/warden/src/cli/ and main.rs", &bad);
}

#[test]
fn only_the_command_line_and_benches_print() {
    let (_, files) = surface_files();
    let mut bad = Vec::new();
    for (rel, text) in &files {
        if in_cli_or_main(rel) || rel.starts_with("bench/") {
            continue;
        }
        let code = production_code(text);
        for needle in [
            "println!",
            "print!(",
            "eprintln!",
            "eprint!(",
            "std::io::stdout",
            "crate::cli",
            "indicatif",
            "comfy_table",
        ] {
            for line in lines_with(&code, needle) {
                bad.push(format!("crates/warden/src/{rel}:{line}: {needle}"));
            }
        }
    }
    report(
        "printing or the CLI outside crates/warden/src/cli/, bench/ and main.rs",
        &bad,
    );
}

#[test]
fn operations_only_in_warden_ops() {
    let crates = crates_dir();
    let mut bad = Vec::new();
    for krate in std::fs::read_dir(&crates)
        .expect("crates/ is readable")
        .flatten()
    {
        let name = krate.file_name().to_string_lossy().to_string();
        if name == "warden-ops" {
            continue;
        }
        for path in rust_files(&krate.path().join("src")) {
            let text = std::fs::read_to_string(&path).expect("source file is readable");
            let code = code_of(&text);
            for line in lines_with(&code, "impl Warden") {
                bad.push(format!("{}:{line}", rel(&path, &crates)));
            }
        }
    }
    report("`impl Warden` outside crates/warden-ops", &bad);
}

#[test]
fn surfaces_never_reach_the_store() {
    let (_, files) = surface_files();
    let mut bad = Vec::new();
    for (rel, text) in &files {
        let code = production_code(text);
        for needle in [
            ".store()",
            ".begin()",
            ".commit()",
            "Tx<'",
            "warden_store::Tx",
        ] {
            for line in lines_with(&code, needle) {
                bad.push(format!("crates/warden/src/{rel}:{line}: {needle}"));
            }
        }
    }
    report(
        "a surface reads the store or opens a transaction (call an operation in warden-ops)",
        &bad,
    );
}

#[test]
fn warden_ops_depends_on_no_surface_crate() {
    let manifest = std::fs::read_to_string(crates_dir().join("warden-ops/Cargo.toml"))
        .expect("warden-ops/Cargo.toml is readable");
    let mut section = String::new();
    let mut bad = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        // Tests of warden-ops may use anything; its library may not.
        if section != "[dependencies]" {
            continue;
        }
        let dep = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if [
            "clap",
            "axum",
            "tower-http",
            "tungstenite",
            "tokio-tungstenite",
            "indicatif",
            "comfy-table",
            "anyhow",
        ]
        .contains(&dep.as_str())
        {
            bad.push(dep);
        }
    }
    report("warden-ops depends on a surface crate", &bad);
}

/// Whether `text` names one of Warden's error kinds (`ErrorKind::Invalid`, …), not a
/// foreign one (`io::ErrorKind::NotFound`).
fn names_warden_kind(text: &str) -> bool {
    const KINDS: [&str; 6] = [
        "Invalid",
        "NotFound",
        "Conflict",
        "Refused",
        "Unavailable",
        "Internal",
    ];
    let mut from = 0;
    while let Some(off) = text[from..].find("ErrorKind::") {
        let at = from + off;
        from = at + 11;
        let before = &text[..at];
        let foreign = before.ends_with("::") && !before.ends_with("warden_ops::");
        let rest = &text[at + 11..];
        if !foreign && KINDS.iter().any(|k| rest.starts_with(k)) {
            return true;
        }
    }
    false
}

/// Finds `match` blocks that name an `ErrorKind::` variant in an arm pattern and also
/// have a catch-all `_ =>` arm at the same depth.
fn catch_all_kind_matches(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut search = 0;
    while let Some(off) = code[search..].find("match ") {
        let at = search + off;
        search = at + 6;
        // The match's own block: the first `{` after the scrutinee at depth 0 of parens.
        let mut i = at + 6;
        let mut paren = 0i32;
        while i < b.len() {
            match b[i] {
                b'(' | b'[' => paren += 1,
                b')' | b']' => paren -= 1,
                b'{' if paren == 0 => break,
                b';' if paren == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() || b[i] != b'{' {
            continue;
        }
        let open = i;
        let mut depth = 0i32;
        let mut close = open;
        for (j, &c) in b.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        // The arms at depth 1 of this block: text outside nested braces/parens.
        let body = &code[open + 1..close];
        let mut top = String::new();
        let mut d = 0i32;
        for c in body.chars() {
            match c {
                '{' | '(' | '[' => {
                    d += 1;
                    top.push(' ');
                }
                '}' | ')' | ']' => {
                    d -= 1;
                    top.push(' ');
                }
                '\n' => top.push('\n'),
                c if d == 0 => top.push(c),
                _ => top.push(' '),
            }
        }
        let names_kind = names_warden_kind(&top);
        let catch_all = top
            .lines()
            .any(|l| l.trim_start().starts_with("_ =>") || l.contains("| _ =>"));
        if names_kind && catch_all {
            found.push(code[..at].matches('\n').count() + 1);
        }
    }
    found
}

#[test]
fn error_kind_matches_are_exhaustive() {
    let crates = crates_dir();
    let mut bad = Vec::new();
    for krate in std::fs::read_dir(&crates)
        .expect("crates/ is readable")
        .flatten()
    {
        for path in rust_files(&krate.path().join("src")) {
            let text = std::fs::read_to_string(&path).expect("source file is readable");
            for line in catch_all_kind_matches(&code_of(&text)) {
                bad.push(format!("{}:{line}", rel(&path, &crates)));
            }
        }
    }
    report(
        "a match on ErrorKind has a catch-all arm (list every kind)",
        &bad,
    );
}

#[test]
fn the_checks_themselves_see_what_they_look_for() {
    // A rule that cannot fail proves nothing: each detector finds its target in a sample.
    let sample = "fn f(k: ErrorKind) -> u8 {\n    match k {\n        ErrorKind::Invalid => 2,\n        _ => 1,\n    }\n}\n";
    assert_eq!(catch_all_kind_matches(&code_of(sample)), vec![2]);
    let exhaustive = "fn f(k: ErrorKind) -> u8 {\n    match k {\n        ErrorKind::Invalid => 2,\n        ErrorKind::NotFound | ErrorKind::Internal => 1,\n    }\n}\n";
    assert!(catch_all_kind_matches(&code_of(exhaustive)).is_empty());
    // A catch-all in a nested match on something else does not count against the outer one.
    let nested = "match k {\n    ErrorKind::Invalid => match x { Some(_) => 1, _ => 2 },\n    ErrorKind::Internal => 3,\n}\n";
    assert!(catch_all_kind_matches(&code_of(nested)).is_empty());
    // Foreign kinds (std::io's) are not Warden's.
    let io = "match e.kind() {\n    io::ErrorKind::NotFound => 1,\n    _ => 2,\n}\n";
    assert!(catch_all_kind_matches(&code_of(io)).is_empty());
    // Comments and strings are not code.
    let code = code_of("// println!(\"x\")\nlet s = \"println!\";\nprintln!(\"y\");\n");
    assert_eq!(lines_with(&code, "println!"), vec![3]);
    let raw = code_of("let s = r#\"clap::Parser \"quoted\"\"#;\nuse clap::Parser;\n");
    assert_eq!(lines_with(&raw, "clap::"), vec![2]);
    let test_mod =
        production_code("fn a() {}\n#[cfg(test)]\nmod tests { fn b() { println!(); } }\n");
    assert!(lines_with(&test_mod, "println!").is_empty());
}
