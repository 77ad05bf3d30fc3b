//! (1.1) `nudge run --state DIR --upgrade` (LANGUAGE.md §7.7, CLI.md): a stream
//! runs under one version of a policy set, the store is upgraded where the
//! input stopped, and every decision after it is compared by hand. Each case
//! runs with both engines, which must agree byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCHEMA: &str = r#"
consent email_marketing opt_out
consent push_marketing opt_in
profile {
  email: string?
  push_token: string?
  timezone: timezone = "UTC"
  tier: string = "standard"
}
event signup { plan: string }
event cart { value: number, category: string }
event purchase { amount: number }
channel email { address profile.email  consent email_marketing }
channel push  { address profile.push_token  consent push_marketing }
"#;

struct Case {
    dir: PathBuf,
    engine: &'static str,
}

impl Case {
    fn new(name: &str, engine: &'static str) -> Case {
        let dir = support::scratch(&format!("upgrade-apply-{name}-{engine}"));
        Case { dir, engine }
    }

    /// A policy set named `name`: `schema` and `rest`, in two files.
    fn set(&self, name: &str, schema: &str, rest: &str) -> PathBuf {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("schema.nudge"), schema).unwrap();
        std::fs::write(dir.join("case.nudge"), rest).unwrap();
        dir
    }

    /// Appends lines to the input (the store resumes where it stopped).
    fn feed(&self, lines: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("events.ndjson"))
            .unwrap();
        for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            writeln!(f, "{line}").unwrap();
        }
    }

    fn run(&self, policy: &Path, extra: &[&str]) -> Output {
        let dir = |p: &str| self.dir.join(p).to_str().unwrap().to_string();
        let mut args = vec![
            "run".to_string(),
            "--policy".into(),
            policy.to_str().unwrap().into(),
            "--events".into(),
            dir("events.ndjson"),
            "--state".into(),
            dir("state"),
            "--out".into(),
            dir("out.ndjson"),
            "--engine".into(),
            self.engine.into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args(&args)
            .output()
            .expect("nudge runs")
    }

    fn ok(&self, policy: &Path, extra: &[&str]) -> String {
        let out = self.run(policy, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        stderr
    }

    fn out(&self) -> String {
        std::fs::read_to_string(self.dir.join("out.ndjson")).unwrap_or_default()
    }

    /// Every decision so far, one line each: time (HH:MM of the day, or the
    /// date and time), profile, journey, kind and what it names.
    fn decisions(&self) -> Vec<String> {
        self.out()
            .lines()
            .map(|line| {
                let d: serde_json::Value = serde_json::from_str(line).unwrap();
                let at = d["at"].as_str().unwrap();
                let at = at.strip_prefix("2026-11-29T").unwrap_or(at);
                let mut s = format!(
                    "{} {} {} {}",
                    at.trim_end_matches(":00Z"),
                    d["profile"].as_str().unwrap(),
                    d["journey"].as_str().unwrap(),
                    d["kind"].as_str().unwrap()
                );
                for key in ["template", "event", "reason"] {
                    if let Some(v) = d[key].as_str() {
                        s.push(' ');
                        s.push_str(v);
                    }
                }
                if let Some(subject) = d["content"]["subject"].as_str() {
                    s.push_str(&format!(" {subject:?}"));
                }
                s
            })
            .collect()
    }
}

fn both(test: impl Fn(&Case) -> String, name: &str) {
    let interp = test(&Case::new(name, "interp"));
    let jit = test(&Case::new(name, "jit"));
    assert_eq!(interp, jit, "the engines agree");
}

fn identify(id: &str, at: &str, traits: &str, m: &str) -> String {
    format!(
        r#"{{"type":"identify","userId":"{id}","timestamp":"2026-11-29T{at}:00Z","messageId":"{m}","traits":{traits}}}"#
    )
}

fn track(event: &str, id: &str, at: &str, props: &str, m: &str) -> String {
    format!(
        r#"{{"type":"track","event":"{event}","userId":"{id}","timestamp":"2026-11-29T{at}:00Z","messageId":"{m}","properties":{props}}}"#
    )
}

fn tick(at: &str) -> String {
    format!(r#"{{"type":"tick","timestamp":"2026-11-29T{at}:00Z"}}"#)
}

#[test]
fn an_instance_finishes_in_its_version_while_new_entries_follow_the_new_one() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"journey j { owner "qa"  when cart  wait 1h  send t1 via email }
                   template t1 { email { subject: "v1 {{trigger.value}}", body: "b" } }"#,
            );
            // The wait is longer and the template another; `t1` is gone.
            let v2 = case.set(
                "v2",
                SCHEMA,
                r#"journey j { owner "qa"  when cart  wait 2h  send t2 via email }
                   template t2 { email { subject: "v2 {{trigger.category}}", body: "b" } }"#,
            );
            case.feed(&identify("u1", "09:00", r#"{"email":"a@x.com"}"#, "m1"));
            case.feed(&identify("u2", "09:00", r#"{"email":"b@x.com"}"#, "m2"));
            case.feed(&track(
                "cart",
                "u1",
                "10:00",
                r#"{"value":49.5,"category":"shoes"}"#,
                "m3",
            ));
            case.ok(&v1, &[]);
            case.feed(&track(
                "cart",
                "u2",
                "10:10",
                r#"{"value":10,"category":"hats"}"#,
                "m4",
            ));
            // u1 is still in version 1: it may not enter version 2.
            case.feed(&track(
                "cart",
                "u1",
                "10:20",
                r#"{"value":11,"category":"hats"}"#,
                "m5",
            ));
            case.feed(&tick("12:30"));
            case.feed(&track(
                "cart",
                "u1",
                "13:00",
                r#"{"value":12,"category":"socks"}"#,
                "m6",
            ));
            case.feed(&tick("15:30"));
            let stderr = case.ok(&v2, &["--upgrade", "--explain"]);
            assert!(
                stderr.contains(
                    "journey changed: j (1 active instance stays on the old version until it ends"
                ),
                "{stderr}"
            );
            assert_eq!(
                case.decisions(),
                [
                    "10:00 u1 j entered",
                    "10:10 u2 j entered",
                    "10:20 u1 j not_entered active",
                    "11:00 u1 j send t1 \"v1 49.5\"",
                    "11:00 u1 j completed",
                    "12:10 u2 j send t2 \"v2 hats\"",
                    "12:10 u2 j completed",
                    "13:00 u1 j entered",
                    "15:00 u1 j send t2 \"v2 socks\"",
                    "15:00 u1 j completed",
                ]
            );
            // The store runs version 2 from now on: the same set resumes, the
            // old one is another change.
            case.feed(&track(
                "cart",
                "u2",
                "16:00",
                r#"{"value":1,"category":"caps"}"#,
                "m7",
            ));
            case.ok(&v2, &[]);
            assert_eq!(case.decisions().last().unwrap(), "16:00 u2 j entered");
            assert_eq!(case.run(&v1, &[]).status.code(), Some(2));
            case.out()
        },
        "versions",
    );
}

const TWO_JOURNEYS: &str = r#"
journey j { owner "qa"  when cart  wait 1h  send t via email }
journey k { owner "qa"  when signup  wait 1h  send t via email }
template t { email { subject: "hello", body: "b" } }
"#;
const ONLY_J: &str = r#"
journey j { owner "qa"  when cart  wait 1h  send t via email }
template t { email { subject: "hello", body: "b" } }
"#;

fn removed_journey(case: &Case, flag: &str) -> Vec<String> {
    let v1 = case.set("v1", SCHEMA, TWO_JOURNEYS);
    let v2 = case.set("v2", SCHEMA, ONLY_J);
    case.feed(&identify("u1", "09:00", r#"{"email":"a@x.com"}"#, "m1"));
    case.feed(&track("signup", "u1", "10:00", r#"{"plan":"free"}"#, "m2"));
    case.ok(&v1, &[]);
    case.feed(&track("signup", "u1", "10:30", r#"{"plan":"pro"}"#, "m3"));
    case.feed(&tick("11:30"));
    let stderr = case.ok(&v2, &[flag, "--stats"]);
    assert!(
        stderr.contains("journey removed: k (1 active instance runs to its end)"),
        "{stderr}"
    );
    assert!(stderr.contains("journeys unchanged: 1"), "{stderr}");
    case.decisions()
}

#[test]
fn a_removed_journey_drains() {
    both(
        |case| {
            let decisions = removed_journey(case, "--upgrade");
            // Its instance runs to its end; the signup no longer starts it.
            assert_eq!(
                decisions,
                [
                    "10:00 u1 k entered",
                    "11:00 u1 k send t \"hello\"",
                    "11:00 u1 k completed",
                ]
            );
            case.out()
        },
        "drain",
    );
}

#[test]
fn a_removed_journey_is_stopped_with_stop_removed() {
    both(
        |case| {
            let decisions = removed_journey(case, "--upgrade=stop-removed");
            assert_eq!(
                decisions,
                ["10:00 u1 k entered", "10:00 u1 k exited policy_change",]
            );
            // Written once: a resume does not stop it again.
            case.ok(&case.dir.join("v2"), &[]);
            assert_eq!(case.decisions().len(), 2);
            case.out()
        },
        "stop",
    );
}

#[test]
fn attributes_default_reset_and_carry_over() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"journey j { owner "qa"  when cart where profile.tier == "none"  send t via email }
                   template t { email { subject: "{{profile.tier}}", body: "b" } }"#,
            );
            // `tier` becomes a number, `vip` is new, `email` is kept.
            let schema2 = SCHEMA.replace(
                r#"tier: string = "standard""#,
                "tier: number = 0\n  vip: bool = true",
            );
            let v2 = case.set(
                "v2",
                &schema2,
                r#"journey j { owner "qa"  when cart where profile.vip and profile.tier == 0  send t via email }
                   template t { email { subject: "{{profile.email ?? "?"}}", body: "b" } }"#,
            );
            case.feed(&identify(
                "u1",
                "09:00",
                r#"{"email":"a@x.com","tier":"gold"}"#,
                "m1",
            ));
            case.feed(&identify("u2", "09:00", r#"{"email":"b@x.com"}"#, "m2"));
            case.ok(&v1, &[]);
            case.feed(&track(
                "cart",
                "u1",
                "10:00",
                r#"{"value":1,"category":"c"}"#,
                "m3",
            ));
            let stderr = case.ok(&v2, &["--upgrade", "--stats"]);
            assert!(
                stderr
                    .contains("attribute retyped: tier (string → number; restarts at its default)"),
                "{stderr}"
            );
            assert!(
                stderr.contains("attributes added: vip (each starts at its default)"),
                "{stderr}"
            );
            assert!(stderr.contains("attributes reset   2"), "{stderr}");
            assert_eq!(
                case.decisions(),
                [
                    "10:00 u1 j entered",
                    "10:00 u1 j send t \"a@x.com\"",
                    "10:00 u1 j completed"
                ]
            );
            case.out()
        },
        "attributes",
    );
}

#[test]
fn aggregates_keep_their_history_and_new_ones_start_short() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"journey a { owner "qa"  when cart where count(purchase within 30d) >= 5  send t via email }
                   template t { email { subject: "s", body: "b" } }"#,
            );
            let v2 = case.set(
                "v2",
                SCHEMA,
                r#"journey a { owner "qa"  when cart where count(purchase within 30d) >= 2  send t via email }
                   journey b { owner "qa"  when cart where count(signup within 90d) >= 1  send t via email }
                   template t { email { subject: "s", body: "b" } }"#,
            );
            case.feed(&identify("u1", "08:00", r#"{"email":"a@x.com"}"#, "m1"));
            case.feed(&track("signup", "u1", "08:30", r#"{"plan":"free"}"#, "m2"));
            case.feed(&track("purchase", "u1", "09:00", r#"{"amount":5}"#, "m3"));
            case.ok(&v1, &[]);
            case.feed(&track("purchase", "u1", "10:00", r#"{"amount":6}"#, "m4"));
            case.feed(&track(
                "cart",
                "u1",
                "11:00",
                r#"{"value":1,"category":"c"}"#,
                "m5",
            ));
            let stderr = case.ok(&v2, &["--upgrade"]);
            assert!(
                stderr.contains(
                    "short history: count(signup within 90d) counts only from the upgrade on"
                ),
                "{stderr}"
            );
            // Two purchases, one from before the upgrade; the signup before it
            // was not kept.
            assert_eq!(
                case.decisions(),
                [
                    "11:00 u1 a entered",
                    "11:00 u1 a send t \"s\"",
                    "11:00 u1 a completed"
                ]
            );
            case.out()
        },
        "aggregates",
    );
}

#[test]
fn upgrades_chain_and_each_instance_keeps_the_version_it_entered() {
    both(
        |case| {
            let version = |n: u32, wait: &str| {
                case.set(
                    &format!("v{n}"),
                    SCHEMA,
                    &format!(
                        r#"journey j {{ owner "qa"  when cart  wait {wait}  send t{n} via email }}
                           template t{n} {{ email {{ subject: "v{n}", body: "b" }} }}"#
                    ),
                )
            };
            let (v1, v2, v3) = (version(1, "5h"), version(2, "2h"), version(3, "3h"));
            for (id, m) in [("u1", "m1"), ("u2", "m2"), ("u3", "m3")] {
                case.feed(&identify(id, "09:00", r#"{"email":"a@x.com"}"#, m));
            }
            case.feed(&track(
                "cart",
                "u1",
                "10:00",
                r#"{"value":1,"category":"c"}"#,
                "m4",
            ));
            case.ok(&v1, &[]);
            case.feed(&track(
                "cart",
                "u2",
                "10:30",
                r#"{"value":1,"category":"c"}"#,
                "m5",
            ));
            case.ok(&v2, &["--upgrade"]);
            case.feed(&track(
                "cart",
                "u3",
                "11:10",
                r#"{"value":1,"category":"c"}"#,
                "m6",
            ));
            case.feed(&tick("16:00"));
            let stderr = case.ok(&v3, &["--upgrade"]);
            assert!(
                stderr.contains(
                    "journey changed: j (2 active instances stay on the old version until they end"
                ),
                "{stderr}"
            );
            assert_eq!(
                case.decisions(),
                [
                    "10:00 u1 j entered",
                    "10:30 u2 j entered",
                    "11:10 u3 j entered",
                    "12:30 u2 j send t2 \"v2\"",
                    "12:30 u2 j completed",
                    "14:10 u3 j send t3 \"v3\"",
                    "14:10 u3 j completed",
                    "15:00 u1 j send t1 \"v1\"",
                    "15:00 u1 j completed",
                ]
            );
            // Version 1's steps again: a change like any other, with nobody
            // in the running version.
            let v4 = version(4, "5h");
            let diff = Command::new(env!("CARGO_BIN_EXE_nudge"))
                .args([
                    "diff",
                    "--state",
                    case.dir.join("state").to_str().unwrap(),
                    "--against",
                ])
                .arg(&v4)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&diff.stdout);
            assert!(
                text.contains("journey changed: j (no instance is active in it)"),
                "{text}"
            );
            case.out()
        },
        "chain",
    );
}

/// Every kind of running state across one upgrade: an instance waiting for
/// an event and a goal window in changed journeys (they resume and convert
/// in their old version), send history a cap still counts, an inactivity
/// timer that follows the new duration.
#[test]
fn waits_goals_caps_and_inactivity_carry_over() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"
journey waiting {
  owner "qa"
  when signup
  wait up to 2d for purchase where event.amount > 10 { send thanks via email } else { send nudge via email }
}
journey goals {
  owner "qa"
  when cart
  goal purchase within 1d
  wait 1h
  send t via email
}
journey capped {
  owner "qa"
  when purchase
  cap 1 per day
  send t via email
}
journey lapsed {
  owner "qa"
  when no purchase for 3h
  send t via email
}
template t { email { subject: "t", body: "b" } }
template thanks { email { subject: "thanks", body: "b" } }
template nudge { email { subject: "nudge", body: "b" } }
"#,
            );
            let text = std::fs::read_to_string(v1.join("case.nudge")).unwrap();
            let v2 = case.set(
                "v2",
                SCHEMA,
                &text
                    .replace("else { send nudge via email }", "else { send t via email }")
                    .replace("  wait 1h\n", "  wait 2h\n")
                    .replace(
                        "  when purchase\n",
                        "  when purchase where event.amount > 0\n",
                    )
                    .replace("for 3h", "for 2h"),
            );
            case.feed(&identify("u1", "09:00", r#"{"email":"a@x.com"}"#, "m1"));
            case.feed(&track("signup", "u1", "09:30", r#"{"plan":"free"}"#, "m2"));
            case.feed(&track("purchase", "u1", "09:45", r#"{"amount":1}"#, "m3"));
            case.feed(&track(
                "cart",
                "u1",
                "10:00",
                r#"{"value":1,"category":"c"}"#,
                "m4",
            ));
            case.ok(&v1, &[]);
            case.feed(&track("purchase", "u1", "10:30", r#"{"amount":20}"#, "m5"));
            case.feed(&tick("11:30"));
            case.feed(&tick("14:00"));
            let stderr = case.ok(&v2, &["--upgrade"]);
            for changed in [
                "waiting (1 active",
                "goals (1 active",
                "capped (no instance",
                "lapsed (no instance",
            ] {
                assert!(
                    stderr.contains(&format!("journey changed: {changed}")),
                    "{stderr}"
                );
            }
            assert_eq!(
                case.decisions(),
                [
                    "09:30 u1 waiting entered",
                    "09:45 u1 capped entered",
                    "09:45 u1 capped send t \"t\"",
                    "09:45 u1 capped completed",
                    "10:00 u1 goals entered",
                    // The goal of the old version converts; the old wait for
                    // a purchase resumes; the cap still counts the 09:45 send.
                    "10:30 u1 goals converted purchase",
                    "10:30 u1 waiting send thanks \"thanks\"",
                    "10:30 u1 waiting completed",
                    "10:30 u1 capped entered",
                    "10:30 u1 capped suppressed t",
                    "10:30 u1 capped completed",
                    // Version 1's wait of an hour.
                    "11:00 u1 goals send t \"t\"",
                    "11:00 u1 goals completed",
                    // Two hours after the last purchase, version 2's duration.
                    "12:30 u1 lapsed entered",
                    "12:30 u1 lapsed send t \"t\"",
                    "12:30 u1 lapsed completed",
                ]
            );
            case.out()
        },
        "constructs",
    );
}

/// An instance past a split finishes its arm in the old version (its sends
/// carry the arm); a changed schedule fires at its new time for every
/// profile seen before the upgrade.
#[test]
fn split_arms_and_schedules_carry_over() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"
journey promo {
  owner "qa"
  when cart
  split {
    50% a { wait 1h  send ta via email }
    50% b { wait 1h  send tb via email }
  }
}
journey daily {
  owner "qa"
  when every day at 12:00
  send t via email
}
template t { email { subject: "t", body: "b" } }
template ta { email { subject: "a", body: "b" } }
template tb { email { subject: "b", body: "b" } }
"#,
            );
            let text = std::fs::read_to_string(v1.join("case.nudge")).unwrap();
            let v2 = case.set(
                "v2",
                SCHEMA,
                &text.replace("wait 1h", "wait 2h").replace("12:00", "13:00"),
            );
            let ids = ["u1", "u2", "u3", "u4", "u5", "u6"];
            for (k, id) in ids.iter().enumerate() {
                case.feed(&identify(
                    id,
                    "09:00",
                    r#"{"email":"a@x.com"}"#,
                    &format!("i{k}"),
                ));
                case.feed(&track(
                    "cart",
                    id,
                    "10:00",
                    r#"{"value":1,"category":"c"}"#,
                    &format!("c{k}"),
                ));
            }
            case.ok(&v1, &[]);
            case.feed(&tick("14:00"));
            case.ok(&v2, &["--upgrade"]);
            let decisions: Vec<serde_json::Value> = case
                .out()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let mut arms = std::collections::BTreeSet::new();
            for id in ids {
                let mine: Vec<&serde_json::Value> =
                    decisions.iter().filter(|d| d["profile"] == id).collect();
                let send = mine
                    .iter()
                    .find(|d| d["journey"] == "promo" && d["kind"] == "send")
                    .unwrap_or_else(|| panic!("{id} got its arm's send: {mine:?}"));
                let arm = send["arm"].as_str().unwrap();
                arms.insert(arm.to_string());
                assert_eq!(send["template"], format!("t{arm}"), "{send}");
                assert_eq!(
                    send["at"], "2026-11-29T11:00:00Z",
                    "version 1's wait: {send}"
                );
                let daily: Vec<&str> = mine
                    .iter()
                    .filter(|d| d["journey"] == "daily")
                    .map(|d| d["at"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    daily, ["2026-11-29T13:00:00Z"; 3],
                    "{id}: entered, send, completed"
                );
            }
            assert_eq!(arms.len(), 2, "both arms are in the stream");
            case.out()
        },
        "splits",
    );
}

/// A set that drops a channel, its address attribute and its consent topic:
/// an instance of the old version still sends through it, with the values
/// the profile had at the upgrade; new entries use the new set's channels.
#[test]
fn an_old_version_sends_through_what_the_new_set_dropped() {
    both(
        |case| {
            let v1 = case.set(
                "v1",
                SCHEMA,
                r#"journey j { owner "qa"  when cart  wait 1h  send t via push, email }
                   template t { push { title: "hi {{profile.push_token ?? "-"}}" } email { subject: "mail", body: "b" } }"#,
            );
            let schema2 = SCHEMA
                .replace("consent push_marketing opt_in\n", "")
                .replace("  push_token: string?\n", "")
                .replace(
                    "channel push  { address profile.push_token  consent push_marketing }\n",
                    "",
                );
            let v2 = case.set(
                "v2",
                &schema2,
                r#"journey j { owner "qa"  when cart  wait 2h  send t via email }
                   template t { email { subject: "mail", body: "b" } }"#,
            );
            case.feed(&identify(
                "u1",
                "09:00",
                r#"{"email":"a@x.com","push_token":"tok-1","consent":{"push_marketing":true}}"#,
                "m1",
            ));
            case.feed(&track(
                "cart",
                "u1",
                "10:00",
                r#"{"value":1,"category":"c"}"#,
                "m2",
            ));
            case.ok(&v1, &[]);
            case.feed(&identify(
                "u2",
                "10:30",
                r#"{"email":"b@x.com","push_token":"tok-2"}"#,
                "m3",
            ));
            case.feed(&track(
                "cart",
                "u2",
                "10:30",
                r#"{"value":1,"category":"c"}"#,
                "m4",
            ));
            case.feed(&tick("13:00"));
            let stderr = case.ok(&v2, &["--upgrade"]);
            assert!(
                stderr.contains("attributes removed: push_token"),
                "{stderr}"
            );
            assert!(
                stderr.contains("consent topics removed: push_marketing"),
                "{stderr}"
            );
            let push: Vec<String> = case
                .out()
                .lines()
                .filter(|l| l.contains("\"kind\":\"send\""))
                .map(|l| {
                    let d: serde_json::Value = serde_json::from_str(l).unwrap();
                    format!("{} {} {}", d["profile"], d["channel"], d["content"])
                })
                .collect();
            assert_eq!(
                push,
                [
                    r#""u1" "push" {"title":"hi tok-1"}"#,
                    r#""u2" "email" {"body":"b","subject":"mail"}"#,
                ]
            );
            case.out()
        },
        "dropped",
    );
}
