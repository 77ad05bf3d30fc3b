//! Durable state (`nudge run --state`): crash-exact restarts, split inputs, and
//! clear errors for stores that are not ours.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

#[path = "../benches/support/gen.rs"]
mod gen_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nudge-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn nudge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nudge"));
    c.arg("run")
        .arg("--policy")
        .arg(root().join("examples/retail"));
    c
}

fn run_with_policy(policy: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("run")
        .arg("--policy")
        .arg(policy)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    nudge().args(args).stderr(Stdio::piped()).output().unwrap()
}

fn write_events(dir: &Path, events: u64) -> PathBuf {
    let mut text = String::new();
    gen_support::generate(events / 50, events, 11, &mut text);
    let path = dir.join("events.ndjson");
    std::fs::write(&path, text).unwrap();
    path
}

/// SIGKILL at a dozen moments; every restart of the same command resumes, and the
/// output ends byte-identical to an uninterrupted run's.
#[test]
fn crash_restarts_are_exact() {
    crash_restarts("crash", "997", &[]);
}

/// (1.1) The same with a memory bound: the weekly newsletter's occurrences
/// then pause mid-instant to commit and evict, and a kill after such a commit
/// resumes the occurrence after the last profile it ran for.
#[test]
fn crash_restarts_are_exact_when_occurrences_pause() {
    crash_restarts("crash-paused", "101", &["--max-profiles-in-memory", "50"]);
}

fn crash_restarts(name: &str, commit_every: &str, extra: &[&str]) {
    let dir = scratch(name);
    let events = write_events(&dir, 100_000);
    let events = events.to_str().unwrap();
    let reference = dir.join("reference.ndjson");
    let out = run(&[
        "--events",
        events,
        "--out",
        reference.to_str().unwrap(),
        "--drain",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let state = dir.join("state");
    let crashed = dir.join("crashed.ndjson");
    let dead = dir.join("dead.ndjson");
    let args = [
        "--events",
        events,
        "--out",
        crashed.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--commit-every",
        commit_every,
        "--drain",
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect::<Vec<_>>();
    let mut rng = gen_support::Rng::new(2026);
    let mut killed_mid_run = 0;
    for _ in 0..12 {
        let mut child = nudge()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng.below(260)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        child.wait().unwrap();
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} runs were killed before finishing"
    );
    let expected = std::fs::read(&reference).unwrap();
    let got = std::fs::read(&crashed).unwrap();
    assert!(
        expected.len() > 100_000,
        "the reference run decided too little"
    );
    // The 1.1 timers are in the stream: quiet periods, both kinds of
    // schedule, waits for an event, goal windows.
    let text = String::from_utf8_lossy(&expected);
    assert!(text.contains("\"kind\":\"converted\""), "nothing converted");
    for journey in [
        "quiet_customer",
        "weekly_newsletter",
        "black_friday",
        "review_request",
    ] {
        assert!(
            text.contains(&format!("\"journey\":\"{journey}\",\"kind\":\"entered\"")),
            "{journey} never started"
        );
    }
    assert!(
        expected == got,
        "outputs differ: {} vs {} bytes",
        expected.len(),
        got.len()
    );
    let dead = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(
        dead.lines().count(),
        dead.lines()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "a dead letter was repeated"
    );
}

/// Outputs of runs over consecutive pieces of a stream, concatenated, equal one
/// run over the whole stream.
#[test]
fn split_inputs_continue_the_stream() {
    let dir = scratch("split");
    let events = write_events(&dir, 20_000);
    let text = std::fs::read_to_string(&events).unwrap();
    let whole = run(&["--events", events.to_str().unwrap()]);
    assert!(whole.status.success());
    let lines: Vec<&str> = text.lines().collect();
    let state = dir.join("state");
    let mut concatenated = Vec::new();
    for (i, piece) in lines.chunks(6_500).enumerate() {
        let path = dir.join(format!("piece{i}.ndjson"));
        std::fs::write(&path, piece.join("\n") + "\n").unwrap();
        let out = run(&[
            "--events",
            path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        concatenated.extend_from_slice(&out.stdout);
    }
    assert!(
        whole.stdout == concatenated,
        "split runs differ from one run"
    );
    // Stdin is new input too.
    let state2 = dir.join("state2");
    let mut concatenated = Vec::new();
    for piece in lines.chunks(9_000) {
        let mut child = nudge()
            .args(["--state", state2.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Feed stdin from a thread: the child writes decisions while it reads.
        let mut stdin = child.stdin.take().unwrap();
        let input = piece.join("\n") + "\n";
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(input.as_bytes()).unwrap();
        });
        concatenated.extend_from_slice(&child.wait_with_output().unwrap().stdout);
        feeder.join().unwrap();
    }
    assert!(
        whole.stdout == concatenated,
        "split stdin runs differ from one run"
    );
}

#[test]
fn foreign_or_damaged_stores_are_refused() {
    let dir = scratch("foreign");
    let events = root().join("examples/retail/events.ndjson");
    let events = events.to_str().unwrap();
    // Not a redb file.
    let state = dir.join("garbage");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("state.redb"),
        b"these are not the bytes you are looking for",
    )
    .unwrap();
    let out = run(&["--events", events, "--state", state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a Nudge state store"), "{err}");
    // A file where a directory is expected.
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let out = run(&["--events", events, "--state", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
    // A store written for another policy set.
    let state = dir.join("other-policy");
    let out = run(&["--events", events, "--state", state.to_str().unwrap()]);
    assert!(out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["run", "--policy"])
        .arg(root().join("tests/run/basic_wait_and_send"))
        .args(["--events", events, "--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different policy set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stores_of_another_format_are_refused() {
    let dir = scratch("format");
    let state = dir.join("state");
    let events = root().join("examples/retail/events.ndjson");
    let out = run(&[
        "--events",
        events.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    // Rewrite the checkpoint as an older format would have it.
    let db = redb::Database::open(state.join("state.redb")).unwrap();
    let meta: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("meta");
    {
        use redb::ReadableTable;
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(meta).unwrap();
            let bytes = table.get("checkpoint").unwrap().unwrap().value().to_vec();
            let mut checkpoint: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            checkpoint["format"] = "nudge-state/0".into();
            let bytes = serde_json::to_vec(&checkpoint).unwrap();
            table.insert("checkpoint", bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    drop(db);
    let out = run(&[
        "--events",
        events.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format `nudge-state/0`") && err.contains("nudge-state/4"),
        "{err}"
    );
}

/// With a memory limit, profiles are evicted after commits and read back when
/// needed: the output is the same as without the limit, and fewer profiles are
/// held at once: about the limit plus a commit's worth of lines, even while a
/// weekly newsletter's occurrence runs for every profile in one instant (it
/// pauses to commit and evict).
#[test]
fn evicted_profiles_come_back_from_the_store() {
    let dir = scratch("evict");
    let policy = root().join("examples/retail");
    let mut text = String::new();
    gen_support::generate(2_000, 30_000, 5, &mut text);
    let events = dir.join("events.ndjson");
    std::fs::write(&events, text).unwrap();
    let events = events.to_str().unwrap();
    let run = |args: &[&str]| run_with_policy(&policy, args);
    let whole = run(&["--events", events, "--drain"]);
    assert!(whole.status.success());
    let state = dir.join("state");
    let limited = run(&[
        "--events",
        events,
        "--drain",
        "--state",
        state.to_str().unwrap(),
        "--commit-every",
        "100",
        "--max-profiles-in-memory",
        "100",
        "--stats",
    ]);
    assert!(
        limited.status.success(),
        "{}",
        String::from_utf8_lossy(&limited.stderr)
    );
    assert!(
        whole.stdout == limited.stdout,
        "eviction changed the output"
    );
    let stats = String::from_utf8_lossy(&limited.stderr);
    let peak: usize = stats
        .lines()
        .find_map(|l| l.strip_prefix("peak profiles held"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&whole.stdout)
            .matches("\"journey\":\"weekly_newsletter\",\"kind\":\"entered\"")
            .count()
            > 1_000,
        "the newsletter did not run for most profiles"
    );
    assert!(peak < 500, "held {peak} of 2000 profiles at once");
    // Every profile has a pending `when no … for` timer: the later ones are
    // left to the store and read back in firing order, as profiles are.
    let timers: usize = stats
        .lines()
        .find_map(|l| l.strip_prefix("peak timers held"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let unbounded = String::from_utf8_lossy(&run(&["--events", events, "--stats"]).stderr)
        .lines()
        .find_map(|l| {
            l.strip_prefix("peak timers held")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap();
    assert!(
        unbounded > 1_500,
        "without a store, {unbounded} timers at once"
    );
    assert!(timers < 500, "held {timers} timers at once");
}

/// (1.1) A scheduled journey runs for every profile seen, including those
/// evicted from memory and those only in the store (a second run): its
/// members are kept by id and zone, their profiles loaded when it fires.
#[test]
fn schedules_run_for_evicted_profiles() {
    let dir = scratch("schedule-evict");
    let mut text = String::new();
    gen_support::generate(500, 8_000, 7, &mut text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let whole_events = dir.join("events.ndjson");
    std::fs::write(&whole_events, &text).unwrap();
    let (a, b) = (dir.join("a.ndjson"), dir.join("b.ndjson"));
    std::fs::write(&a, first.concat()).unwrap();
    std::fs::write(&b, second.concat()).unwrap();
    let whole = run(&["--events", whole_events.to_str().unwrap(), "--drain"]);
    assert!(whole.status.success());
    let newsletters = String::from_utf8_lossy(&whole.stdout)
        .matches("\"journey\":\"weekly_newsletter\",\"kind\":\"entered\"")
        .count();
    assert!(newsletters > 100, "the newsletter ran {newsletters} times");
    let state = dir.join("state");
    let out = dir.join("out.ndjson");
    let limited = |events: &Path, drain: bool| {
        let mut args = vec![
            "--events",
            events.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--commit-every",
            "200",
            "--max-profiles-in-memory",
            "50",
        ];
        if drain {
            args.push("--drain");
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    limited(&a, false);
    limited(&b, true);
    assert!(
        std::fs::read(&out).unwrap() == whole.stdout,
        "schedules over evicted and stored profiles changed the output"
    );
}

/// A run killed before its first periodic commit leaves nothing behind: the
/// restart cuts the output back to where that run started.
#[test]
fn a_crash_before_the_first_commit_is_undone() {
    let dir = scratch("early");
    let events = write_events(&dir, 20_000);
    let events = events.to_str().unwrap();
    let reference = run(&["--events", events, "--drain"]);
    let state = dir.join("state");
    let out = dir.join("out.ndjson");
    let args = [
        "--events",
        events,
        "--out",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--commit-every",
        "1000000",
        "--drain",
    ];
    // Let the first run write part of its output, then kill it before any commit
    // but the initial one.
    let mut child = nudge()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 100_000
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait().unwrap();
    let finished = run(&args);
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(
        reference.stdout == std::fs::read(&out).unwrap(),
        "the output of the killed run was kept"
    );
}

/// Message ids seen by earlier runs are still duplicates in later ones, for one
/// deduplication window of event time (a week), after which they are new again;
/// old batches of ids are dropped from the store without losing recent ones.
#[test]
fn message_ids_are_remembered_across_runs_for_a_week() {
    let dir = scratch("dedup");
    let state = dir.join("state");
    let order = |id: &str, at: &str| {
        format!(
            r#"{{"type":"track","event":"Order Completed","userId":"cust-1","properties":{{"order_id":"o","total":10,"category":"shoes"}},"messageId":"{id}","timestamp":"{at}"}}"#
        )
    };
    let identify = r#"{"type":"identify","userId":"cust-1","messageId":"who","timestamp":"2026-11-01T00:00:00Z","traits":{"email":"a@example.com"}}"#;
    let run_lines = |name: &str, lines: &[String]| -> String {
        let path = dir.join(format!("{name}.ndjson"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = run(&[
            "--events",
            path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run_lines(
        "first",
        &[identify.to_string(), order("a", "2026-11-02T10:00:00Z")],
    );
    assert!(first.contains("\"kind\":\"send\""), "{first}");
    // The same id again, a day later and in another run: dropped. A new id the
    // same day goes through, and is committed in a later batch.
    let second = run_lines(
        "second",
        &[
            order("a", "2026-11-03T10:00:00Z"),
            order("b", "2026-11-08T10:00:00Z"),
        ],
    );
    assert!(!second.contains("2026-11-03"), "{second}");
    assert!(second.contains("2026-11-08"), "{second}");
    // Past a week since `a`, its batch has expired (from memory and the store):
    // `a` is new again; `b`, seen four days earlier, is still a duplicate.
    let third = run_lines(
        "third",
        &[
            order("a", "2026-11-12T10:00:00Z"),
            order("b", "2026-11-12T11:00:00Z"),
        ],
    );
    assert!(third.contains("2026-11-12T10:00:00Z"), "{third}");
    assert!(!third.contains("2026-11-12T11:00:00Z"), "{third}");
}

/// A store written before the timers and the schedules' members had their
/// firing-order indexes (no `timers_by_time`, no `zone_members`) gets them at
/// open, from the rows themselves: a run continued on it with a memory bound,
/// which reads both back from the store, decides as one run over the whole
/// stream does.
#[test]
fn a_store_without_the_paging_indexes_is_indexed_at_open() {
    let dir = scratch("reindex");
    let policy = root().join("examples/retail");
    let mut text = String::new();
    gen_support::generate(1_000, 16_000, 3, &mut text);
    let lines: Vec<&str> = text.lines().collect();
    let (first, rest) = lines.split_at(lines.len() / 2);
    let whole_path = dir.join("whole.ndjson");
    std::fs::write(&whole_path, text.clone()).unwrap();
    let run = |args: &[&str]| run_with_policy(&policy, args);
    let whole = run(&["--events", whole_path.to_str().unwrap(), "--drain"]);
    assert!(whole.status.success());
    let state = dir.join("state");
    let mut output = Vec::new();
    for (i, piece) in [first, rest].into_iter().enumerate() {
        let path = dir.join(format!("piece{i}.ndjson"));
        std::fs::write(&path, piece.join("\n") + "\n").unwrap();
        let mut args = vec![
            "--events",
            path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--commit-every",
            "100",
            "--max-profiles-in-memory",
            "100",
        ];
        if i == 1 {
            args.push("--drain");
        }
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        output.extend_from_slice(&out.stdout);
        if i == 0 {
            // As an older nudge left it.
            let db = redb::Database::open(state.join("state.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            let times: redb::TableDefinition<'_, (i64, &str, u64), ()> =
                redb::TableDefinition::new("timers_by_time");
            let members: redb::TableDefinition<'_, (&str, &str), ()> =
                redb::TableDefinition::new("zone_members");
            assert!(
                txn.delete_table(times).unwrap(),
                "the store had the timers' index"
            );
            assert!(
                txn.delete_table(members).unwrap(),
                "the store had the members' index"
            );
            txn.commit().unwrap();
        }
    }
    assert!(
        String::from_utf8_lossy(&whole.stdout)
            .matches("\"journey\":\"weekly_newsletter\",\"kind\":\"entered\"")
            .count()
            > 500,
        "the newsletter did not run for most profiles"
    );
    assert!(
        whole.stdout == output,
        "the reindexed store decided otherwise"
    );
}

/// With `--max-profiles-in-memory` the message ids seen before the last
/// commit are left to the store and looked up there: a retried delivery many
/// commits later is still dropped within the 7-day window, and taken again
/// after it, exactly as one run without a store decides.
#[test]
fn paged_message_ids_deduplicate_as_memory_does() {
    let dir = scratch("paged-dedup");
    let mut lines = Vec::new();
    let order = |user: usize, id: &str, day: u32, minute: u32| {
        format!(
            r#"{{"type":"track","event":"Order Completed","userId":"cust-{user}","properties":{{"order_id":"o{user}","total":10,"category":"shoes"}},"messageId":"{id}","timestamp":"2026-11-{day:02}T{:02}:{:02}:00Z"}}"#,
            minute / 60,
            minute % 60
        )
    };
    for user in 0..60 {
        lines.push(format!(
            r#"{{"type":"identify","userId":"cust-{user}","messageId":"who-{user}","timestamp":"2026-11-01T00:00:00Z","traits":{{"email":"c{user}@example.com"}}}}"#
        ));
    }
    // Day 2: an order each; days 3 and 6: the same ids again (retried, within
    // the window); day 12: again, after it; each day with fresh ids between.
    for (day, fresh) in [(2, true), (3, false), (6, false), (12, false)] {
        for user in 0..60 {
            lines.push(order(user, &format!("order-{user}"), day, user as u32));
            if !fresh {
                lines.push(order(
                    user,
                    &format!("d{day}-{user}"),
                    day,
                    user as u32 + 100,
                ));
            }
        }
    }
    let events = dir.join("events.ndjson");
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let events = events.to_str().unwrap();
    let whole = run(&["--events", events, "--stats"]);
    assert!(whole.status.success());
    let state = dir.join("state");
    let paged = run(&[
        "--events",
        events,
        "--stats",
        "--state",
        state.to_str().unwrap(),
        "--commit-every",
        "7",
        "--max-profiles-in-memory",
        "5",
    ]);
    assert!(
        paged.status.success(),
        "{}",
        String::from_utf8_lossy(&paged.stderr)
    );
    let duplicates = |out: &Output| -> u64 {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("duplicates"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        duplicates(&whole),
        120,
        "days 3 and 6 are retries, day 12 is not"
    );
    assert_eq!(duplicates(&paged), 120);
    assert!(whole.stdout == paged.stdout, "paged ids decided otherwise");
    // A store written before the ids had their by-digest table (it is built
    // at open from the batches): the retries in the second run are still
    // known for what they are.
    let (first, rest) = lines.split_at(120);
    let state = dir.join("state-old");
    let part = |name: &str, lines: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = run(&[
            "--events",
            path.to_str().unwrap(),
            "--stats",
            "--state",
            state.to_str().unwrap(),
            "--commit-every",
            "7",
            "--max-profiles-in-memory",
            "5",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let one = part("first.ndjson", first);
    let db = redb::Database::open(state.join("state.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    let ids: redb::TableDefinition<'_, u128, i64> = redb::TableDefinition::new("seen_ids");
    assert!(
        txn.delete_table(ids).unwrap(),
        "the store had the ids' table"
    );
    txn.commit().unwrap();
    drop(db);
    let two = part("rest.ndjson", rest);
    assert_eq!(duplicates(&two), 120);
    assert!(
        [one.stdout, two.stdout].concat() == whole.stdout,
        "the reindexed ids decided otherwise"
    );
}
