//! `nudge serve` (CLI.md `serve`): `nudge run` for a stream that never ends.
//!
//! `--kafka` makes the process a member of a consumer group over the input
//! topic; each assigned partition is an engine of its own (LANGUAGE.md §7.2,
//! partitions), its state kept in a compacted changelog topic
//! ([`changelog`]) with a local store as a cache, its clock moved by the wall
//! clock through tick records written into the input partition itself, so
//! that replaying the topic replays the decisions ([`kafka`]).

#[cfg(feature = "kafka")]
mod changelog;
mod http;
#[cfg(feature = "kafka")]
mod kafka;
mod local;
mod reload;

use crate::cli::Outcome;
use nudge::runtime::time;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    #[arg(long, num_args = 1.., required = true)]
    pub policy: Vec<PathBuf>,
    /// Kafka bootstrap servers (`host:port,…`): consume `--topic` as a member
    /// of `--group`.
    #[arg(long, required_unless_present = "http", requires_all = ["topic", "group"])]
    pub kafka: Option<String>,
    /// The input topic: Segment-spec JSON messages keyed by profile id.
    #[arg(long)]
    pub topic: Option<String>,
    /// The consumer group the processes of one deployment share.
    #[arg(long)]
    pub group: Option<String>,
    /// Where decisions go: a topic, keyed by profile id, with the decision's
    /// `message_id` as a header.
    #[arg(long, conflicts_with = "out", required_unless_present_any = ["out", "http"])]
    pub out_topic: Option<String>,
    /// Where decisions go: a file, appended to.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where rejected messages go: a topic.
    #[arg(long, conflicts_with = "dead_letter")]
    pub dead_letter_topic: Option<String>,
    /// Where rejected messages go: a file, appended to.
    #[arg(long)]
    pub dead_letter: Option<PathBuf>,
    /// The compacted topic that holds each partition's state (default
    /// `GROUP-changelog`; created when missing).
    #[arg(long)]
    pub changelog_topic: Option<String>,
    /// The local cache of partition state (default: `nudge-GROUP` in the
    /// system's temporary directory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The allowed lateness: each partition's clock follows the wall clock
    /// minus this (LANGUAGE.md §7.2).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub lag: Duration,
    /// Commit after this many input messages of a partition …
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_every: u64,
    /// … or this long after the last commit, whichever comes first.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub commit_interval: Duration,
    /// A librdkafka setting for every client (`KEY=VALUE`, repeatable):
    /// security settings, `session.timeout.ms` and the like.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub kafka_config: Vec<(String, String)>,
    /// Accept Segment's HTTP Tracking API here (`POST /v1/track`,
    /// `/v1/identify`, `/v1/batch`) into `--topic`, answering once the broker
    /// has the events.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// With --http: the write key clients must send (HTTP basic auth user).
    #[arg(long, requires = "http")]
    pub write_key: Option<String>,
    /// Serve Prometheus metrics (`/metrics`), `/healthz` and `/readyz` here.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Run the assigned partitions on this many threads (each partition on
    /// one of them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// The evaluator: the reference interpreter, or the Cranelift JIT.
    #[arg(long, value_enum, default_value_t = Evaluator::Jit)]
    pub engine: Evaluator,
    /// Say why for every channel of every send (as `run --explain`).
    #[arg(long)]
    pub explain: bool,
    /// (1.1) Take a new version of the policy set on SIGHUP or when the
    /// `--policy` files change, at the next commit (LANGUAGE.md §7.7); also
    /// applies a changed set at start. Without it a new version is only
    /// logged with what it would change.
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "drain",
        value_name = "REMOVED"
    )]
    pub upgrade: Option<crate::cli::store::UpgradeMode>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Evaluator {
    Jit,
    Interp,
}

/// Seconds since the epoch by the wall clock.
fn wall_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The live clock (LANGUAGE.md §7.2): the tick line to write when the
/// engine has a timer due by wall time − `lag` (nanoseconds) and its clock is
/// behind that; `None` when nothing would fire. Whole seconds: a tick is a
/// line of the log a person may read. A service sharing its input topic with
/// other groups names its group in its ticks (`"group"`), so that each
/// applies only its own.
fn due_tick(engine: &nudge::runtime::Engine, lag: i64, group: Option<&str>) -> Option<String> {
    let horizon = wall_seconds()
        .saturating_sub(lag / time::SECOND)
        .saturating_mul(time::SECOND);
    let behind = engine.clock().is_none_or(|c| c < horizon);
    let due = engine.next_due(horizon).is_some_and(|at| at <= horizon);
    (behind && due).then(|| {
        let mut line = format!(
            r#"{{"type":"tick","timestamp":"{}""#,
            time::rfc3339(horizon)
        );
        if let Some(g) = group {
            line.push_str(r#","group":"#);
            line.push_str(&serde_json::Value::from(g).to_string());
        }
        line.push('}');
        line
    })
}

/// `90s`, `5m`, `1h`, `2d`, `500ms`: a whole number and a unit.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 500ms, 90s, 5m, 1h or 2d"))?;
    let unit_seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{s}` is not a duration such as 500ms, 90s, 5m, 1h or 2d"
            ));
        }
    };
    n.checked_mul(unit_seconds)
        // The clock is nanoseconds in an i64: a lateness beyond it is no lateness.
        .filter(|secs| *secs <= (i64::MAX / time::SECOND) as u64)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long a duration"))
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not a setting KEY=VALUE")),
    }
}

pub fn run(args: ServeArgs) -> Outcome {
    let program = match super::program(&args.policy) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    init_logs();
    let result = if args.kafka.is_some() {
        kafka(&args, program)
    } else {
        local::serve(&args, program)
    };
    match result {
        Ok(()) => Outcome::Success,
        Err(e) => crate::cli::usage_error(e),
    }
}

/// SIGTERM and SIGINT stop the service; (1.1) SIGHUP, or a change of the
/// policy files, reads the set again.
pub(super) fn signals() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    Ok((stop, reload))
}

/// Logs to stderr, one line per event worth a person's attention.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

#[cfg(feature = "kafka")]
fn kafka(args: &ServeArgs, program: std::sync::Arc<nudge::ir::Program>) -> Result<(), String> {
    kafka::serve(args, program)
}

#[cfg(not(feature = "kafka"))]
fn kafka(_: &ServeArgs, _: std::sync::Arc<nudge::ir::Program>) -> Result<(), String> {
    Err("this nudge was built without Kafka (the `kafka` feature): build it with `cargo build --release` on a machine with a C compiler and make, or run the embedded service (--http with --state)".into())
}

/// The local state directory, locked for this process: the one named, or
/// `nudge-GROUP` in the temporary directory (`nudge-GROUP.2`, `.3` … when
/// another process on this machine holds it, so that several processes of one
/// group can run here with no flag).
pub fn state_dir(
    named: Option<&std::path::Path>,
    group: &str,
) -> Result<(PathBuf, std::fs::File), String> {
    let lock = |dir: &std::path::Path| -> Result<Option<std::fs::File>, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(format!("cannot lock `{}`: {e}", path.display()))
            }
        }
    };
    if let Some(dir) = named {
        return match lock(dir)? {
            Some(file) => Ok((dir.to_path_buf(), file)),
            None => Err(format!(
                "`{}` is in use by another nudge serve: give each process its own --state directory",
                dir.display()
            )),
        };
    }
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = std::env::temp_dir().join(format!("nudge-{safe}"));
    for n in 1..=64 {
        let dir = if n == 1 {
            base.clone()
        } else {
            PathBuf::from(format!("{}.{n}", base.display()))
        };
        if let Some(file) = lock(&dir)? {
            return Ok((dir, file));
        }
    }
    Err(format!(
        "64 nudge serve processes of group `{group}` already run on this machine: give this one a --state directory"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("99999999999999w").is_err());
    }

    #[test]
    fn a_held_state_directory_is_not_shared() {
        let dir = std::env::temp_dir().join(format!("nudge-state-lock-{}", std::process::id()));
        let (first, _held) = state_dir(Some(&dir), "g").expect("free");
        assert_eq!(first, dir);
        let e = state_dir(Some(&dir), "g").expect_err("held");
        assert!(e.contains("in use by another nudge serve"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
