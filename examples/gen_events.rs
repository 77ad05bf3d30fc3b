//! Generates a realistic, deterministic event stream for `examples/retail`:
//!
//! ```sh
//! cargo run --release --example gen_events -- --profiles 10000 --events 1000000 --seed 7 > events.ndjson
//! ```

#[path = "../benches/support/gen.rs"]
mod gen_support;

use std::io::Write;

fn main() {
    let mut profiles = 1000u64;
    let mut events = 10_000u64;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--profiles", Some(v)) => profiles = v.max(1),
            ("--events", Some(v)) => events = v,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: gen_events --profiles N --events M --seed S");
                std::process::exit(2);
            }
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Generate in slices so memory stays small for long streams.
    let mut buf = String::with_capacity(1 << 20);
    gen_support::generate(profiles, events, seed, &mut buf);
    if out
        .write_all(buf.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(2);
    }
}
