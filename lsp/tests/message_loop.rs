//! The server's message loop under random input, over its real stdio: after
//! `initialize` is answered, a random mix of well-formed requests and notifications (at
//! random positions, on random text), JSON that is not JSON-RPC, and frames
//! that are not frames; then `shutdown` must still be answered and `exit`
//! must end the process with status 0. Every response it wrote is a whole
//! JSON frame.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use proptest::prelude::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const URI: &str = "file:///tmp/nudge-lsp-fuzz/a.nudge";

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// One piece of input: its bytes, and whether it is a request with an id
/// (which must be answered).
#[derive(Debug, Clone)]
enum Piece {
    Request(String, Value),
    Notification(String, Value),
    /// Bytes framed correctly that are not a JSON-RPC message.
    Body(Vec<u8>),
    /// Bytes that are not a frame at all (a header line, a bad length).
    Raw(Vec<u8>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("journey j { owner \"x\" when e send t via c }".to_string()),
        Just("event e { n: number }\nprofile { email: string? }\n".to_string()),
        "[ -~\n{}\"é🎉]{0,120}",
    ]
}

fn position() -> impl Strategy<Value = Value> {
    (0u32..8, 0u32..200).prop_map(|(l, c)| json!({"line": l, "character": c}))
}

fn piece() -> impl Strategy<Value = Piece> {
    let doc = || json!({"uri": URI});
    prop_oneof![
        text().prop_map(move |t| Piece::Notification(
            "textDocument/didOpen".into(),
            json!({"textDocument": {"uri": URI, "languageId": "nudge", "version": 1, "text": t}})
        )),
        (text(), position(), position()).prop_map(move |(t, a, b)| Piece::Notification(
            "textDocument/didChange".into(),
            json!({"textDocument": {"uri": URI, "version": 2},
                   "contentChanges": [{"range": {"start": a, "end": b}, "text": t}]})
        )),
        (
            prop::sample::select(vec![
                "textDocument/hover",
                "textDocument/completion",
                "textDocument/definition",
                "textDocument/references",
                "textDocument/prepareRename",
            ]),
            position()
        )
            .prop_map(move |(m, p)| Piece::Request(
                m.into(),
                json!({"textDocument": doc(), "position": p, "context": {"includeDeclaration": true}})
            )),
        Just(Piece::Request(
            "textDocument/formatting".into(),
            json!({"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": true}})
        )),
        // Unknown methods, wrong params.
        Just(Piece::Request("nudge/unknown".into(), json!({}))),
        Just(Piece::Request("textDocument/hover".into(), json!([1, 2, 3]))),
        prop_oneof![
            Just(b"[1,2,3]".to_vec()),
            Just(br#"{"id":"x"}"#.to_vec()),
            Just(br#"{"jsonrpc":"2.0","method":5}"#.to_vec()),
            Just(br#"{"jsonrpc":"2.0","id":{},"method":"textDocument/hover"}"#.to_vec()),
            Just(b"null".to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
        .prop_map(Piece::Body),
        prop_oneof![
            Just(b"Content-Length: -4\r\n\r\n".to_vec()),
            Just(b"garbage\r\n\r\n".to_vec()),
            Just(b"\r\n\r\n".to_vec()),
        ]
        .prop_map(Piece::Raw),
    ]
}

/// Reads frames from the server until the answer with `id`; every frame must
/// be a JSON object.
fn answer(reader: &mut impl BufRead, id: i64) -> Value {
    loop {
        let mut length = None;
        loop {
            let mut header = String::new();
            assert!(
                reader.read_line(&mut header).unwrap() > 0,
                "the server closed its output"
            );
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            if let Some(n) = header.strip_prefix("Content-Length: ") {
                length = Some(n.parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; length.expect("a Content-Length")];
        reader.read_exact(&mut body).unwrap();
        let m: Value = serde_json::from_slice(&body).expect("a whole JSON frame");
        if m["id"] == id && m.get("method").is_none() {
            return m;
        }
    }
}

/// The server process, killed and reaped however the case ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cases() -> u32 {
    std::env::var("NUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_loop_survives_any_input(pieces in prop::collection::vec(piece(), 1..30)) {
        let mut server = Server(
            Command::new(env!("CARGO_BIN_EXE_nudge-lsp"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut stdin = server.0.stdin.take().unwrap();
        let stdout = server.0.stdout.take().unwrap();
        // Frames are read on a thread, so that a server that stops answering
        // fails the test (by the timeout below) instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let _ = tx.send(answer(&mut reader, 1));
            let _ = tx.send(answer(&mut reader, 1_000_000));
        });
        // LSP: nothing may follow `initialize` until it is answered.
        let init = frame(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": {"capabilities": {}}}).to_string().as_bytes());
        stdin.write_all(&init).unwrap();
        stdin.flush().unwrap();
        let init = rx.recv_timeout(Duration::from_secs(30)).expect("initialize is answered");
        prop_assert_eq!(&init["result"]["serverInfo"]["name"], "nudge-lsp");
        let mut input = frame(br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#);
        for (id, p) in pieces.iter().enumerate() {
            let id = id as i64 + 2;
            match p {
                Piece::Request(method, params) => input.extend(frame(
                    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                        .to_string()
                        .as_bytes(),
                )),
                Piece::Notification(method, params) => input.extend(frame(
                    json!({"jsonrpc": "2.0", "method": method, "params": params})
                        .to_string()
                        .as_bytes(),
                )),
                Piece::Body(b) => input.extend(frame(b)),
                Piece::Raw(b) => input.extend(b),
            }
        }
        input.extend(frame(br#"{"jsonrpc":"2.0","id":1000000,"method":"shutdown"}"#));
        stdin.write_all(&input).unwrap();
        stdin.flush().unwrap();
        let shutdown = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("shutdown is answered after the random input");
        prop_assert!(shutdown["error"].is_null(), "{}", shutdown);
        stdin.write_all(&frame(br#"{"jsonrpc":"2.0","method":"exit"}"#)).unwrap();
        drop(stdin);
        let status = server.0.wait().unwrap();
        prop_assert!(status.success(), "{:?}", status);
    }
}
