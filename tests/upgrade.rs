//! (1.1) A store given another policy set (LANGUAGE.md §7.7, CLI.md `run
//! --upgrade`): the refusal and `nudge diff --state` name what would change,
//! from the policy set the store records, and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nudge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .output()
        .expect("nudge runs")
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The retail set (`v1`), a changed copy (`v2`: the welcome series waits a day
/// longer, the review journey is gone, profiles gain `vip`), a copy that
/// differs only in comments and layout (`v1b`), and the first 60 lines of
/// its events.
struct Sets {
    v1: PathBuf,
    v1b: PathBuf,
    v2: PathBuf,
    events: PathBuf,
    dir: PathBuf,
}

fn sets(name: &str) -> Sets {
    let dir = support::scratch(name);
    let retail = support::root().join("examples/retail");
    let (v1, v1b, v2) = (dir.join("v1"), dir.join("v1b"), dir.join("v2"));
    for v in [&v1, &v1b, &v2] {
        support::copy_set(&retail, v);
    }
    edit(&v2.join("journeys/welcome.nudge"), "wait 2d", "wait 3d");
    edit(
        &v2.join("schema.nudge"),
        "  tier: string = \"standard\"",
        "  tier: string = \"standard\"\n  vip: bool = false",
    );
    std::fs::remove_file(v2.join("journeys/reviews.nudge")).unwrap();
    edit(
        &v1b.join("journeys/welcome.nudge"),
        "  wait 2d\n",
        "  // two days, then the guide\n      wait   2d\n",
    );
    let lines: Vec<String> = std::fs::read_to_string(retail.join("events.ndjson"))
        .unwrap()
        .lines()
        .take(60)
        .map(|l| format!("{l}\n"))
        .collect();
    let events = dir.join("events.ndjson");
    std::fs::write(&events, lines.concat()).unwrap();
    Sets {
        v1,
        v1b,
        v2,
        events,
        dir,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `nudge run` of `policy` over the events into the store `state`, writing
/// decisions to `out.ndjson` and dead letters to `dl.ndjson` beside them.
fn run_state(sets: &Sets, policy: &Path, state: &Path) -> Output {
    nudge(&[
        "run",
        "--policy",
        s(policy),
        "--events",
        s(&sets.events),
        "--state",
        s(state),
        "--out",
        s(&sets.dir.join("out.ndjson")),
        "--dead-letter",
        s(&sets.dir.join("dl.ndjson")),
    ])
}

/// How many welcome-series instances the first 60 lines leave active: entered
/// and not ended, counted from the decisions.
fn active_welcomes(out: &Path) -> usize {
    let mut open = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(out).unwrap().lines() {
        let d: serde_json::Value = serde_json::from_str(line).unwrap();
        if d["journey"] != "welcome_series" {
            continue;
        }
        let profile = d["profile"].as_str().unwrap().to_string();
        match d["kind"].as_str().unwrap() {
            "entered" => {
                open.insert(profile);
            }
            "completed" | "exited" | "holdout" => {
                open.remove(&profile);
            }
            _ => {}
        }
    }
    open.len()
}

#[test]
fn a_store_refuses_another_policy_set_with_the_summary_and_keeps_its_state() {
    let sets = sets("upgrade-refusal");
    let state = sets.dir.join("state");
    let out = sets.dir.join("out.ndjson");
    let first = run_state(&sets, &sets.v1, &state);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let active = active_welcomes(&out);
    assert!(active > 0, "the stream leaves welcome instances waiting");
    let before = std::fs::read(&out).unwrap();

    let refused = run_state(&sets, &sets.v2, &state);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let changed = format!(
        "journey changed: welcome_series ({active} active instances would stay on the old version"
    );
    assert!(stderr.contains(&changed), "{stderr}");
    assert!(
        stderr.contains("journey removed: review_request"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attributes added: vip (each starts at its default)"),
        "{stderr}"
    );
    assert!(stderr.contains("journeys unchanged: 9"), "{stderr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the refusal wrote nothing"
    );

    // The same, from `diff --state`, in both formats; the store is unchanged.
    let diff = nudge(&["diff", "--state", s(&state), "--against", s(&sets.v2)]);
    assert_eq!(diff.status.code(), Some(1));
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains(&changed), "{text}");
    let json = nudge(&[
        "diff",
        "--state",
        s(&state),
        "--against",
        s(&sets.v2),
        "--format",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(
        v["summary"]["journeys_changed"][0]["journey"],
        "welcome_series"
    );
    assert_eq!(v["summary"]["journeys_changed"][0]["active"], active as u64);
    assert_eq!(v["summary"]["attributes_added"][0], "vip");

    // Comments and layout are no change: the store takes that copy as its own.
    let same = nudge(&["diff", "--state", s(&state), "--against", s(&sets.v1b)]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let resumed = run_state(&sets, &sets.v1b, &state);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "the same input was already decided"
    );
}

/// `--upgrade` is for a store: without `--state` it is a usage error, and a
/// value other than `stop-removed` is refused.
#[test]
fn upgrade_needs_a_store_and_knows_its_one_value() {
    let sets = sets("upgrade-usage");
    let alone = nudge(&[
        "run",
        "--policy",
        s(&sets.v2),
        "--events",
        s(&sets.events),
        "--upgrade",
    ]);
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--state"));
    let state = sets.dir.join("state");
    let wrong = nudge(&[
        "run",
        "--policy",
        s(&sets.v2),
        "--events",
        s(&sets.events),
        "--state",
        s(&state),
        "--upgrade=everything",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("stop-removed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

#[test]
fn diff_state_refuses_what_it_cannot_compare() {
    let sets = sets("upgrade-diff-errors");
    let missing = nudge(&[
        "diff",
        "--state",
        s(&sets.dir.join("none")),
        "--against",
        s(&sets.v2),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no state store"));
    let both = nudge(&[
        "diff",
        "--state",
        s(&sets.dir),
        "--against",
        s(&sets.v2),
        "--events",
        s(&sets.events),
    ]);
    assert_eq!(both.status.code(), Some(2));
    let broken = sets.dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("state.redb"), b"not a database").unwrap();
    let damaged = nudge(&["diff", "--state", s(&broken), "--against", s(&sets.v2)]);
    assert_eq!(damaged.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&damaged.stderr).contains("not a Nudge state store"),
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
}

/// A store whose policy set is not recorded in this version's encoding (one
/// written by another version of nudge) is still refused, without a summary
/// it would have to guess.
#[test]
fn a_store_without_a_readable_record_is_refused_without_a_summary() {
    use redb::{ReadableDatabase as _, TableDefinition};
    let sets = sets("upgrade-unrecorded");
    let state = sets.dir.join("state");
    let run = |policy: &Path| run_state(&sets, policy, &state);
    assert!(run(&sets.v1).status.success());
    const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
    {
        let db = redb::Database::open(state.join("state.redb")).unwrap();
        let read = db.begin_read().unwrap();
        let keys: Vec<String> = {
            let meta = read.open_table(META).unwrap();
            redb::ReadableTable::iter(&meta)
                .unwrap()
                .map(|row| row.unwrap().0.value().to_string())
                .collect()
        };
        drop(read);
        let recorded: Vec<&String> = keys.iter().filter(|k| k.starts_with("program/")).collect();
        assert_eq!(
            recorded.len(),
            1,
            "the first commit records the program: {keys:?}"
        );
        let write = db.begin_write().unwrap();
        {
            let mut meta = write.open_table(META).unwrap();
            meta.remove(recorded[0].as_str()).unwrap();
        }
        write.commit().unwrap();
    }
    let refused = run(&sets.v2);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("written by another version of nudge"),
        "{stderr}"
    );
    assert!(!stderr.contains("journey changed"), "{stderr}");
    let diff = nudge(&["diff", "--state", s(&state), "--against", s(&sets.v2)]);
    assert_eq!(diff.status.code(), Some(2));
    // Nor can it be upgraded: what it holds cannot be carried over by name.
    let out = sets.dir.join("out.ndjson");
    let before = std::fs::read(&out).unwrap();
    let upgrade = nudge(&[
        "run",
        "--policy",
        s(&sets.v2),
        "--events",
        s(&sets.events),
        "--state",
        s(&state),
        "--out",
        s(&out),
        "--upgrade",
    ]);
    assert_eq!(upgrade.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&upgrade.stderr).contains("cannot be upgraded"),
        "{}",
        String::from_utf8_lossy(&upgrade.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), before, "nothing was written");
    // The same set still resumes, and records its program again.
    assert!(run(&sets.v1).status.success());
    let again = nudge(&["diff", "--state", s(&state), "--against", s(&sets.v2)]);
    assert_eq!(again.status.code(), Some(1));
}

#[path = "../benches/support/gen.rs"]
mod gen_support;

/// The generated retail stream (`lines` lines; its first `first` lines in
/// `events.ndjson` for now), and the retail set with `v2`'s changes.
fn stream(name: &str, lines: u64) -> (Sets, String) {
    let sets = sets(name);
    let mut text = String::new();
    gen_support::generate(lines / 50, lines, 11, &mut text);
    (sets, text)
}

/// The first `n` lines of `text`.
fn head(text: &str, n: usize) -> String {
    text.lines().take(n).map(|l| format!("{l}\n")).collect()
}

fn upgrade_args<'a>(
    sets: &'a Sets,
    state: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--policy",
        s(&sets.v2),
        "--events",
        s(&sets.events),
        "--state",
        state,
        "--out",
        out,
        "--commit-every",
        "997",
        "--upgrade=stop-removed",
    ];
    args.extend_from_slice(extra);
    args
}

/// §7.7's determinism: the output is a function of the input and of where
/// each version was applied. A run that upgrades and reads to the end equals
/// one that upgrades, stops part-way and resumes, and one killed (SIGKILL)
/// again and again while it upgrades and after; the stopped instances'
/// `exited` decisions are written exactly once.
#[test]
fn an_upgrade_is_exact_across_resumes_and_kills() {
    let (sets, text) = stream("upgrade-exact", 40_000);
    let first = |state: &Path, out: &Path| {
        std::fs::write(&sets.events, head(&text, 15_000)).unwrap();
        let ran = nudge(&[
            "run",
            "--policy",
            s(&sets.v1),
            "--events",
            s(&sets.events),
            "--state",
            s(state),
            "--out",
            s(out),
            "--commit-every",
            "997",
        ]);
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
    };

    // In one go after the upgrade.
    let (state_a, out_a) = (sets.dir.join("a"), sets.dir.join("a.ndjson"));
    first(&state_a, &out_a);
    std::fs::write(&sets.events, &text).unwrap();
    let one = nudge(&upgrade_args(&sets, s(&state_a), s(&out_a), &["--drain"]));
    let stderr = String::from_utf8_lossy(&one.stderr);
    assert!(one.status.success(), "{stderr}");
    assert!(
        stderr.contains("journey removed: review_request"),
        "{stderr}"
    );
    let expected = std::fs::read_to_string(&out_a).unwrap();
    let stopped = expected.matches("\"event\":\"policy_change\"").count();
    assert!(stopped > 0, "some review requests were stopped");
    assert!(
        expected.contains("\"journey\":\"welcome_series\",\"kind\":\"entered\""),
        "the stream goes on past the upgrade"
    );

    // Upgraded, stopped part-way, resumed without `--upgrade`.
    let (state_b, out_b) = (sets.dir.join("b"), sets.dir.join("b.ndjson"));
    first(&state_b, &out_b);
    std::fs::write(&sets.events, head(&text, 25_000)).unwrap();
    let part = nudge(&upgrade_args(&sets, s(&state_b), s(&out_b), &[]));
    assert!(
        part.status.success(),
        "{}",
        String::from_utf8_lossy(&part.stderr)
    );
    std::fs::write(&sets.events, &text).unwrap();
    let rest = nudge(&[
        "run",
        "--policy",
        s(&sets.v2),
        "--events",
        s(&sets.events),
        "--state",
        s(&state_b),
        "--out",
        s(&out_b),
        "--commit-every",
        "997",
        "--drain",
    ]);
    assert!(
        rest.status.success(),
        "{}",
        String::from_utf8_lossy(&rest.stderr)
    );
    assert!(
        std::fs::read_to_string(&out_b).unwrap() == expected,
        "a resumed upgrade differs"
    );

    // Killed at random moments, the same command each time.
    let (state_c, out_c) = (sets.dir.join("c"), sets.dir.join("c.ndjson"));
    std::fs::write(&sets.events, head(&text, 15_000)).unwrap();
    first(&state_c, &out_c);
    std::fs::write(&sets.events, &text).unwrap();
    let args = upgrade_args(&sets, s(&state_c), s(&out_c), &["--drain"]);
    let mut rng = gen_support::Rng::new(77);
    let mut killed = 0;
    for _ in 0..8 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 + rng.below(200)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    let last = nudge(&args);
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    assert!(
        killed >= 4,
        "only {killed} runs were killed before finishing"
    );
    let got = std::fs::read_to_string(&out_c).unwrap();
    assert_eq!(got.matches("\"event\":\"policy_change\"").count(), stopped);
    assert!(
        got == expected,
        "a killed upgrade differs: {} vs {} bytes",
        got.len(),
        expected.len()
    );
}
