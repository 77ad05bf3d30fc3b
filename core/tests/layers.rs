//! Architecture invariant (ARCHITECTURE.md "Layers"): no module of the library
//! imports from a layer above its own. The order is read from ARCHITECTURE.md,
//! so the document and the code cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

fn layers() -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let line = doc
        .lines()
        .find_map(|l| {
            l.split_once("Layer order (bottom to top): ")
                .map(|(_, rest)| rest.to_string())
        })
        .expect("ARCHITECTURE.md states the layer order");
    line.trim_end_matches('.')
        .split(", ")
        .map(|m| m.trim_matches('`').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::m`, outside line comments.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            } else if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b}`: every name in the braces.
                let group = group.split('}').next().unwrap_or_default();
                for item in group.split(',') {
                    let item = item.trim().split("::").next().unwrap_or_default();
                    if !item.is_empty() {
                        found.push(item.to_string());
                    }
                }
            }
        }
    }
    found
}

/// What lib.rs re-exports at the crate root, by the module it comes from.
fn module_of(name: &str) -> &str {
    match name {
        "Sources" | "FileId" | "Span" => "source",
        "analyze" | "Analysis" => "analysis",
        "Diagnostic" | "Severity" | "Code" => "diagnostic",
        other => other,
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let layers = layers();
    let rank = |m: &str| layers.iter().position(|l| l == m);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the library's files are found");
    let mut upward = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let Some(own) = rank(&module) else {
            unplaced.push(module);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text) {
            let target = module_of(&target);
            match rank(target) {
                Some(theirs) if theirs > own => {
                    upward.push(format!("{} → {target}", relative.display()));
                }
                Some(_) => {}
                None => unplaced.push(format!("{target} (named in {})", relative.display())),
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in ARCHITECTURE.md: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up a layer: {upward:#?}"
    );
}

#[test]
fn the_scan_sees_plain_and_grouped_imports() {
    let found = imports(
        "use crate::ir::Value;\n// crate::jit is not named here\nuse crate::{runtime::X, source};\nlet x = crate::stdx::hash::fnv1a_64(b\"\");",
    );
    assert_eq!(found, ["ir", "runtime", "source", "stdx"]);
}

/// The files of `dir` (a module of the library) that each names as
/// `crate::<module>::<file>` or `super::<file>`.
fn sibling_imports(dir: &Path, module: &str) -> Vec<(String, String)> {
    let mut edges = Vec::new();
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    for (file, own) in files.iter().zip(&names) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for prefix in [format!("crate::{module}::"), "super::".to_string()] {
                let mut rest = code;
                while let Some(at) = rest.find(&prefix) {
                    rest = &rest[at + prefix.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if names.contains(&name) && &name != own && name != "mod" {
                        edges.push((own.clone(), name));
                    }
                }
            }
        }
    }
    edges.sort();
    edges.dedup();
    edges
}

/// Architecture invariant: the files of `syntax` import one another without
/// a circle (`lexical` and `expr` below `build` and `errors`).
#[test]
fn the_syntax_files_import_one_another_without_a_circle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/syntax");
    let edges = sibling_imports(&dir, "syntax");
    assert!(
        edges.contains(&("build".to_string(), "expr".to_string())),
        "the scan sees the builder's use of the parser: {edges:?}"
    );
    // A file is in a circle when it reaches itself.
    for (from, _) in &edges {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(at) = todo.pop() {
            for (a, b) in &edges {
                if *a == at && seen.insert(b.clone()) {
                    todo.push(b.clone());
                }
            }
        }
        assert!(
            !seen.contains(from),
            "`{from}` imports itself through {edges:?}"
        );
    }
}
