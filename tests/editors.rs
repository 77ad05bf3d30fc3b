//! Editors' own engines on Nudge's files: the VS Code grammar tokenized by
//! vscode-textmate (`editors/vscode/test/grammar.test.js`), and Debian's Neovim
//! driving `nudge lsp` headless (`editors/nvim/test.lua`). `.ci/run` installs
//! both; where one is missing the test says so loudly and passes, as the
//! browser test does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn skip(what: &str, why: &str) {
    eprintln!("!! SKIPPED {what}: {why}");
}

#[test]
fn the_vscode_grammar_scopes_what_readers_rely_on() {
    let dir = root().join("editors/vscode/test");
    if !dir.join("node_modules/vscode-textmate").exists() {
        return skip(
            "the TextMate grammar test",
            "run `npm ci --prefix editors/vscode/test` (.ci/run does)",
        );
    }
    let out = match Command::new("node")
        .arg("grammar.test.js")
        .current_dir(&dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => return skip("the TextMate grammar test", &format!("no node: {e}")),
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Debian's Neovim (0.7.2 on bookworm) as the client, on a copy of
/// `examples/retail`: attach, diagnostics on a broken buffer and their
/// clearing, hover, completion after `profile.`, a diagnostic's column on a
/// line with `è` and an emoji, formatting, and a rename across three files.
#[test]
fn neovim_drives_the_language_server() {
    let version = match Command::new("nvim").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            return skip(
                "the Neovim test",
                "no `nvim` (Debian: apt-get install neovim; .ci/run installs it)",
            );
        }
    };
    eprintln!("{}", version.lines().next().unwrap_or(""));
    let dir = std::env::temp_dir().join(format!("nudge-nvim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let set = dir.join("retail");
    copy_dir(&root().join("examples/retail"), &set);
    let result = dir.join("result.txt");
    let out = Command::new("timeout")
        .args(["180", "nvim", "--headless", "--clean", "-c"])
        .arg(format!(
            "luafile {}",
            root().join("editors/nvim/test.lua").display()
        ))
        .env("NUDGE", env!("CARGO_BIN_EXE_nudge"))
        .env("ROOT", &set)
        .env("RESULT", &result)
        .output()
        .expect("nvim runs");
    let report = std::fs::read_to_string(&result).unwrap_or_else(|_| {
        format!(
            "no result (status {:?}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report.trim(), "ok", "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vsce package` runs without a prompt and the `.vsix` holds the bundled
/// client, the grammar and the licence, not `node_modules`.
#[test]
fn the_vscode_extension_packages_without_a_prompt() {
    let dir = root().join("editors/vscode");
    if !dir.join("node_modules/.bin/vsce").exists() {
        return skip(
            "the VS Code packaging test",
            "run `npm ci --prefix editors/vscode` (.ci/run does)",
        );
    }
    let out = Command::new("npm")
        .args(["run", "package"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("npm runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    // The archive's listing, by Python's zipfile (a .vsix is a zip).
    let listing = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(dir.join("nudge.vsix"))
        .output()
        .expect("python3 runs");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    for file in [
        "extension/dist/extension.js",
        "extension/syntaxes/nudge.tmLanguage.json",
        "extension/package.json",
        "extension/LICENSE.txt",
    ] {
        assert!(listing.contains(file), "{file} missing:\n{listing}");
    }
    assert!(!listing.contains("node_modules"), "{listing}");
}
