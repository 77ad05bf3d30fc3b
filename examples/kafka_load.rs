//! The broker's side of `scripts/bench-serve.sh`: loads a JSON-lines file into
//! a topic (keyed by profile id, as Segment's destination does) and reads a
//! topic back, each timed, so that `nudge serve` is measured beside the
//! broker's own rate in the same run.
//!
//! cargo run --release --example kafka_load -- produce BROKERS TOPIC PARTITIONS FILE
//! cargo run --release --example kafka_load -- consume BROKERS TOPIC PARTITIONS COUNT
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool: a failure ends it with the message"
)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::io::BufRead;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, brokers, topic, partitions, what] = args.as_slice() else {
        eprintln!("usage: kafka_load produce|consume BROKERS TOPIC PARTITIONS FILE|COUNT");
        std::process::exit(2);
    };
    let partitions: i32 = partitions.parse().expect("PARTITIONS is a number");
    match mode.as_str() {
        "produce" => produce(brokers, topic, partitions, what),
        "consume" => consume(brokers, topic, partitions, what.parse().expect("COUNT")),
        _ => {
            eprintln!("mode is produce or consume");
            std::process::exit(2);
        }
    }
}

fn produce(brokers: &str, topic: &str, partitions: i32, file: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for r in runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("create")
    {
        if let Err((name, e)) = r
            && e != RDKafkaErrorCode::TopicAlreadyExists
        {
            panic!("cannot create {name}: {e}");
        }
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let lines: Vec<String> = std::io::BufReader::new(std::fs::File::open(file).expect("file"))
        .lines()
        .map(|l| l.expect("a line"))
        .collect();
    let started = Instant::now();
    for line in &lines {
        let key = line
            .split_once(r#""userId":""#)
            .or_else(|| line.split_once(r#""anonymousId":""#))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(id, _)| id.to_string());
        let mut record = BaseRecord::<str, str>::to(topic).payload(line.as_str());
        if let Some(k) = &key {
            record = record.key(k.as_str());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("cannot produce: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).expect("flushed");
    let s = started.elapsed().as_secs_f64();
    println!(
        "produced {} messages in {s:.2} s: {:.0} msgs/s",
        lines.len(),
        lines.len() as f64 / s
    );
}

fn consume(brokers: &str, topic: &str, partitions: i32, count: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-load")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut n = 0u64;
    let mut started = None;
    while n < count {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => {
                started.get_or_insert_with(Instant::now);
                n += 1;
            }
            Some(Err(e)) => eprintln!("{e}"),
            None => {
                eprintln!("only {n} of {count} messages within 10 s of the last");
                break;
            }
        }
    }
    let s = started.map_or(0.0, |t: Instant| t.elapsed().as_secs_f64());
    println!(
        "consumed {n} messages in {s:.2} s: {:.0} msgs/s",
        n as f64 / s
    );
}
