//! `nudge serve`'s HTTP endpoints, on one thread of their own (a tokio
//! runtime with axum): Segment's HTTP Tracking API (`--http`), Prometheus
//! metrics (`--metrics`), and the health checks on both.
//!
//! Ingest answers only once the events are durable: produced to the input
//! topic and acknowledged by the broker (all replicas the topic asks for),
//! or, without Kafka, appended to the local journal and committed with the
//! state they produced (`local.rs`).
//! Each event is first read as the service will read it, so that a line the
//! service would dead-letter is refused here with its reason (400) instead.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nudge::io::input::Reader;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
#[cfg(feature = "kafka")]
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A request body larger than this is refused (413): Segment's own limit for
/// a batch.
pub const MAX_BODY: usize = 500 * 1024;
/// One event larger than this is refused (413): Segment's limit per call.
pub const MAX_EVENT: usize = 32 * 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub kind: String,
    pub journey: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub partition: i32,
}

/// What the service reports; shared between its thread and the endpoints.
pub struct Metrics {
    registry: Registry,
    pub events: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    pub dead_letters: Family<ReasonLabels, Counter>,
    pub ticks: Counter,
    pub lag: Family<PartitionLabels, Gauge>,
    pub clock_lag_seconds: Family<PartitionLabels, Gauge>,
    pub timers: Family<PartitionLabels, Gauge>,
    pub profiles: Family<PartitionLabels, Gauge>,
    pub partitions: Gauge,
    pub commit_seconds: Histogram,
    pub ingested: Counter,
    /// Ready once the first assignment is served; false again while stopping.
    pub ready: AtomicBool,
    pub stopping: AtomicBool,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nudge");
        let m = Metrics {
            events: Counter::default(),
            decisions: Family::default(),
            dead_letters: Family::default(),
            ticks: Counter::default(),
            lag: Family::default(),
            clock_lag_seconds: Family::default(),
            timers: Family::default(),
            profiles: Family::default(),
            partitions: Gauge::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            ingested: Counter::default(),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            registry: Registry::default(),
        };
        registry.register("events", "Input messages applied", m.events.clone());
        registry.register(
            "decisions",
            "Decisions made, by kind and journey",
            m.decisions.clone(),
        );
        registry.register(
            "dead_letters",
            "Input messages rejected, by reason",
            m.dead_letters.clone(),
        );
        registry.register(
            "ticks",
            "Tick records written by the live clock",
            m.ticks.clone(),
        );
        registry.register(
            "consumer_lag",
            "Messages in the partition not yet applied (from the broker's high watermark)",
            m.lag.clone(),
        );
        registry.register(
            "clock_lag_seconds",
            "Wall time minus the partition's event-time clock",
            m.clock_lag_seconds.clone(),
        );
        registry.register(
            "timers_pending",
            "Pending timers and schedule occurrences, by partition",
            m.timers.clone(),
        );
        registry.register(
            "profiles_held",
            "Profiles in memory, by partition",
            m.profiles.clone(),
        );
        registry.register(
            "partitions_assigned",
            "Input partitions this process holds",
            m.partitions.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time to commit (changelog and decisions acknowledged)",
            m.commit_seconds.clone(),
        );
        registry.register(
            "ingested_events",
            "Events accepted over HTTP and acknowledged by the broker",
            m.ingested.clone(),
        );
        Metrics { registry, ..m }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A partition's gauges, from its engine (after a commit).
    pub fn engine_gauges(&self, partition: i32, engine: &nudge::runtime::Engine) {
        let labels = PartitionLabels { partition };
        self.timers
            .get_or_create(&labels)
            .set(engine.pending_timers() as i64);
        self.profiles
            .get_or_create(&labels)
            .set(engine.profiles_held() as i64);
        if let Some(clock) = engine.clock() {
            self.clock_lag_seconds
                .get_or_create(&labels)
                .set(super::wall_seconds() - clock.div_euclid(nudge::runtime::time::SECOND));
        }
    }

    /// Forgets a partition's gauges (it moved to another process).
    #[cfg(feature = "kafka")]
    pub fn forget(&self, partition: i32) {
        let labels = PartitionLabels { partition };
        for family in [
            &self.lag,
            &self.clock_lag_seconds,
            &self.timers,
            &self.profiles,
        ] {
            family.remove(&labels);
        }
    }
}

/// The decision counters of one engine thread by kind and journey, each
/// found in the registry once (a label set is two strings to build).
#[derive(Default)]
pub struct DecisionCounters {
    found: std::collections::HashMap<(&'static str, std::rc::Rc<str>), Counter>,
}

impl DecisionCounters {
    pub fn count(&mut self, metrics: &Metrics, d: &nudge::runtime::Decision) {
        let kind = d.kind.name();
        self.found
            .entry((kind, std::rc::Rc::clone(&d.journey)))
            .or_insert_with(|| {
                metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        kind: kind.to_string(),
                        journey: d.journey.to_string(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// A short, bounded label for a dead-letter reason: its words before any
/// detail (`not JSON: EOF while…` → `not JSON`), with what it quotes from the
/// input elided (`unknown consent topic `x`` → `unknown consent topic `…``),
/// so that a stream of bad values cannot grow the metric without bound.
pub fn reason_label(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or(reason).trim();
    let mut out = String::new();
    for (i, piece) in head.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("`…`");
        } else {
            out.push_str(piece);
        }
    }
    out.chars().take(80).collect()
}

/// Where ingested events go.
pub struct Ingest {
    pub destination: Destination,
    pub write_key: Option<String>,
    /// (1.1) Shared with the service, which replaces it when it takes a new
    /// version of the policy set.
    pub reader: SharedReader,
}

/// The input reader of the running policy set.
pub type SharedReader = Arc<std::sync::RwLock<Reader>>;

/// A reader shared with the endpoints.
pub fn shared(reader: Reader) -> SharedReader {
    Arc::new(std::sync::RwLock::new(reader))
}

pub enum Destination {
    /// Produced to the input topic, keyed by profile id.
    #[cfg(feature = "kafka")]
    Kafka {
        producer: FutureProducer,
        topic: String,
    },
    /// Handed to the local engine, which answers once they are committed.
    Local(std::sync::mpsc::SyncSender<Batch>),
}

/// One request's events for the local engine, and where to say they are
/// durable (or why not).
pub struct Batch {
    pub lines: Vec<String>,
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
struct App {
    metrics: Arc<Metrics>,
    ingest: Option<Arc<Ingest>>,
}

/// The endpoints, started on a thread of their own; stopped when the handle
/// is dropped.
pub struct Endpoints {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds the addresses now (an address in use is an error at start) and
/// serves them on a new thread.
pub fn start(
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    ingest: Option<(SocketAddr, Ingest)>,
) -> Result<Endpoints, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    let bind = |addr: SocketAddr| -> Result<tokio::net::TcpListener, String> {
        let std = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        std.set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(std).map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let metrics_listener = metrics_addr.map(bind).transpose()?;
    let (ingest_listener, ingest) = match ingest {
        Some((addr, ingest)) => (Some(bind(addr)?), Some(Arc::new(ingest))),
        None => (None, None),
    };
    let app = App { metrics, ingest };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("nudge-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let health = Router::new()
                    .route("/healthz", get(healthz))
                    .route("/readyz", get(readyz));
                let mut servers = Vec::new();
                if let Some(l) = metrics_listener {
                    let router = health
                        .clone()
                        .route("/metrics", get(metrics_text))
                        .with_state(app.clone());
                    servers.push(tokio::spawn(async move {
                        let _ = axum::serve(l, router).await;
                    }));
                }
                if let Some(l) = ingest_listener {
                    let router = health
                        .route("/v1/track", post(track))
                        .route("/v1/identify", post(identify))
                        .route("/v1/batch", post(batch))
                        .layer(DefaultBodyLimit::max(MAX_BODY))
                        .with_state(app.clone());
                    servers.push(tokio::spawn(async move {
                        let _ = axum::serve(l, router).await;
                    }));
                }
                let _ = stopped.await;
                for s in servers {
                    s.abort();
                }
            });
        })
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok(Endpoints {
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<App>) -> Response {
    if app.metrics.stopping.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else if app.metrics.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "joining the consumer group\n",
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.text(),
    )
        .into_response()
}

async fn track(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    ingest(state, headers, body, Some("track")).await
}

async fn identify(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    ingest(state, headers, body, Some("identify")).await
}

async fn batch(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    ingest(state, headers, body, None).await
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"success": false, "message": message.into()})),
    )
        .into_response()
}

/// Whether the request carries the write key as Segment sends it: HTTP basic
/// auth with the key as the user name and an empty password.
fn authorized(headers: &HeaderMap, key: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    let user = text.split_once(':').map_or(text.as_ref(), |(u, _)| u);
    // Compared in full whatever the length: no early exit on the first byte.
    user.len() == key.len()
        && user
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The calls of a request, each completed as Segment completes them (`type`
/// from the endpoint, `timestamp` when absent), as JSON lines; or why not.
fn calls(
    body: &[u8],
    kind: Option<&'static str>,
    received: i64,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(bad("the body is not a JSON object".into()));
    };
    let mut calls = Vec::new();
    match kind {
        Some(kind) => calls.push((kind, object)),
        None => {
            let Some(serde_json::Value::Array(items)) = object.get("batch") else {
                return Err(bad("a batch needs `batch`, an array of calls".into()));
            };
            for (i, item) in items.iter().enumerate() {
                let serde_json::Value::Object(call) = item else {
                    return Err(bad(format!("batch[{i}] is not a JSON object")));
                };
                let Some(kind) = call.get("type").and_then(|t| t.as_str()) else {
                    return Err(bad(format!("batch[{i}] has no `type`")));
                };
                let kind = match kind {
                    "track" => "track",
                    "identify" => "identify",
                    "page" => "page",
                    "screen" => "screen",
                    "group" => "group",
                    "alias" => "alias",
                    other => return Err(bad(format!("batch[{i}] has an unknown type `{other}`"))),
                };
                calls.push((kind, call.clone()));
            }
        }
    }
    let stamp = nudge::runtime::time::rfc3339(received);
    let mut out = Vec::with_capacity(calls.len());
    for (kind, mut call) in calls {
        match call.get("type").and_then(|t| t.as_str()) {
            Some(t) if t != kind => {
                return Err(bad(format!("a `{t}` call was sent to /v1/{kind}")));
            }
            _ => {}
        }
        call.insert("type".into(), kind.into());
        if !call.contains_key("timestamp") {
            call.insert("timestamp".into(), stamp.clone().into());
        }
        out.push(call);
    }
    Ok(out)
}

async fn ingest(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
    kind: Option<&'static str>,
) -> Response {
    let Some(ingest) = app.ingest.clone() else {
        return refuse(StatusCode::NOT_FOUND, "no ingest here");
    };
    if app.metrics.stopping.load(Ordering::Relaxed) {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; retry elsewhere",
        );
    }
    if let Some(key) = &ingest.write_key
        && !authorized(&headers, key)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"nudge\"")],
            axum::Json(serde_json::json!({"success": false, "message": "the write key is missing or wrong"})),
        )
            .into_response();
    }
    let received = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            i64::try_from(d.as_millis())
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000)
        });
    let calls = match calls(&body, kind, received) {
        Ok(c) => c,
        Err((status, message)) => return refuse(status, message),
    };
    let mut lines = Vec::with_capacity(calls.len());
    for (i, call) in calls.into_iter().enumerate() {
        let at = if kind.is_none() {
            format!("batch[{i}]: ")
        } else {
            String::new()
        };
        let line = serde_json::Value::Object(call).to_string();
        if line.len() > MAX_EVENT {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{at}an event is limited to {MAX_EVENT} bytes"),
            );
        }
        let read = ingest
            .reader
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .read(&line);
        let key = match read {
            Ok(event) => event.profile.into_owned(),
            Err(dead) => return refuse(StatusCode::BAD_REQUEST, format!("{at}{}", dead.0)),
        };
        lines.push((key, line));
    }
    let count = lines.len() as u64;
    if let Err(response) = deliver(&ingest.destination, lines).await {
        return response;
    }
    app.metrics.ingested.inc_by(count);
    axum::Json(serde_json::json!({"success": true})).into_response()
}

/// Makes the events durable; the refusal to send when they could not be.
async fn deliver(destination: &Destination, lines: Vec<(String, String)>) -> Result<(), Response> {
    match destination {
        #[cfg(feature = "kafka")]
        Destination::Kafka { producer, topic } => {
            // Queued all, then awaited all: the answer comes once every event
            // of the request is acknowledged.
            let mut deliveries = Vec::with_capacity(lines.len());
            for (key, line) in &lines {
                let record = FutureRecord::to(topic)
                    .key(key.as_str())
                    .payload(line.as_str());
                match producer.send_result(record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((e, _)) => {
                        return Err(refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("cannot queue the events: {e}"),
                        ));
                    }
                }
            }
            for delivery in deliveries {
                match tokio::time::timeout(Duration::from_secs(60), delivery).await {
                    Ok(Ok(Ok(_))) => {}
                    Ok(Ok(Err((e, _)))) => {
                        return Err(refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("the broker did not take the events: {e}"),
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the broker did not acknowledge the events in time",
                        ));
                    }
                }
            }
            Ok(())
        }
        Destination::Local(engine) => {
            let (done, durable) = tokio::sync::oneshot::channel();
            let batch = Batch {
                lines: lines.into_iter().map(|(_, line)| line).collect(),
                done,
            };
            if engine.try_send(batch).is_err() {
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine is busy or stopping; retry",
                ));
            }
            match tokio::time::timeout(Duration::from_secs(60), durable).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, e)),
                _ => Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the events were not committed in time",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_short_labels() {
        assert_eq!(
            reason_label("not JSON: EOF while parsing a value at line 1 column 175"),
            "not JSON"
        );
        assert_eq!(
            reason_label("invalid timestamp `2026-13-01`: not RFC 3339"),
            "invalid timestamp `…`"
        );
        assert_eq!(
            reason_label("unknown consent topic `promo` (did you mean `promos`?)"),
            "unknown consent topic `…` (did you mean `…`?)"
        );
    }

    #[test]
    fn calls_are_completed_as_segment_completes_them() {
        let t = 1_764_000_000_000_000_000;
        let one = calls(br#"{"userId":"u","event":"E"}"#, Some("track"), t).expect("valid");
        assert_eq!(one[0]["type"], "track");
        assert_eq!(one[0]["timestamp"], nudge::runtime::time::rfc3339(t));
        let kept = calls(
            br#"{"userId":"u","event":"E","timestamp":"2026-01-01T00:00:00Z"}"#,
            Some("track"),
            t,
        )
        .expect("valid");
        assert_eq!(kept[0]["timestamp"], "2026-01-01T00:00:00Z");
        let e = calls(br#"{"type":"identify","userId":"u"}"#, Some("track"), t)
            .expect_err("wrong endpoint");
        assert!(e.1.contains("sent to /v1/track"), "{}", e.1);
        let b = calls(
            br#"{"batch":[{"type":"identify","userId":"u"},{"type":"track","userId":"u","event":"E"}]}"#,
            None,
            t,
        )
        .expect("valid");
        assert_eq!(b.len(), 2);
        assert!(calls(br#"{"batch":[{"type":"nope"}]}"#, None, t).is_err());
        assert!(calls(br#"[1]"#, Some("track"), t).is_err());
        assert!(calls(b"{", Some("track"), t).is_err());
    }

    fn app(destination: Destination) -> App {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail");
        let sources = crate::cli::load::load(&[root])
            .map_err(|e| e.0)
            .expect("the retail set loads");
        let analysis = nudge::analyze(&sources);
        let program = nudge::ir::lower(&analysis.modules).expect("lowers");
        App {
            metrics: Arc::new(Metrics::new()),
            ingest: Some(Arc::new(Ingest {
                destination,
                write_key: None,
                reader: shared(Reader::new(Arc::new(program))),
            })),
        }
    }

    fn status(app: &App) -> StatusCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let body = Bytes::from_static(br#"{"userId":"u","traits":{"first_name":"Ada"}}"#);
        runtime
            .block_on(ingest(
                State(app.clone()),
                HeaderMap::new(),
                body,
                Some("identify"),
            ))
            .status()
    }

    /// The local engine's answers, one per batch, from a thread of its own.
    fn engine(answer: Result<(), String>) -> Destination {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
        std::thread::spawn(move || {
            while let Ok(batch) = rx.recv() {
                assert_eq!(batch.lines.len(), 1);
                let _ = batch.done.send(answer.clone());
            }
        });
        Destination::Local(tx)
    }

    #[test]
    fn ingest_answers_only_what_the_engine_committed() {
        assert_eq!(status(&app(engine(Ok(())))), StatusCode::OK);
        let failing = app(engine(Err("cannot write the journal: disk full".into())));
        assert_eq!(status(&failing), StatusCode::SERVICE_UNAVAILABLE);
        let stopping = app(engine(Ok(())));
        stopping.metrics.stopping.store(true, Ordering::Relaxed);
        assert_eq!(status(&stopping), StatusCode::SERVICE_UNAVAILABLE);
        // A queue the engine does not drain: refused at once, not held.
        let (tx, _rx) = std::sync::mpsc::sync_channel::<Batch>(0);
        assert_eq!(
            status(&app(Destination::Local(tx))),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(stopping.metrics.ingested.get(), 0);
    }

    #[test]
    fn the_write_key_is_basic_auth_user() {
        use base64::Engine as _;
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "k3y"));
        let encoded = base64::engine::general_purpose::STANDARD.encode("k3y:");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().expect("header"),
        );
        assert!(authorized(&h, "k3y"));
        assert!(!authorized(&h, "k3z"));
        assert!(!authorized(&h, "k3"));
    }
}
