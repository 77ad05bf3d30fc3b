//! Finding and reading the files of a policy set.
//!
//! Paths may be files or directories; directories are searched recursively for
//! `*.nudge`, skipping hidden directories and never following symbolic links to
//! directories. Files are named as the user will look for them: a file given on the
//! command line keeps its spelling; a file found in a directory is the directory as
//! given joined with the path below it (`policies/journeys/cart.nudge`; a leading
//! `./` is dropped). The order is stable: arguments in order, each directory's files
//! sorted by path; a file reached twice is read once.

use nudge::Sources;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

pub struct LoadError(pub String);

pub fn load(paths: &[PathBuf]) -> Result<Sources, LoadError> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| {
            LoadError(format!(
                "cannot read `{}`: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files).map_err(|e| {
                LoadError(format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    io_reason(&e)
                ))
            })?;
            files.sort();
            for file in files {
                let relative = file.strip_prefix(path).unwrap_or(&file);
                found.push((display_name(&path.join(relative)), file));
            }
        } else {
            found.push((display_name(path), path.clone()));
        }
    }
    if found.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(LoadError(format!(
            "no `.nudge` files found in {}",
            list.join(", ")
        )));
    }
    let mut seen = HashSet::new();
    let mut sources = Sources::new();
    for (name, path) in found {
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(key) {
            continue;
        }
        let bytes = fs::read(&path)
            .map_err(|e| LoadError(format!("cannot read `{name}`: {}", io_reason(&e))))?;
        if bytes.len() > nudge::MAX_FILE_BYTES {
            return Err(LoadError(format!("`{name}` is larger than 4 GiB")));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            LoadError(format!(
                "`{name}` is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        sources.add(name, text);
    }
    Ok(sources)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if kind.is_dir() {
            if !hidden {
                walk(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "nudge") && !kind.is_dir() {
            // A symlink to a file is followed when read; to a directory, never.
            if kind.is_symlink() && fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
                continue;
            }
            out.push(path);
        }
    }
    Ok(())
}

fn display_name(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut name = text.as_str();
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    name.to_string()
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
