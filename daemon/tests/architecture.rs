//! The shape of the daemon's source tree, checked: imports between modules
//! go one way (no circles), no file outgrows a reader, the protocol cores
//! never read the clock, and the CLI reads the typed status model.
//! `docs/architecture.md` describes the layout these rules keep.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest non-test source file, in lines.
const MAX_LINES: usize = 800;

/// Files that hold protocol logic and take the time as an argument.
const CLOCK_FREE: &[&str] = &[
    "session/fsm.rs",
    "session/peer.rs",
    "session/negotiate.rs",
    "rib/mod.rs",
    "rib/adj_rib_in.rs",
    "rib/adj_rib_out.rs",
    "rib/best.rs",
    "rib/export.rs",
    "rib/graceful_restart.rs",
    "rib/intern.rs",
    "rib/loc_rib.rs",
    "rib/query.rs",
    "fib/model/mod.rs",
    "fib/model/reconcile.rs",
    "fib/model/retry.rs",
    "fib/kernel.rs",
    "fib/nexthop_table.rs",
    "fib/resolve.rs",
    "refusals.rs",
    "memory.rs",
    "bfd/mod.rs",
    "bfd/packet.rs",
    "bfd/session.rs",
];

struct SourceFile {
    /// Relative to `daemon/src`.
    path: PathBuf,
    /// Module path, e.g. `["rib", "task"]`; empty for the crate root.
    module: Vec<String>,
    /// The text without its unit tests.
    code: String,
}

/// A source file's text before its unit tests (`mod tests`, private or
/// shared with sibling modules' tests).
fn without_tests(text: &str) -> &str {
    [
        "#[cfg(test)]\nmod tests {",
        "#[cfg(test)]\npub(crate) mod tests {",
    ]
    .iter()
    .filter_map(|m| text.find(m))
    .min()
    .map_or(text, |at| &text[..at])
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file except test-only ones, with its module path.
fn sources() -> Vec<SourceFile> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = src();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).expect("under src").to_path_buf();
            let mut parts: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            let last = parts.last()?.clone();
            if last == "main" || last == "tests" {
                return None;
            }
            if last == "mod" || last == "lib" {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).expect("read source");
            let code = without_tests(&text).to_owned();
            Some(SourceFile {
                path: rel,
                module: parts,
                code,
            })
        })
        .collect()
}

/// Every path a file names through `crate::` or `super::`, with `use`
/// groups expanded (`use crate::{a, b::c}` names `crate::a` and
/// `crate::b::c`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let end = rest
                .find(|c: char| {
                    !(c.is_ascii_alphanumeric()
                        || c == '_'
                        || c == ':'
                        || c == '{'
                        || c == '}'
                        || c == ','
                        || c.is_whitespace()
                        || c == '*')
                })
                .unwrap_or(rest.len());
            let tree = &rest[..end];
            // A group is only read when it is a `use` tree (closed braces).
            let tree = if tree.contains('{') && tree.matches('{').count() != tree.matches('}').count() {
                &tree[..tree.find('{').unwrap_or(tree.len())]
            } else {
                tree
            };
            expand(tree, &mut Vec::new(), &mut out);
            i += end.max(1);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Expands one `use` tree into full paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let mut p = prefix.clone();
            p.extend(
                tree.split("::")
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && *s != "*")
                    .map(|s| s.split_whitespace().next().unwrap_or(s).to_owned()),
            );
            out.push(p);
        }
        Some(open) => {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let close = tree.rfind('}').unwrap_or(tree.len());
            let inner = &tree[open + 1..close];
            let len = prefix.len();
            prefix.extend(head);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[start..i], prefix, out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].trim().is_empty() {
                expand(&inner[start..], prefix, out);
            }
            prefix.truncate(len);
        }
    }
}

/// The deepest known module a path names, from the module `from`.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    for seg in rest {
        let mut next = base.clone();
        next.push(seg.clone());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

fn is_ancestor(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

/// Imports between modules never form a circle. A module and the files
/// inside it are one unit (the files of `rib/` implement `Rib`), so only
/// imports between modules where neither contains the other count.
#[test]
fn imports_between_modules_go_one_way() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        for p in paths(&f.code) {
            let Some(target) = resolve(&f.module, &p, &modules) else {
                continue;
            };
            if is_ancestor(&target, &f.module) || is_ancestor(&f.module, &target) {
                continue;
            }
            edges.entry(f.module.clone()).or_default().insert(target);
        }
    }
    // The known edges must include some, or the parser found nothing.
    let name = |m: &[String]| m.join("::");
    let all: Vec<String> = edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| format!("{} -> {}", name(a), name(b))))
        .collect();
    assert!(all.contains(&"api -> status".to_owned()), "{all:#?}");
    assert!(all.contains(&"session::task -> rib::task".to_owned()), "{all:#?}");

    // Depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == m).unwrap_or(0);
                let mut cycle = stack[at..].to_vec();
                cycle.push(m.clone());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for n in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &edges, &mut state, &mut Vec::new()) {
            let shown: Vec<String> = cycle.iter().map(|m| name(m)).collect();
            panic!("import circle: {}", shown.join(" -> "));
        }
    }
}

/// The data flows one way: the FIB never reaches into sessions, the RIB
/// never into the FIB or the API, the configuration into nothing of the
/// daemon's, and the protocol cores never into the I/O around them.
#[test]
fn no_module_reaches_backwards() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "config",
            &[
                "session", "rib", "fib", "api", "daemon", "status", "metrics", "cli",
            ],
        ),
        ("fib", &["session", "api", "daemon", "metrics", "cli"]),
        ("rib", &["fib", "api", "daemon", "metrics", "cli"]),
        ("fib::model", &["fib::netlink", "fib::task"]),
        (
            "session::fsm",
            &["session::task", "session::socket", "rib", "status"],
        ),
        (
            "session::peer",
            &["session::task", "session::socket", "rib", "status"],
        ),
        ("status", &["api", "daemon", "metrics", "cli", "rib", "fib"]),
        ("metrics", &["api", "daemon", "rib", "fib", "session"]),
        ("api", &["daemon", "cli"]),
    ];
    let mut found = Vec::new();
    for f in &files {
        let me = f.module.join("::");
        for p in paths(&f.code) {
            let Some(target) = resolve(&f.module, &p, &modules) else {
                continue;
            };
            let target = target.join("::");
            for (from, banned) in forbidden {
                let inside = me == *from || me.starts_with(&format!("{from}::"));
                for b in *banned {
                    if inside && (target == *b || target.starts_with(&format!("{b}::"))) {
                        found.push(format!("{} ({me}) uses {target}", f.path.display()));
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    assert!(found.is_empty(), "backward reaches:\n{}", found.join("\n"));
}

#[test]
fn no_source_file_outgrows_a_reader() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|f| f.code.lines().count() > MAX_LINES)
        .map(|f| format!("{}: {} lines", f.path.display(), f.code.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

/// The cores are deterministic: the time comes in as an argument, so the
/// virtual-time tests drive them exactly.
#[test]
fn protocol_cores_never_read_the_clock() {
    let root = src();
    for file in CLOCK_FREE {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let code = without_tests(&text);
        for needle in ["Instant::now", "SystemTime::now", "tokio::time"] {
            assert!(!code.contains(needle), "{file} uses {needle}");
        }
    }
}

/// The CLI reads the API's answers as the status model's types, never by
/// string keys.
#[test]
fn the_cli_reads_typed_status() {
    let cli = std::fs::read_to_string(src().join("cli.rs")).expect("cli.rs");
    let code = cli.split("#[cfg(test)]").next().unwrap_or("");
    assert!(!code.contains("[\""), "cli.rs indexes JSON by key");
    assert!(!code.contains(".get(\""), "cli.rs looks JSON keys up");
    assert!(code.contains("crate::status::"));
}
