//! Nanoseconds per evaluation of predicates from `examples/retail`: the JIT, the
//! interpreter, the same predicate written by hand in Rust over the same slots,
//! and the equivalent expression in CEL (`cel`) and Rhai (`rhai`) over the same
//! data as maps, each compiled once — measured in one process (compare ratios,
//! not raw figures).
//!
//! ```sh
//! cargo bench --bench eval
//! ```

#[path = "support/retail.rs"]
mod retail;

use nudge::interp::{self, Env};
use nudge::ir::{Expr, Program, Value};
use nudge::jit::Jit;
use nudge::runtime::Profile;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn program() -> Arc<Program> {
    retail::program(&["benches/support/predicates.nudge"])
}

/// Nanoseconds per call of `f`, best of several rounds.
fn per_call(mut f: impl FnMut() -> bool) -> f64 {
    let rounds = 5;
    let n = 200_000;
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut hits = 0u32;
        for _ in 0..n {
            hits += u32::from(black_box(f()));
        }
        black_box(hits);
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => *n,
        _ => 0.0,
    }
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

fn main() {
    let program = program();
    let jit = Jit::compile(Arc::clone(&program)).unwrap_or_else(|e| panic!("{e}"));
    let attr = |name: &str| {
        program
            .attrs
            .iter()
            .position(|a| a.name == name)
            .unwrap_or(0)
    };
    let event_def = |name: &str| {
        program
            .events
            .iter()
            .find(|e| e.name == name)
            .unwrap_or(&program.events[0])
    };
    let prop = |event: &str, name: &str| {
        event_def(event)
            .props
            .iter()
            .position(|p| p.name == name)
            .unwrap_or(0)
    };

    // A gold profile with some history, and one event of each kind.
    let mut profile = Profile::new(&program);
    profile.attrs[attr("tier")] = Value::Str("gold".into());
    profile.attrs[attr("first_name")] = Value::Str("Ana".into());
    profile.attrs[attr("email")] = Value::Str("ana@example.com".into());
    profile.attrs[attr("lifetime_value")] = Value::Number(420.0);
    let now = 1_796_000_000_000_000_000i64;
    for (i, agg) in program.aggregates.iter().enumerate() {
        for k in 0..20 {
            profile.aggregates[i].record(now - k * 3_600_000_000_000, 25.0);
        }
        let _ = agg;
    }
    let event_for = |name: &str| -> Vec<Value> {
        event_def(name)
            .props
            .iter()
            .map(|p| match p.name.as_str() {
                "cart_value" => Value::Number(180.0),
                "item_count" => Value::Number(3.0),
                "total" => Value::Number(99.5),
                "price" => Value::Number(45.0),
                "category" => Value::Str("shoes".into()),
                _ => Value::Str("x".into()),
            })
            .collect()
    };
    let div0 = Cell::new(0);
    type Hand = Box<dyn Fn(&[Value], &[Value]) -> bool>;
    let tier = attr("tier");
    let (ltv, first, email, signed) = (
        attr("lifetime_value"),
        attr("first_name"),
        attr("email"),
        attr("signed_up_at"),
    );
    let (cv, ic) = (
        prop("cart_abandoned", "cart_value"),
        prop("cart_abandoned", "item_count"),
    );
    let total = prop("order_completed", "total");
    let (price, cat) = (
        prop("product_viewed", "price"),
        prop("product_viewed", "category"),
    );
    // (predicate, event, hand-written, CEL, Rhai). `signed_up_at` and `now` are
    // seconds in the CEL and Rhai data.
    let others: &[(&str, &str, &str)] = &[
        (
            "p01_cart_trigger",
            "event.cart_value >= 30.0 && profile.tier != 'staff'",
            "event.cart_value >= 30.0 && profile.tier != \"staff\"",
        ),
        ("p02_order_exit", "event.total > 0.0", "event.total > 0.0"),
        (
            "p03_browse_trigger",
            "event.price >= 20.0 && event.category != 'gift_cards'",
            "event.price >= 20.0 && event.category != \"gift_cards\"",
        ),
        (
            "p04_big_cart",
            "event.cart_value > 150.0 || event.item_count > 2.0",
            "event.cart_value > 150.0 || event.item_count > 2.0",
        ),
        (
            "p05_vip",
            "profile.tier == 'gold' || profile.tier == 'platinum'",
            "profile.tier == \"gold\" || profile.tier == \"platinum\"",
        ),
        (
            "p06_vip_list",
            "profile.tier in ['gold', 'platinum']",
            "profile.tier in [\"gold\", \"platinum\"]",
        ),
        (
            "p07_value",
            "event.cart_value * 1.2 - 5.0 > 100.0 && event.item_count >= 2.0",
            "event.cart_value * 1.2 - 5.0 > 100.0 && event.item_count >= 2.0",
        ),
        (
            "p08_ltv",
            "profile.lifetime_value + event.total > 500.0",
            "profile.lifetime_value + event.total > 500.0",
        ),
        (
            "p09_recent_signup",
            "now - (profile.signed_up_at == null ? now : profile.signed_up_at) < 2592000",
            "now - (if profile.signed_up_at == () { now } else { profile.signed_up_at }) < 2592000",
        ),
        (
            "p10_has_name",
            "profile.first_name != null && profile.email != null",
            "profile.first_name != () && profile.email != ()",
        ),
    ];
    let hand: Vec<(&str, &str, Option<Hand>)> = vec![
        (
            "p01_cart_trigger",
            "cart_abandoned",
            Some(Box::new(move |a, e| {
                num(&e[cv]) >= 30.0 && str_of(&a[tier]) != "staff"
            })),
        ),
        (
            "p02_order_exit",
            "order_completed",
            Some(Box::new(move |_, e| num(&e[total]) > 0.0)),
        ),
        (
            "p03_browse_trigger",
            "product_viewed",
            Some(Box::new(move |_, e| {
                num(&e[price]) >= 20.0 && str_of(&e[cat]) != "gift_cards"
            })),
        ),
        (
            "p04_big_cart",
            "cart_abandoned",
            Some(Box::new(move |_, e| {
                num(&e[cv]) > 150.0 || num(&e[ic]) > 2.0
            })),
        ),
        (
            "p05_vip",
            "app_opened",
            Some(Box::new(move |a, _| {
                str_of(&a[tier]) == "gold" || str_of(&a[tier]) == "platinum"
            })),
        ),
        (
            "p06_vip_list",
            "app_opened",
            Some(Box::new(move |a, _| {
                ["gold", "platinum"].contains(&str_of(&a[tier]))
            })),
        ),
        (
            "p07_value",
            "cart_abandoned",
            Some(Box::new(move |_, e| {
                num(&e[cv]) * 1.2 - 5.0 > 100.0 && num(&e[ic]) >= 2.0
            })),
        ),
        (
            "p08_ltv",
            "order_completed",
            Some(Box::new(move |a, e| num(&a[ltv]) + num(&e[total]) > 500.0)),
        ),
        (
            "p09_recent_signup",
            "app_opened",
            Some(Box::new(move |a, _| {
                let s = match a[signed] {
                    Value::Time(t) => t,
                    _ => now,
                };
                now - s < 30 * 86_400_000_000_000
            })),
        ),
        (
            "p10_has_name",
            "app_opened",
            Some(Box::new(move |a, _| {
                !a[first].is_none() && !a[email].is_none()
            })),
        ),
        ("p11_shopper", "product_viewed", None),
        ("p12_lapsed", "app_opened", None),
    ];
    println!(
        "{:<20} {:>8} {:>9} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "predicate",
        "jit ns",
        "interp ns",
        "hand ns",
        "cel ns",
        "rhai ns",
        "interp/jit",
        "jit/hand",
        "cel/jit",
        "rhai/jit"
    );
    for (name, event, hand) in &hand {
        let Some(j) = program.journeys.iter().find(|j| j.name == *name) else {
            continue;
        };
        let Some(cond): Option<&Expr> = j.condition.as_ref() else {
            continue;
        };
        let props = event_for(event);
        let env = Env {
            program: &program,
            attrs: &profile.attrs,
            event: &props,
            trigger: &[],
            now,
            tz: chrono_tz::Tz::UTC,
            aggregates: &profile,
            divisions_by_zero: &div0,
        };
        assert_eq!(jit.holds(cond, &env), interp::holds(cond, &env), "{name}");
        // As the runtime calls it: the condition's function found once.
        let Some(id) = jit.id(cond) else {
            panic!("{name} is not compiled")
        };
        let t_jit = per_call(|| jit.holds_id(id, black_box(cond), &env));
        let t_interp = per_call(|| interp::holds(black_box(cond), &env));
        let t_hand = hand.as_ref().map(|h| {
            assert_eq!(
                h(&profile.attrs, &props),
                interp::holds(cond, &env),
                "{name}"
            );
            per_call(|| h(black_box(&profile.attrs), black_box(&props)))
        });
        let (t_cel, t_rhai) = match others.iter().find(|(n, _, _)| n == name) {
            Some((_, cel_src, rhai_src)) => {
                let expected = interp::holds(cond, &env);
                (
                    Some(cel_ns(cel_src, event, expected)),
                    Some(rhai_ns(rhai_src, event, expected)),
                )
            }
            None => (None, None),
        };
        let show = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.1}"));
        let ratio =
            |t: Option<f64>, base: f64| t.map_or("-".to_string(), |t| format!("{:.2}", t / base));
        println!(
            "{name:<20} {t_jit:>8.1} {t_interp:>9.1} {:>8} {:>8} {:>8} {:>10.2} {:>8} {:>8} {:>8}",
            show(t_hand),
            show(t_cel),
            show(t_rhai),
            t_interp / t_jit,
            t_hand.map_or("-".to_string(), |h| format!("{:.2}", t_jit / h)),
            ratio(t_cel, t_jit),
            ratio(t_rhai, t_jit),
        );
    }
    let start = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        black_box(Jit::compile(Arc::clone(&program)).unwrap_or_else(|e| panic!("{e}")));
    }
    println!(
        "compiling all {} conditions: {:.2} ms",
        nudge::jit::conditions(&program).len(),
        start.elapsed().as_secs_f64() * 1000.0 / rounds as f64
    );
}

/// The data the CEL and Rhai expressions read: the same gold profile and event,
/// as JSON-like maps (times in seconds).
fn data(event: &str) -> (serde_json::Value, serde_json::Value, i64) {
    let event = match event {
        "cart_abandoned" => {
            serde_json::json!({"cart_value": 180.0, "item_count": 3.0, "category": "shoes", "cart_id": "x"})
        }
        "order_completed" => {
            serde_json::json!({"total": 99.5, "category": "shoes", "order_id": "x"})
        }
        "product_viewed" => serde_json::json!({"price": 45.0, "category": "shoes", "sku": "x"}),
        _ => serde_json::json!({}),
    };
    let profile = serde_json::json!({
        "tier": "gold", "first_name": "Ana", "email": "ana@example.com", "lifetime_value": 420.0,
        "signed_up_at": null,
    });
    (event, profile, 1_796_000_000)
}

fn cel_ns(source: &str, event: &str, expected: bool) -> f64 {
    let program = cel::Program::compile(source).unwrap_or_else(|e| panic!("{source}: {e:?}"));
    let (event, profile, now) = data(event);
    let mut context = cel::Context::default();
    context
        .add_variable("event", event)
        .unwrap_or_else(|e| panic!("{e:?}"));
    context
        .add_variable("profile", profile)
        .unwrap_or_else(|e| panic!("{e:?}"));
    context
        .add_variable("now", now)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let run = || matches!(program.execute(&context), Ok(cel::Value::Bool(true)));
    assert_eq!(run(), expected, "CEL disagrees on {source}");
    per_call(run)
}

fn rhai_ns(source: &str, event: &str, expected: bool) -> f64 {
    let engine = rhai::Engine::new();
    let ast = engine
        .compile_expression(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"));
    let (event, profile, now) = data(event);
    let to_map = |v: serde_json::Value| -> rhai::Dynamic {
        rhai::serde::to_dynamic(v).unwrap_or_else(|e| panic!("{e}"))
    };
    let mut scope = rhai::Scope::new();
    scope.push("event", to_map(event));
    scope.push("profile", to_map(profile));
    scope.push("now", now);
    let mut run = || {
        engine
            .eval_ast_with_scope::<bool>(&mut scope, &ast)
            .unwrap_or(false)
    };
    assert_eq!(run(), expected, "Rhai disagrees on {source}");
    per_call(run)
}
