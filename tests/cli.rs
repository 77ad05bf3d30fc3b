//! The `nudge` binary as CI and users see it: exit codes, formats, file names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::path::Path;
use std::process::{Command, Output};

fn nudge(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("the nudge binary runs")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn the_bundled_example_checks_clean() {
    let out = nudge(&["check", "examples/retail"], root());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("checked 16 files: no problems"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn three_broken_declarations_give_three_errors_on_their_lines() {
    let out = nudge(
        &["check", "--format", "json", "tests/cli/three_broken.nudge"],
        root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["errors"], 3);
    assert_eq!(v["warnings"], 0);
    let diags = v["diagnostics"].as_array().expect("array");
    let lines: Vec<u64> = diags
        .iter()
        .map(|d| d["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [2, 11, 15]);
    for d in diags {
        assert_eq!(d["file"], "tests/cli/three_broken.nudge");
        assert_eq!(d["severity"], "error");
        for key in ["code", "message", "column", "end_line", "end_column"] {
            assert!(!d[key].is_null(), "{key} missing in {d}");
        }
    }
    assert_eq!(diags[1]["column"], 8);
    assert_eq!(diags[1]["end_column"], 14);
    assert_eq!(diags[0]["code"], "S001");
    assert_eq!(diags[1]["code"], "S004");
}

#[test]
fn columns_count_unicode_scalar_values() {
    let dir = tempdir("columns");
    std::fs::write(
        dir.join("a.nudge"),
        "template t { email { subject: \"héllo 🎉\" body: \"x\" } }\n",
    )
    .expect("write");
    let out = nudge(&["check", "--format", "json", "."], &dir);
    let v = json(&out);
    let d = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "S011")
        .expect("the missing comma is reported");
    assert_eq!(d["file"], "a.nudge");
    // The comma is missing right after the closing quote, at scalar column 40.
    assert_eq!(d["line"], 1);
    assert_eq!(d["column"], 40);
}

#[test]
fn files_found_in_a_directory_are_named_below_it() {
    let dir = tempdir("naming");
    std::fs::create_dir_all(dir.join("policies/journeys")).expect("mkdir");
    std::fs::write(dir.join("policies/journeys/bad.nudge"), "consent x maybe\n").expect("write");
    std::fs::write(dir.join("policies/ok.nudge"), "consent y opt_in\n").expect("write");
    let out = nudge(&["check", "--format", "json", "policies"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json(&out)["diagnostics"][0]["file"],
        "policies/journeys/bad.nudge"
    );
    let out = nudge(
        &["check", "--format", "json", "./policies/journeys/bad.nudge"],
        &dir,
    );
    assert_eq!(
        json(&out)["diagnostics"][0]["file"],
        "policies/journeys/bad.nudge"
    );
}

#[test]
fn missing_paths_and_empty_directories_are_usage_errors() {
    let dir = tempdir("empty");
    let out = nudge(&["check", "does/not/exist"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read `does/not/exist`"),
        "{}",
        stderr(&out)
    );
    let out = nudge(&["check", "."], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no `.nudge` files found"),
        "{}",
        stderr(&out)
    );
    let out = nudge(&["check", "--format", "xml", "."], &dir);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn human_output_shows_the_snippet_code_and_help() {
    let out = nudge(
        &["check", "tests/parse/err/duration_space_unit.nudge"],
        root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("S004"), "{text}");
    assert!(
        text.contains("`min` is not a duration unit: use `m`"),
        "{text}"
    );
    assert!(text.contains("wait 30 min"), "{text}");
    assert!(text.contains("help: write `30m`"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "NO_COLOR output has escape codes: {text}"
    );
}

#[test]
fn github_annotations_name_file_line_and_code() {
    let out = nudge(
        &[
            "check",
            "--format",
            "github",
            "tests/cli/three_broken.nudge",
        ],
        root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().expect("a line");
    assert!(
        first.starts_with("::error file=tests/cli/three_broken.nudge,line=2,col=25,endLine=2,endColumn=32,title=S001::"),
        "{first}"
    );
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn sarif_output_is_a_sarif_2_1_0_log() {
    let out = nudge(
        &["check", "--format", "sarif", "tests/cli/three_broken.nudge"],
        root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "nudge");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    let region = &results[0]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 2);
    assert_eq!(region["startColumn"], 25);
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let rule_ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    for r in results {
        let id = r["ruleId"].as_str().expect("ruleId");
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rule_ids[index], id);
    }
    // GitHub's ruleset: every rule has a full description and help.
    for rule in rules {
        assert!(
            rule["fullDescription"]["text"]
                .as_str()
                .is_some_and(|t| t.len() > 20),
            "{rule}"
        );
        assert!(rule["help"]["text"].is_string() && rule["help"]["markdown"].is_string());
    }
    let location = &results[0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(location["uri"], "tests/cli/three_broken.nudge");
    assert_eq!(location["uriBaseId"], "%SRCROOT%");
}

#[test]
fn sarif_uris_are_encoded_and_absolute_paths_are_file_uris() {
    let dir = tempdir("sarif uri é");
    let file = dir.join("a b+é.nudge");
    std::fs::write(&file, "journey j {\n  when\n}\n").unwrap();
    let out = nudge(
        &["check", "--format", "sarif", file.to_str().unwrap()],
        root(),
    );
    let v = json(&out);
    let uri =
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(uri.starts_with("file:///"), "{uri}");
    assert!(uri.ends_with("/a%20b%2B%C3%A9.nudge"), "{uri}");
    assert!(!uri.contains(' '), "{uri}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let out = nudge(
        &["check", "--format", "json", "tests/cli/warnings_only.nudge"],
        root(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v = json(&out);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["diagnostics"][0]["code"], "L404");
    let out = nudge(
        &["check", "--deny-warnings", "tests/cli/warnings_only.nudge"],
        root(),
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn explain_prints_a_page_and_rejects_unknown_codes() {
    let out = nudge(&["explain", "t202"], root());
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(page.starts_with("T202: "), "{page}");
    assert!(
        page.contains("profile.first_name == \"Ana\""),
        "the example is the tested file: {page}"
    );
    let out = nudge(&["explain", "X999"], root());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown diagnostic code `X999`"));
    assert!(stderr(&out).contains("S001"), "lists the codes");
    let out = nudge(&["explain"], root());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().count(), nudge::Code::ALL.len());
}

#[test]
fn fmt_check_lists_files_and_fmt_rewrites_them() {
    let dir = tempdir("fmt");
    std::fs::write(dir.join("messy.nudge"), "consent   a    opt_in\n").expect("write");
    std::fs::write(dir.join("clean.nudge"), "consent b opt_out\n").expect("write");
    std::fs::write(dir.join("broken.nudge"), "consent c maybe\n").expect("write");
    let out = nudge(&["fmt", "--check", "messy.nudge", "clean.nudge"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "messy.nudge\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("messy.nudge")).unwrap(),
        "consent   a    opt_in\n",
        "--check writes nothing"
    );
    let out = nudge(&["fmt", "messy.nudge", "clean.nudge"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("messy.nudge")).unwrap(),
        "consent a opt_in\n"
    );
    let out = nudge(&["fmt", "--check", "."], &dir);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken file fails the check"
    );
    assert!(
        stderr(&out).contains("has syntax errors and was not formatted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("broken.nudge")).unwrap(),
        "consent c maybe\n"
    );
}

#[test]
fn fmt_formats_stdin_to_stdout() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["fmt", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"segment s=profile.x>1")
        .expect("write");
    let out = child.wait_with_output().expect("waits");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "segment s = profile.x > 1\n"
    );
}

/// `nudge lsp` is the language server itself, in the `nudge` binary: no second
/// program to install, and none on `PATH` is needed.
#[test]
fn lsp_is_served_by_the_nudge_binary() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("lsp")
        .env("PATH", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let message = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    // Reads messages until the answer to request `id`.
    let mut answer = |id: u32| -> String {
        loop {
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("a header");
                if let Some(n) = header.trim().strip_prefix("Content-Length: ") {
                    length = n.parse().expect("a length");
                } else if header.trim().is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("a body");
            let body = String::from_utf8_lossy(&body).into_owned();
            if body.contains(&format!("\"id\":{id}")) {
                return body;
            }
        }
    };
    let _ = stdin.write_all(
        message(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#)
            .as_bytes(),
    );
    let _ = stdin.flush();
    let body = answer(1);
    assert!(body.contains("\"name\":\"nudge-lsp\""), "{body}");
    let _ = stdin.write_all(message(r#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#).as_bytes());
    let _ = stdin.flush();
    let _ = answer(2);
    let _ = stdin.write_all(message(r#"{"jsonrpc":"2.0","method":"exit"}"#).as_bytes());
    drop(stdin);
    assert!(child.wait().expect("waits").success());
}

/// SIGTERM (what an editor or a process manager sends on the way out) ends
/// `nudge lsp` even while its stdin stays open and a request is pending: the
/// server is this process, not a child left running behind it.
#[test]
fn lsp_ends_on_sigterm() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
    let _ = write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len());
    let _ = stdin.flush();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nudge lsp still runs 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    drop(stdin);
}

#[test]
fn compile_emits_clif() {
    insta::glob!("clif/*.nudge", |path| {
        let out = nudge(
            &[
                "compile",
                "--emit",
                "clif",
                path.to_str().expect("utf-8 path"),
            ],
            root(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // Embedded addresses (of constants and the none value) change between
        // runs: long hexadecimal integers are masked.
        let text = stdout(&out);
        let masked: String = text
            .lines()
            .map(|l| {
                l.split(' ')
                    .map(|w| {
                        let digits = w.trim_start_matches("0x").replace('_', "");
                        let address = w.starts_with("0x") && !w.contains('.') && digits.len() > 8;
                        if address {
                            "<address>".to_string()
                        } else {
                            w.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(masked);
    });
}

/// The human report's `file:line:col` counts Unicode scalar values, as JSON,
/// SARIF and GitHub do, so a clickable link lands on the right character.
#[test]
fn human_columns_match_json_on_non_ascii_lines() {
    let dir = tempdir("human-columns");
    let file = dir.join("utf.nudge");
    std::fs::write(&file, "segment s = \"éé\" == 3\n").unwrap();
    let path = file.to_str().unwrap();
    let json = json(&nudge(&["check", "--format", "json", path], root()));
    let human = stdout(&nudge(&["check", path], root()));
    for d in json["diagnostics"].as_array().unwrap() {
        let at = format!("{path}:{}:{}]", d["line"], d["column"]);
        assert!(human.contains(&at), "{at} not in\n{human}");
    }
    assert!(human.contains(":1:21]"), "{human}");
}
