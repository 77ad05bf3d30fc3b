//! LSP's base protocol (`Content-Length` frames) in front of tower-lsp-server.
//!
//! tower-lsp-server stops serving at the first frame it cannot decode: one
//! malformed message from a client (or a stray write to the server's stdin)
//! ended the session silently. Here every frame is read and checked first: a
//! frame without a usable `Content-Length`, over [`MAX_FRAME`], or whose body
//! is not JSON is answered with JSON-RPC's parse error (`-32700`, `id: null`),
//! JSON that is not a JSON-RPC message with its invalid request (`-32600`),
//! each logged on stderr, and the server goes on with the next frame. Good
//! frames are passed on unchanged; the server's own output is written to
//! stdout one whole frame at a time, so the parse errors never split one.
//!
//! Promise: nothing a client sends ends the session but the end of its input
//! or `exit`.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The largest frame accepted: far above a 5 MB document in a `didOpen`.
pub const MAX_FRAME: usize = 256 << 20;
/// The longest header line read before the line is refused.
const MAX_HEADER_LINE: usize = 8 << 10;

#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A well-formed message's body.
    Message(Vec<u8>),
    /// A frame that cannot be passed on, and why: not a frame, or not JSON
    /// (JSON-RPC's parse error).
    Malformed(String),
    /// JSON that is not a JSON-RPC message (JSON-RPC's invalid request).
    Invalid(String),
    /// The input ended (mid-frame included).
    End,
}

/// Reads one frame: header lines up to an empty one, then `Content-Length`
/// bytes of body.
pub async fn read_frame<R: AsyncBufRead + Unpin>(input: &mut R) -> std::io::Result<Frame> {
    read_frame_within(input, MAX_FRAME).await
}

/// [`read_frame`] with another size limit.
async fn read_frame_within<R: AsyncBufRead + Unpin>(
    input: &mut R,
    max: usize,
) -> std::io::Result<Frame> {
    let Some((length, problem)) = read_headers(input).await? else {
        return Ok(Frame::End);
    };
    let length = match length {
        Some(Ok(n)) => n,
        Some(Err(why)) => return Ok(Frame::Malformed(why)),
        None => {
            return Ok(Frame::Malformed(problem.unwrap_or_else(|| {
                "a frame without a `Content-Length` header".into()
            })));
        }
    };
    if length > max {
        // Read past it, so that the next frame starts where it should.
        let skipped = tokio::io::copy(
            &mut (&mut *input).take(length as u64),
            &mut tokio::io::sink(),
        )
        .await?;
        if (skipped as usize) < length {
            return Ok(Frame::End);
        }
        return Ok(Frame::Malformed(format!(
            "a frame of {length} bytes is larger than the {max} accepted"
        )));
    }
    let mut body = vec![0; length];
    if input.read_exact(&mut body).await.is_err() {
        return Ok(Frame::End);
    }
    if let Some(why) = problem {
        return Ok(Frame::Malformed(why));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Ok(Frame::Malformed(format!("the body is not JSON: {e}")));
    }
    match shape(&body) {
        Ok(()) => Ok(Frame::Message(body)),
        Err(why) => Ok(Frame::Invalid(why)),
    }
}

/// A frame's header lines up to the empty one: its `Content-Length` (or why
/// it is not one) and the first problem with the headers; `None` when the
/// input ends first.
async fn read_headers<R: AsyncBufRead + Unpin>(
    input: &mut R,
) -> std::io::Result<Option<(Option<Result<usize, String>>, Option<String>)>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut problem: Option<String> = None;
    let mut seen_header = false;
    loop {
        let mut line = Vec::new();
        let n = (&mut *input)
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if line.len() > MAX_HEADER_LINE && !line.ends_with(b"\n") {
            // Skip the rest of the over-long line.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest).await?;
            problem.get_or_insert_with(|| "a header line is too long".into());
            seen_header = true;
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if seen_header {
                break;
            }
            // Blank lines between frames are tolerated.
            continue;
        }
        seen_header = true;
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                let value = value.trim();
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("`Content-Length: {value}` is not a length")),
                );
            }
            Some(_) => {}
            None => {
                problem.get_or_insert_with(|| format!("`{text}` is not a header"));
            }
        }
    }
    Ok(Some((length, problem)))
}

/// Whether a JSON body is a JSON-RPC 2.0 message tower-lsp-server can take: an
/// object with `"jsonrpc": "2.0"` that is a request or notification (a string
/// `method`; an `id` that is an integer, a string or null; `params` structured)
/// or a response (an `id`, and `result` or `error`). tower-lsp-server stops at
/// anything else (`[1,2,3]` ended the session).
fn shape(body: &[u8]) -> Result<(), String> {
    use serde_json::value::RawValue;
    // Members by name, unparsed (a member whose value is `null` is present).
    let members: std::collections::HashMap<std::borrow::Cow<'_, str>, &RawValue> =
        serde_json::from_slice(body).map_err(|_| "a JSON-RPC message is an object".to_string())?;
    let raw = |name: &str| members.get(name).map(|v| v.get().trim());
    if raw("jsonrpc") != Some("\"2.0\"") {
        return Err("`jsonrpc` must be \"2.0\"".into());
    }
    let id_ok =
        raw("id").is_none_or(|id| id == "null" || id.starts_with('"') || id.parse::<i64>().is_ok());
    if !id_ok {
        return Err("an `id` is an integer, a string or null".into());
    }
    match raw("method") {
        Some(method) if !method.starts_with('"') => Err("`method` must be a string".into()),
        Some(_) => match raw("params").and_then(|p| p.bytes().next()) {
            None | Some(b'{' | b'[') => Ok(()),
            Some(_) if raw("params") == Some("null") => Ok(()),
            Some(_) => Err("`params` must be an object or an array".into()),
        },
        None if raw("id").is_some() && (raw("result").is_some() || raw("error").is_some()) => {
            Ok(())
        }
        None => {
            Err("neither a request (`method`) nor a response (`id` and `result` or `error`)".into())
        }
    }
}

/// A body as one frame.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// JSON-RPC's answer to a message it cannot take: `-32700` parse error or
/// `-32600` invalid request, with `id: null` (the id could not be read).
fn error_frame(code: i32, why: &str) -> Vec<u8> {
    let what = if code == -32700 {
        "Parse error"
    } else {
        "Invalid request"
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": format!("{what}: {why}")},
    });
    frame(body.to_string().as_bytes())
}

/// Copies the client's frames to the server (`to_server`), answering the
/// malformed ones through `errors`. Ends, closing `to_server`, when the
/// client's input ends.
pub async fn pump_input<R, W>(
    mut from_client: R,
    mut to_server: W,
    errors: mpsc::UnboundedSender<Vec<u8>>,
) where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        match read_frame(&mut from_client).await {
            Ok(Frame::Message(body)) => {
                if to_server.write_all(&frame(&body)).await.is_err() {
                    return;
                }
            }
            Ok(Frame::Malformed(why)) => {
                // stderr is the server's log in every LSP client.
                eprintln!("nudge-lsp: a malformed message was skipped: {why}");
                let _ = errors.send(error_frame(-32700, &why));
            }
            Ok(Frame::Invalid(why)) => {
                eprintln!("nudge-lsp: a message that is not JSON-RPC was skipped: {why}");
                let _ = errors.send(error_frame(-32600, &why));
            }
            Ok(Frame::End) | Err(_) => return,
        }
    }
}

/// Writes the server's frames (`from_server`) and the parse errors to the
/// client, each whole. Ends when the server's output ends.
pub async fn pump_output<R, W>(
    from_server: R,
    mut to_client: W,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
) where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The read of the server's next frame is kept across the loop, never
    // dropped half-way when a parse error is written first (a dropped read
    // would lose the bytes it had taken).
    async fn next<R: AsyncBufRead + Unpin>(mut r: R) -> (R, std::io::Result<Frame>) {
        let got = read_frame(&mut r).await;
        (r, got)
    }
    let mut reading = Box::pin(next(from_server));
    let mut errors_open = true;
    loop {
        let bytes = tokio::select! {
            (r, got) = &mut reading => {
                reading = Box::pin(next(r));
                match got {
                    // The server's own frames pass as they are.
                    Ok(Frame::Message(body)) => frame(&body),
                    Ok(Frame::Invalid(_) | Frame::Malformed(_)) => continue,
                    Ok(Frame::End) | Err(_) => break,
                }
            },
            error = errors.recv(), if errors_open => match error {
                Some(e) => e,
                None => {
                    errors_open = false;
                    continue;
                }
            },
        };
        if to_client.write_all(&bytes).await.is_err() || to_client.flush().await.is_err() {
            return;
        }
    }
    // Parse errors already queued still reach the client.
    while let Ok(e) = errors.try_recv() {
        let _ = to_client.write_all(&e).await;
    }
    let _ = to_client.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = tokio::io::BufReader::new(input);
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r).await.unwrap_or(Frame::End);
            let end = f == Frame::End;
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn malformed_frames_are_named_and_the_next_one_is_read() {
        let good = br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let mut input = Vec::new();
        input.extend_from_slice(b"Content-Length: 5\r\n\r\n{oops");
        input.extend_from_slice(b"Content-Length: twelve\r\n\r\n");
        input.extend_from_slice(b"garbage line\r\nContent-Length: 2\r\n\r\n{}");
        input.extend_from_slice(b"Content-Type: x\r\n\r\n");
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&frame(good));
        input.extend_from_slice(b"content-length: 2\r\n\r\n[]");
        input.extend_from_slice(b"Content-Length: 10\r\n\r\n{\"a\"");
        let got = frames(&input).await;
        let kinds: Vec<String> = got
            .iter()
            .map(|f| match f {
                Frame::Message(b) => format!("message {}", String::from_utf8_lossy(b)),
                Frame::Malformed(why) => format!("malformed: {why}"),
                Frame::Invalid(why) => format!("invalid: {why}"),
                Frame::End => "end".into(),
            })
            .collect();
        assert!(
            kinds[0].starts_with("malformed: the body is not JSON"),
            "{kinds:?}"
        );
        assert_eq!(
            kinds[1],
            "malformed: `Content-Length: twelve` is not a length"
        );
        assert_eq!(kinds[2], "malformed: `garbage line` is not a header");
        assert_eq!(
            kinds[3],
            "malformed: a frame without a `Content-Length` header"
        );
        assert_eq!(
            kinds[4],
            format!("message {}", String::from_utf8_lossy(good))
        );
        // Header names are case-insensitive; JSON that is not JSON-RPC is its
        // own kind.
        assert_eq!(kinds[5], "invalid: a JSON-RPC message is an object");
        // A body cut by the end of the input is the end.
        assert_eq!(kinds[6], "end");
        assert_eq!(kinds.len(), 7);
    }

    #[test]
    fn json_rpc_shapes() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"exit"}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":null}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"x","params":[1]}"#,
            // A response whose result is null (the answer to `shutdown`).
            r#"{"jsonrpc":"2.0","result":null,"id":7}"#,
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"},"id":null}"#,
        ] {
            assert_eq!(shape(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in [
            "[1,2,3]",
            "null",
            r#"{"id":"x"}"#,
            r#"{"jsonrpc":"2.0","method":5}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":3}"#,
            r#"{"jsonrpc":"2.0","id":3}"#,
        ] {
            assert!(shape(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_oversized_frame_is_skipped_whole() {
        let mut input = b"Content-Length: 1001\r\n\r\n".to_vec();
        input.extend(std::iter::repeat_n(b' ', 1001));
        input.extend_from_slice(&frame(b"{}"));
        let mut r = tokio::io::BufReader::new(&input[..]);
        let first = read_frame_within(&mut r, 1000).await.unwrap();
        assert!(
            matches!(&first, Frame::Malformed(why) if why.contains("larger than the 1000")),
            "{first:?}"
        );
        let second = read_frame_within(&mut r, 1000).await.unwrap();
        assert!(matches!(second, Frame::Invalid(_)), "{second:?}");
    }
}
