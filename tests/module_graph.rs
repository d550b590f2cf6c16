//! No two modules of the library import each other. Every `.rs` file
//! under `src/` (the programs in `src/bin/` aside) is a module; every
//! `crate::…`, `super::…` and `self::…` path in its code (comments left
//! out, `{…}` groups expanded) is resolved to the longest module it names,
//! and no two modules may name each other, unless one is inside the other
//! (a module and its own parts are one room). Two rooms that lean on each
//! other cannot be read, tested or moved apart, so this fails on the first
//! such pair, naming it and a line of each side.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module's path below the crate (`["store", "tree"]`; the crate is `[]`).
type Module = Vec<String>;

#[test]
fn no_two_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    assert!(files.len() > 50, "read the library: {} files", files.len());
    let known: BTreeSet<Module> = files.keys().cloned().collect();
    let mut edges: BTreeMap<(Module, Module), String> = BTreeMap::new();
    for (module, text) in &files {
        for (line, path) in paths_in(text) {
            let Some(target) = resolve(module, &path, &known) else {
                continue;
            };
            let related = target.starts_with(module) || module.starts_with(&target);
            if !related {
                edges
                    .entry((module.clone(), target))
                    .or_insert_with(|| format!("line {line}: {}", path.join("::")));
            }
        }
    }
    assert!(
        edges.len() > 100,
        "found the imports: {} edges",
        edges.len()
    );
    let cycles: Vec<String> = edges
        .iter()
        .filter(|((a, b), _)| a < b)
        .filter_map(|((a, b), here)| {
            let there = edges.get(&(b.clone(), a.clone()))?;
            Some(format!("{} ({here}) <-> {} ({there})", name(a), name(b)))
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.join("\n")
    );
}

/// Every library file's text by its module, `src/bin` left out.
fn library_files(src: &Path) -> BTreeMap<Module, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path != src.join("bin") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Module = relative
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                files.insert(module, fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

/// The `crate`/`super`/`self` paths in `text`, with their line numbers,
/// comments skipped and one level of `{a, b::c}` groups expanded.
fn paths_in(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = ["crate::", "super::", "self::"]
            .iter()
            .filter_map(|root| rest.find(root))
            .min()
        {
            let boundary = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let (path, after) = read_path(&rest[at..]);
            if boundary {
                match after.strip_prefix("::{") {
                    Some(group) => {
                        let inside = group.split('}').next().unwrap_or("");
                        for item in inside.split(',') {
                            let (tail, _) = read_path(item.trim());
                            found.push((i + 1, [path.clone(), tail].concat()));
                        }
                    }
                    None => found.push((i + 1, path)),
                }
            }
            rest = &after[after.len().min(1)..];
        }
    }
    found
}

/// The `a::b::c` words at the start of `text`, and what follows them.
fn read_path(text: &str) -> (Vec<String>, &str) {
    let mut words = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        words.push(rest[..end].to_owned());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(next) if next.starts_with(|c: char| c.is_alphanumeric() || c == '_') => {
                rest = next
            }
            _ => break,
        }
    }
    (words, rest)
}

/// The longest known module that `path`, written in `module`, names.
fn resolve(module: &Module, path: &[String], known: &BTreeSet<Module>) -> Option<Module> {
    let mut base = module.clone();
    let mut words = path.iter().peekable();
    match words.next().map(String::as_str) {
        Some("crate") => base.clear(),
        Some("self") => {}
        Some("super") => {
            base.pop()?;
            while words.next_if(|w| *w == "super").is_some() {
                base.pop()?;
            }
        }
        _ => return None,
    }
    let mut target = base.clone();
    let mut candidate = base;
    for word in words {
        candidate.push(word.clone());
        if known.contains(&candidate) {
            target = candidate.clone();
        }
    }
    known.contains(&target).then_some(target)
}

/// `crate::a::b` for a module path.
fn name(module: &Module) -> String {
    ["crate".to_owned()]
        .into_iter()
        .chain(module.iter().cloned())
        .collect::<Vec<_>>()
        .join("::")
}
