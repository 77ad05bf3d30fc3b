//! `nudge serve --http` without Kafka: the embedded service. Every answered
//! event is durable, and the decisions file is what `nudge run` decides over
//! the journal in the state directory — across clean restarts and SIGKILLs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on a fixture that misbehaves"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, http, root, scratch, terminate};

mod support;

struct Service {
    child: Child,
    web: String,
    log: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Service {
    start_with(&root().join("examples/retail"), dir, extra)
}

fn start_with(policy: &Path, dir: &Path, extra: &[&str]) -> Service {
    let web = format!("127.0.0.1:{}", free_port());
    let log = dir.join(format!("serve-{}.log", free_port()));
    let child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--policy"])
        .arg(policy)
        .args(["--http", &web, "--state"])
        .arg(dir.join("state"))
        .arg("--out")
        .arg(dir.join("decisions.ndjson"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("nudge serve starts");
    let service = Service { child, web, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&service.web).is_err() {
        assert!(
            Instant::now() < deadline,
            "not listening within 30 s:\n{}",
            std::fs::read_to_string(&service.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    service
}

impl Service {
    fn terminate(mut self) -> Option<i32> {
        terminate(&mut self.child)
    }
}

/// The retail stream's valid calls, in batches of `n` as a Segment library
/// would send them.
fn batches(n: usize) -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("examples/retail/events.ndjson")).expect("events");
    let calls: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("userId").is_some() || v.get("anonymousId").is_some())
        .collect();
    calls
        .chunks(n)
        .map(|c| serde_json::json!({ "batch": c }).to_string())
        .collect()
}

/// `nudge run` over the journal: what the decisions file must hold.
fn replayed(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["run", "--policy"])
        .arg(root().join("examples/retail"))
        .arg("--events")
        .arg(dir.join("state/events.ndjson"))
        .output()
        .expect("nudge run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn decisions(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("decisions.ndjson")).expect("decisions")
}

#[test]
fn answered_events_are_journaled_and_decide_as_a_run_over_the_journal_across_restarts() {
    let dir = scratch("restart");
    let all = batches(40);
    let (first, rest) = all.split_at(all.len() / 2);
    let one = start(&dir, &[]);
    for body in first {
        let (status, answer) = http(&one.web, "POST", "/v1/batch", None, body.as_bytes());
        assert_eq!((status, answer.as_str()), (200, r#"{"success":true}"#));
    }
    assert_eq!(one.terminate(), Some(0));
    let two = start(&dir, &[]);
    for body in rest {
        assert_eq!(
            http(&two.web, "POST", "/v1/batch", None, body.as_bytes()).0,
            200
        );
    }
    let bad = http(
        &two.web,
        "POST",
        "/v1/track",
        None,
        br#"{"event":"Order Completed"}"#,
    );
    assert_eq!(bad.0, 400, "{}", bad.1);
    assert_eq!(two.terminate(), Some(0));
    let journal = std::fs::read_to_string(dir.join("state/events.ndjson")).expect("journal");
    assert!(
        journal.contains(r#""type":"tick""#),
        "the live clock's ticks are journaled"
    );
    let expected = replayed(&dir);
    assert!(
        expected.lines().count() > 500,
        "the stream decides: {expected}"
    );
    assert_eq!(
        decisions(&dir),
        expected,
        "byte for byte, no decision lost or repeated"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sigkill_loses_no_answered_event_and_repeats_no_decision() {
    let dir = scratch("kill");
    let all = batches(25);
    let mut sent = 0;
    for round in 0..3 {
        let mut service = start(&dir, &[]);
        // A client that posts until the service dies, and resends what was
        // not answered (as Segment's libraries retry).
        let stop_after = sent + (all.len() - sent) / (3 - round) + 1;
        while sent < all.len().min(stop_after) {
            match std::panic::catch_unwind(|| {
                http(
                    &service.web,
                    "POST",
                    "/v1/batch",
                    None,
                    all[sent].as_bytes(),
                )
            }) {
                Ok((200, _)) => sent += 1,
                other => panic!("refused: {other:?}"),
            }
        }
        if round < 2 {
            // Killed with a request possibly in flight.
            let web = service.web.clone();
            let next = all.get(sent).cloned();
            let client = std::thread::spawn(move || {
                next.map(|b| {
                    std::panic::catch_unwind(|| http(&web, "POST", "/v1/batch", None, b.as_bytes()))
                })
            });
            std::thread::sleep(Duration::from_millis(5));
            service.child.kill().expect("SIGKILL");
            let _ = service.child.wait();
            if let Ok(Some(Ok((200, _)))) = client.join() {
                sent += 1;
            }
        } else {
            assert_eq!(service.terminate(), Some(0));
        }
    }
    assert_eq!(sent, all.len());
    let journal = std::fs::read_to_string(dir.join("state/events.ndjson")).expect("journal");
    for body in &all {
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        for call in v["batch"].as_array().expect("batch") {
            let id = call["messageId"].as_str().expect("retail calls have ids");
            assert!(
                journal.contains(&format!(r#""messageId":"{id}""#)),
                "{id} was answered but is not in the journal"
            );
        }
    }
    assert_eq!(decisions(&dir), replayed(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_embedded_service_needs_a_state_directory_and_a_decisions_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--policy"])
        .arg(root().join("examples/retail"))
        .args(["--http", "127.0.0.1:0"])
        .output()
        .expect("nudge serve");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--state DIR"), "{stderr}");
}

/// The retail set's second version: the welcome series waits a day longer,
/// the review journey is gone.
fn change_set(set: &Path) {
    let welcome = set.join("journeys/welcome.nudge");
    let text = std::fs::read_to_string(&welcome).unwrap();
    std::fs::write(&welcome, text.replacen("wait 2d", "wait 3d", 1)).unwrap();
    std::fs::remove_file(set.join("journeys/reviews.nudge")).unwrap();
}

fn wait_for_log(service: &Service, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&service.log).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{text}` in 30 s:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nudge_run(args: &[&std::ffi::OsStr]) {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("run")
        .args(args)
        .output()
        .expect("nudge run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (1.1) With `--upgrade`, a change of the `--policy` files is taken at the
/// next commit, where the journal stands (LANGUAGE.md §7.7): the decisions
/// are those of `nudge run` over the journal under the first version up to
/// that line, then `--upgrade` to the second.
#[test]
fn a_changed_policy_set_is_taken_with_upgrade_as_a_run_would_upgrade() {
    let dir = scratch("upgrade");
    let set = dir.join("policy");
    support::copy_set(&root().join("examples/retail"), &set);
    let before = dir.join("v1");
    support::copy_set(&root().join("examples/retail"), &before);
    let all = batches(40);
    let (first, rest) = all.split_at(all.len() / 2);
    let service = start_with(&set, &dir, &["--upgrade"]);
    for body in first {
        assert_eq!(
            http(&service.web, "POST", "/v1/batch", None, body.as_bytes()).0,
            200
        );
    }
    change_set(&set);
    let log = wait_for_log(&service, "took the new policy set after journal line ");
    assert!(log.contains("journey changed: welcome_series"), "{log}");
    let line: usize = log
        .split("took the new policy set after journal line ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the line number");
    for body in rest {
        assert_eq!(
            http(&service.web, "POST", "/v1/batch", None, body.as_bytes()).0,
            200
        );
    }
    assert_eq!(service.terminate(), Some(0));

    // The same by `nudge run`: the first version up to that journal line,
    // then the upgrade.
    let journal = std::fs::read_to_string(dir.join("state/events.ndjson")).unwrap();
    let events = dir.join("journal.ndjson");
    let head: String = journal
        .lines()
        .take(line)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&events, head).unwrap();
    let (state, out) = (dir.join("run-state"), dir.join("run.ndjson"));
    let common = [
        "--events".as_ref(),
        events.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    nudge_run(&[&["--policy".as_ref(), before.as_os_str()][..], &common].concat());
    std::fs::write(&events, &journal).unwrap();
    nudge_run(
        &[
            &["--policy".as_ref(), set.as_os_str(), "--upgrade".as_ref()][..],
            &common,
        ]
        .concat(),
    );
    let expected = std::fs::read_to_string(&out).unwrap();
    assert!(expected.lines().count() > 500, "the stream decides");
    assert_eq!(decisions(&dir), expected, "byte for byte");
    let _ = std::fs::remove_dir_all(&dir);
}

/// (1.1) Without `--upgrade`, SIGHUP and a change of the files only log what
/// a new version would change; the service goes on with the running one.
#[test]
fn without_upgrade_a_new_version_is_logged_and_the_running_one_kept() {
    let dir = scratch("no-upgrade");
    let set = dir.join("policy");
    support::copy_set(&root().join("examples/retail"), &set);
    let all = batches(40);
    let (first, rest) = all.split_at(all.len() / 2);
    let service = start_with(&set, &dir, &[]);
    for body in first {
        assert_eq!(
            http(&service.web, "POST", "/v1/batch", None, body.as_bytes()).0,
            200
        );
    }
    let pid = service.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for_log(&service, "the policy set is the one running");
    change_set(&set);
    let log = wait_for_log(&service, "keeps the running version");
    assert!(log.contains("journey removed: review_request"), "{log}");
    for body in rest {
        assert_eq!(
            http(&service.web, "POST", "/v1/batch", None, body.as_bytes()).0,
            200
        );
    }
    assert_eq!(service.terminate(), Some(0));
    assert_eq!(
        decisions(&dir),
        replayed(&dir),
        "the first version throughout"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
