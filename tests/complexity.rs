//! Size-doubling tests (the reliability issue): `nudge check` is linear in the
//! number of declarations, and "did you mean" in the length of the name, however
//! hostile the input. Each compares two sizes in one test and asserts the ratio
//! of work, never an absolute time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use std::time::Instant;

/// The best of three timings of `f`, to keep a noisy moment out of the ratio.
fn best_of_three(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// `n` journeys and templates, a third of them with a warning to report.
fn policy_set(n: usize) -> String {
    let mut text = String::from(
        "consent email_marketing opt_out\nprofile { email: string? }\nevent e { x: number }\nchannel email { address profile.email consent email_marketing }\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "template t{i} {{ email {{ subject: \"Hello {i}\" }} }}\njourney j{i} {{\n  owner \"x\"\n  when e where event.x > {i}\n  send t{i} via email\n}}\n"
        ));
        if i % 3 == 0 {
            text.push_str(&format!(
                "template unused{i} {{ email {{ subject: \"x\" }} }}\n"
            ));
        }
    }
    text
}

fn check_cost(n: usize) -> f64 {
    let text = policy_set(n);
    best_of_three(|| {
        let mut sources = nudge::Sources::new();
        sources.add("big.nudge", text.clone());
        let analysis = nudge::analyze(&sources);
        assert!(!analysis.has_errors());
    })
}

#[test]
fn check_is_linear_in_the_number_of_declarations() {
    let (small, large) = (check_cost(1_000), check_cost(2_000));
    let ratio = large / small;
    assert!(
        ratio < 3.2,
        "doubling the declarations multiplied the work by {ratio:.2}"
    );
}

#[test]
fn did_you_mean_is_linear_in_the_names_length() {
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    let cost = |len: usize| {
        let name = "Q".repeat(len);
        best_of_three(|| {
            for _ in 0..50 {
                let _ = nudge::diagnostic::did_you_mean(&name, zones.iter().copied());
            }
        })
    };
    // Names far longer than any candidate: the search must not grow with them.
    let (small, large) = (cost(20_000), cost(40_000));
    let ratio = large / small;
    assert!(
        ratio < 3.2,
        "doubling the name multiplied the work by {ratio:.2}"
    );
    // And a hostile default is one diagnostic, found quickly.
    let mut sources = nudge::Sources::new();
    sources.add(
        "zone.nudge",
        format!(
            "profile {{ timezone: timezone = \"{}\" }}\n",
            "Z".repeat(200_000)
        ),
    );
    let analysis = nudge::analyze(&sources);
    assert_eq!(analysis.diagnostics.len(), 1);
}
