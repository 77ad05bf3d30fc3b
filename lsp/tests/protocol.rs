//! The real server, driven through JSON-RPC on its stdio: initialize, didOpen,
//! publishDiagnostics, hover, completion, definition, a didChange that fixes the
//! error and clears the diagnostics, shutdown and exit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nudge-lsp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim();
                    if header.is_empty() {
                        break;
                    }
                    if let Some(n) = header.strip_prefix("Content-Length: ") {
                        length = n.parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            messages: rx,
            next_id: 0,
        }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self
                .messages
                .recv_timeout(Duration::from_secs(20))
                .expect("a response");
            if m["id"] == id && m.get("method").is_none() {
                return m;
            }
        }
    }

    /// Whether, among the next publications for `uri` (each publish sends every
    /// document, so earlier ones may still be queued), one clears it.
    fn cleared(&mut self, uri: &str) -> bool {
        while let Ok(m) = self.messages.recv_timeout(Duration::from_secs(10)) {
            if m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
            {
                return true;
            }
        }
        false
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics_for(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let m = self
                .messages
                .recv_timeout(Duration::from_secs(20))
                .expect("diagnostics");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }
}

#[test]
fn a_session() {
    let mut c = Client::start();
    let init = c.request(
        "initialize",
        json!({"capabilities": {}, "processId": null, "rootUri": null}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "nudge-lsp");
    assert_eq!(init["result"]["capabilities"]["hoverProvider"], true);
    c.notify("initialized", json!({}));

    let uri = "file:///tmp/nudge-lsp-session/main.nudge";
    let broken = "consent news opt_out\nprofile { email: string? }\nevent signup { plan: string }\nchannel email { address profile.email consent news }\njourney welcome {\n  owner \"x\"\n  when signup where event.plan == \"pro\"\n  send hello via emial\n}\ntemplate hello { email { subject: \"Hi\" } }\nlimits { cap 3 per week }\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nudge", "version": 1, "text": broken}}),
    );
    let diagnostics = c.diagnostics_for(uri);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0]["code"], "N104");
    assert_eq!(
        diagnostics[0]["range"]["start"],
        json!({"line": 7, "character": 17})
    );

    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 8}}),
    );
    assert!(
        hover["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("event signup"),
        "{hover}"
    );

    let completion = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 26}}),
    );
    let labels: Vec<&str> = completion["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"plan"), "{labels:?}");

    let definition = c.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": {"line": 7, "character": 8}}),
    );
    assert_eq!(
        definition["result"]["range"]["start"],
        json!({"line": 9, "character": 9})
    );

    // Fix the typo with an incremental change: `emial` → `email`.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": {"start": {"line": 7, "character": 17}, "end": {"line": 7, "character": 22}}, "text": "email"}]}),
    );
    assert!(c.diagnostics_for(uri).is_empty());

    let formatting = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert!(formatting["result"].is_array(), "{formatting}");

    let shutdown = c.request("shutdown", Value::Null);
    assert!(shutdown["error"].is_null());
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success());
}

const SET: &str = "consent news opt_out\nprofile { email: string? }\nevent signup { plan: string }\nchannel email { address profile.email consent news }\njourney welcome {\n  owner \"x\"\n  when signup\n  send hello via email\n}\ntemplate hello { email { subject: \"Hi\" } }\nlimits { cap 3 per week }\n";

fn initialized(c: &mut Client, params: Value) -> Value {
    let init = c.request("initialize", params);
    c.notify("initialized", json!({}));
    init
}

fn folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-lsp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client that sends only `rootUri` (Neovim's `start_client`) gets the
/// workspace's files, so a journey's events in another file are known; and a
/// file name with `é`, `+`, `,` or `:` is one document however the client
/// spells its URI.
#[test]
fn root_uri_only_and_uris_spelt_differently() {
    let dir = folder("root");
    let schema = "consent news opt_out\nprofile { email: string? }\nevent signup { plan: string }\nchannel email { address profile.email consent news }\nlimits { cap 3 per week }\n";
    std::fs::write(dir.join("schema.nudge"), schema).unwrap();
    let journey = "journey welcome {\n  owner \"x\"\n  when signup\n  send hello via email\n}\ntemplate hello { email { subject: \"Hi\" } }\nlimits { cap 3 per week }\n";
    std::fs::write(dir.join("caf\u{e9} +,:.nudge"), journey).unwrap();
    let mut c = Client::start();
    let root = format!("file://{}", dir.display());
    initialized(
        &mut c,
        json!({"capabilities": {}, "processId": null, "rootUri": root}),
    );
    // The client spells `é` in lower-case hex and escapes `+`, `,` and `:`.
    let uri = format!("{root}/caf%c3%a9%20%2B%2C%3A.nudge");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nudge", "version": 1, "text": journey}}),
    );
    // No "unknown event" (the schema was loaded from the root) and no
    // "declared twice" (the two spellings are one file).
    let all = loop {
        let m = c
            .messages
            .recv_timeout(Duration::from_secs(20))
            .expect("diagnostics");
        if m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"].as_str().unwrap().contains("caf")
        {
            break m["params"]["diagnostics"].as_array().unwrap().clone();
        }
    };
    assert!(all.is_empty(), "{all:?}");
    let _ = c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

/// Rename refuses what would not be a name, or would merge two names, and
/// prepareRename answers the range of the name.
#[test]
fn rename_is_checked_and_prepared() {
    let mut c = Client::start();
    let init = initialized(&mut c, json!({"capabilities": {}, "processId": null}));
    assert_eq!(
        init["result"]["capabilities"]["renameProvider"]["prepareProvider"],
        true
    );
    let uri = "file:///tmp/nudge-lsp-rename/main.nudge";
    let text = format!("{SET}template other {{ email {{ subject: \"O\" }} }}\n");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nudge", "version": 1, "text": text}}),
    );
    let _ = c.diagnostics_for(uri);
    // `hello` in `send hello via email`.
    let at = json!({"textDocument": {"uri": uri}, "position": {"line": 7, "character": 8}});
    let prepared = c.request("textDocument/prepareRename", at.clone());
    assert_eq!(
        prepared["result"]["start"],
        json!({"line": 7, "character": 7}),
        "{prepared}"
    );
    for bad in ["send", "1abc", "cart last", "other"] {
        let mut params = at.clone();
        params["newName"] = json!(bad);
        let answer = c.request("textDocument/rename", params);
        assert!(answer["error"].is_object(), "{bad}: {answer}");
    }
    let mut params = at.clone();
    params["newName"] = json!("greeting");
    let answer = c.request("textDocument/rename", params);
    let edits = answer["result"]["changes"][uri].as_array().unwrap();
    assert_eq!(edits.len(), 2, "{answer}");
    let _ = c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

/// Closing an unsaved buffer of a file that does not exist clears its
/// diagnostics; a watched file deleted on disk leaves the set.
#[test]
fn closed_and_deleted_documents_leave_no_diagnostics() {
    let dir = folder("close");
    let on_disk = dir.join("disk.nudge");
    std::fs::write(
        &on_disk,
        "journey broken {\n  owner \"x\"\n  when nothing\n}\n",
    )
    .unwrap();
    let root = format!("file://{}", dir.display());
    let mut c = Client::start();
    initialized(
        &mut c,
        json!({"capabilities": {}, "processId": null, "workspaceFolders": [{"uri": root, "name": "w"}]}),
    );
    let disk_uri = format!("{root}/disk.nudge");
    assert!(!c.diagnostics_for(&disk_uri).is_empty());
    let scratch = format!("{root}/unsaved.nudge");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": scratch, "languageId": "nudge", "version": 1, "text": "journey j {\n  when x\n}\n"}}),
    );
    assert!(!c.diagnostics_for(&scratch).is_empty());
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": scratch}}),
    );
    assert!(c.cleared(&scratch));
    std::fs::remove_file(&on_disk).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": disk_uri, "type": 3}]}),
    );
    assert!(c.cleared(&disk_uri));
    let _ = c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

/// Plain-text hovers for clients that ask for them (eglot), and `exit` without
/// `shutdown` ends with status 1.
#[test]
fn plaintext_hovers_and_exit_without_shutdown() {
    let mut c = Client::start();
    initialized(
        &mut c,
        json!({"capabilities": {"textDocument": {"hover": {"contentFormat": ["plaintext"]}}}, "processId": null}),
    );
    let uri = "file:///tmp/nudge-lsp-plain/main.nudge";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nudge", "version": 1, "text": SET}}),
    );
    let _ = c.diagnostics_for(uri);
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 8}}),
    );
    assert_eq!(hover["result"]["contents"]["kind"], "plaintext", "{hover}");
    assert!(
        !hover["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("```")
    );
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().unwrap().code(), Some(1));
}

/// Quick edits do not hold the server's request slots while they wait for
/// typing to pause: a formatting request after 80 `didChange`s is answered
/// at once. Before, each notification slept its 150 ms debounce in one of the
/// server's four concurrent slots, so the request waited for 80 / 4 × 150 ms =
/// 3 s; the bound below is a third of that, far above what the answer takes
/// on a loaded machine (a few milliseconds).
#[test]
fn edits_do_not_delay_requests() {
    let mut c = Client::start();
    initialized(
        &mut c,
        json!({"capabilities": {}, "processId": null, "rootUri": null}),
    );
    let uri = "file:///tmp/nudge-lsp-typing/main.nudge";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nudge", "version": 1, "text": SET}}),
    );
    let started = std::time::Instant::now();
    for version in 2..82 {
        // Typing a stray word at the end of the file, one letter at a time.
        let line = SET.lines().count();
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version},
                   "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                                 "end": {"line": line, "character": 0}},
                                       "text": "x"}]}),
        );
    }
    let formatted = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let waited = started.elapsed();
    assert!(formatted["error"].is_null(), "{formatted}");
    assert!(
        waited < Duration::from_millis(1000),
        "a request waited {waited:?} behind 80 edits"
    );
    // The debounced publish still comes once typing stops, for the last text
    // (the stray word is a syntax error; the opened text had none).
    let mut published = c.diagnostics_for(uri);
    while published.is_empty() {
        published = c.diagnostics_for(uri);
    }
    assert_eq!(published[0]["code"], "S001", "{published:?}");
}

/// A malformed frame (a body that is not JSON, a bad length, a header line
/// that is not a header) is answered with JSON-RPC's parse error and the
/// session goes on: before, the server stopped at the first one.
#[test]
fn malformed_frames_are_answered_and_the_session_goes_on() {
    let mut c = Client::start();
    write!(c.stdin, "Content-Length: 5\r\n\r\n{{oops").unwrap();
    write!(c.stdin, "Content-Length: many\r\n\r\n").unwrap();
    write!(c.stdin, "not a header\r\nContent-Length: 2\r\n\r\n{{}}").unwrap();
    c.stdin.flush().unwrap();
    // Each is answered with a parse error, `id: null`, naming what is wrong.
    let mut errors = Vec::new();
    while errors.len() < 3 {
        let m = c
            .messages
            .recv_timeout(Duration::from_secs(20))
            .expect("a parse error");
        assert_eq!(m["error"]["code"], -32700, "{m}");
        assert!(m["id"].is_null(), "{m}");
        errors.push(m["error"]["message"].as_str().unwrap().to_string());
    }
    assert!(errors[0].contains("not JSON"), "{errors:?}");
    assert!(
        errors[1].contains("`Content-Length: many` is not a length"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains("`not a header` is not a header"),
        "{errors:?}"
    );
    // And the session goes on.
    let init = c.request(
        "initialize",
        json!({"capabilities": {}, "processId": null, "rootUri": null}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "nudge-lsp", "{init}");
    let shutdown = c.request("shutdown", Value::Null);
    assert!(shutdown["error"].is_null(), "{shutdown}");
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}
