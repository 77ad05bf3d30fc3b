//! A deterministic generator of Segment-spec event streams for `examples/retail`:
//! sign-ups with identify calls, browsing, abandoned carts, orders, shipments and
//! app opens, with the imperfections of real streams (late deliveries, retried
//! `messageId`s, a few malformed lines). Shared by `examples/gen_events.rs` and
//! `benches/throughput.rs`.

use std::fmt::Write;

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(10_000) < percent * 100
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const ZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Paris",
    "Asia/Tokyo",
    "Australia/Sydney",
];
const CATEGORIES: &[&str] = &[
    "outerwear",
    "knitwear",
    "shoes",
    "accessories",
    "denim",
    "activewear",
];
const NAMES: &[&str] = &[
    "Ava", "Noah", "Mia", "Liam", "Zoe", "Ethan", "Chloe", "Lucas", "Emma", "Mateo",
];

fn stamp(out: &mut String, seconds: i64) {
    let t = chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
}

/// Writes `events` lines for `profiles` profiles, one per line, into `out`.
pub fn generate(profiles: u64, events: u64, seed: u64, out: &mut String) {
    let mut rng = Rng::new(seed);
    let mut clock: i64 = 1_793_577_600; // 2026-11-02T00:00:00Z
    let mut known = vec![false; profiles as usize];
    let mut last_line = String::new();
    for i in 0..events {
        // Average gap so that the stream covers about four weeks.
        clock += rng.below((2_419_200 / events.max(1)).max(1) * 2 + 1) as i64;
        let p = rng.below(profiles);
        let mut t = clock;
        if rng.chance(1) {
            t -= rng.below(3600) as i64; // delivered late
        }
        let start = out.len();
        if i > 0 && rng.below(1000) < 5 {
            // A retried delivery: the same line again.
            out.push_str(&last_line);
            out.push('\n');
            continue;
        }
        if rng.below(1000) < 1 {
            out.push_str("{\"type\":\"track\",\"event\":\"Cart Abandoned\",\"userId\":\"broken\n");
            continue;
        }
        let user = format!("cust-{p:07}");
        if !known[p as usize] || rng.chance(2) {
            known[p as usize] = true;
            let _ = write!(
                out,
                "{{\"type\":\"identify\",\"userId\":\"{user}\",\"messageId\":\"g{seed}-{i}\",\"timestamp\":\""
            );
            stamp(out, t);
            let name = rng.pick(NAMES);
            let _ = write!(
                out,
                "\",\"traits\":{{\"email\":\"{}{p}@example.com\",\"first_name\":\"{name}\",\"timezone\":\"{}\"",
                name.to_lowercase(),
                rng.pick(ZONES)
            );
            if rng.chance(50) {
                let _ = write!(out, ",\"phone\":\"+1555{:07}\"", p % 10_000_000);
            }
            if rng.chance(60) {
                let _ = write!(
                    out,
                    ",\"push_token\":\"tok-{:012x}\"",
                    rng.next() & 0xffff_ffff_ffff
                );
            }
            let _ = write!(
                out,
                ",\"consent\":{{\"sms_marketing\":{},\"push_marketing\":{},\"email_marketing\":{}}}}}}}",
                rng.chance(60),
                rng.chance(70),
                rng.chance(90)
            );
        } else {
            let kind = rng.below(100);
            let (event, props) = match kind {
                0..=44 => (
                    "Product Viewed",
                    format!(
                        "{{\"sku\":\"SKU-{}\",\"category\":\"{}\",\"price\":{}.{:02}}}",
                        1000 + rng.below(9000),
                        rng.pick(CATEGORIES),
                        10 + rng.below(240),
                        rng.below(100)
                    ),
                ),
                45..=64 => (
                    "Cart Abandoned",
                    format!(
                        "{{\"cart_id\":\"cart-{i}\",\"cart_value\":{}.{:02},\"category\":\"{}\",\"item_count\":{}}}",
                        15 + rng.below(300),
                        rng.below(100),
                        rng.pick(CATEGORIES),
                        1 + rng.below(5)
                    ),
                ),
                65..=77 => (
                    "Order Completed",
                    format!(
                        "{{\"order_id\":\"ord-{i}\",\"total\":{}.{:02},\"category\":\"{}\"}}",
                        20 + rng.below(400),
                        rng.below(100),
                        rng.pick(CATEGORIES)
                    ),
                ),
                78..=84 => (
                    "Order Shipped",
                    format!(
                        "{{\"order_id\":\"ord-{i}\",\"carrier\":\"UPS\",\"tracking_url\":\"https://track.example.com/{i}\"}}"
                    ),
                ),
                85..=94 => ("Application Opened", "{}".to_string()),
                _ => (
                    "Signed Up",
                    "{\"method\":\"email\",\"referrer\":null}".to_string(),
                ),
            };
            let _ = write!(
                out,
                "{{\"type\":\"track\",\"event\":\"{event}\",\"userId\":\"{user}\",\"messageId\":\"g{seed}-{i}\",\"timestamp\":\""
            );
            stamp(out, t);
            let _ = write!(out, "\",\"properties\":{props}}}");
        }
        out.push('\n');
        last_line = out[start..out.len() - 1].to_string();
    }
}
