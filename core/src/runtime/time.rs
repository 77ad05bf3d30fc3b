//! Event time: RFC 3339 timestamps, local times in a profile's zone, quiet hours.
//!
//! Times are nanoseconds since the Unix epoch (UTC). A local time that does not
//! exist (a spring-forward gap) or exists twice (a fall-back overlap) is resolved
//! with the "compatible" rule of RFC 5545 and Temporal: in a gap, read it with the
//! offset in force before the gap (02:30 becomes 03:30); in an overlap, take the
//! earlier instant.

use crate::ir::Quiet;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike,
};
use chrono_tz::Tz;

pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const DAY: i64 = 86_400 * SECOND;

/// Parses an RFC 3339 timestamp into nanoseconds; `None` when invalid or outside
/// the years 1677–2262.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    // Every event has a timestamp, nearly always in one shape: that shape is read
    // here, anything else (lower-case `t`, a leap second, …) by chrono.
    fast_rfc3339(text.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()?
            .timestamp_nanos_opt()
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, or `None` to let chrono decide.
fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if at(i, b'.') {
        let digits = b
            .get(i + 1..)?
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(i + 1, digits)? * 10i64.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let offset = match b.get(i)? {
        b'Z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && at(i + 3, b':') => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    // Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    seconds.checked_mul(SECOND)?.checked_add(nanos)
}

pub use crate::stdx::rfc3339::{rfc3339, write_rfc3339};

fn local(tz: Tz, t: i64) -> NaiveDateTime {
    tz.timestamp_nanos(t).naive_local()
}

/// The instant a local date and time names in `tz`, by the compatible rule.
pub fn resolve(tz: Tz, naive: NaiveDateTime) -> i64 {
    let as_utc = |offset_seconds: i32| {
        (naive - Duration::seconds(i64::from(offset_seconds)))
            .and_utc()
            .timestamp_nanos_opt()
            .unwrap_or(i64::MAX)
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => {
            as_utc(dt.offset().fix().local_minus_utc())
        }
        LocalResult::None => {
            // In a gap: the offset of the last local time before it.
            let mut probe = naive;
            for _ in 0..(4 * 48) {
                probe -= Duration::minutes(15);
                if let LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) =
                    tz.from_local_datetime(&probe)
                {
                    return as_utc(dt.offset().fix().local_minus_utc());
                }
            }
            as_utc(0)
        }
    }
}

fn at_minutes(date: NaiveDate, minutes: u16) -> NaiveDateTime {
    let time = NaiveTime::from_hms_opt(u32::from(minutes / 60) % 24, u32::from(minutes % 60), 0)
        .unwrap_or(NaiveTime::MIN);
    date.and_time(time)
}

/// The next instant strictly after `t` at which the local clock in `tz` reads
/// `minutes` after midnight.
pub fn next_local_time(tz: Tz, t: i64, minutes: u16) -> i64 {
    let mut date = local(tz, t).date();
    for _ in 0..3 {
        let candidate = resolve(tz, at_minutes(date, minutes));
        if candidate > t {
            return candidate;
        }
        date = date.succ_opt().unwrap_or(date);
    }
    t.saturating_add(DAY)
}

/// (1.1) The first instant strictly after `t` at which a schedule runs in
/// `tz`: local time `minutes` on a day of `days` (by the compatible rule);
/// `None` once a one-off schedule is past.
pub fn next_occurrence(tz: Tz, t: i64, days: crate::ir::Days, minutes: u16) -> Option<i64> {
    match days {
        crate::ir::Days::Once { year, month, day } => {
            let date = NaiveDate::from_ymd_opt(year, month, day)?;
            let at = resolve(tz, at_minutes(date, minutes));
            (at > t).then_some(at)
        }
        crate::ir::Days::Every(mask) if mask & 0x7f != 0 => {
            let mut date = local(tz, t).date();
            // A week and a day covers every weekday, whatever the offset.
            for _ in 0..9 {
                let weekday = date.weekday().num_days_from_monday();
                if mask & (1 << weekday) != 0 {
                    let at = resolve(tz, at_minutes(date, minutes));
                    if at > t {
                        return Some(at);
                    }
                }
                date = date.succ_opt()?;
            }
            None
        }
        crate::ir::Days::Every(_) => None,
    }
}

/// The start of the local day that contains `t`.
pub fn start_of_day(tz: Tz, t: i64) -> i64 {
    resolve(tz, at_minutes(local(tz, t).date(), 0))
}

/// The start of the local week (Monday 00:00) that contains `t`.
pub fn start_of_week(tz: Tz, t: i64) -> i64 {
    let date = local(tz, t).date();
    let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
    resolve(tz, at_minutes(monday, 0))
}

/// Whether local time at `t` falls in the window (`from` inclusive, `to`
/// exclusive; wrapping midnight when `from > to`; empty when equal).
pub fn in_quiet(tz: Tz, t: i64, q: Quiet) -> bool {
    let l = local(tz, t);
    let s = l.num_seconds_from_midnight();
    let (from, to) = (u32::from(q.from) * 60, u32::from(q.to) * 60);
    match from.cmp(&to) {
        std::cmp::Ordering::Less => from <= s && s < to,
        std::cmp::Ordering::Greater => s >= from || s < to,
        std::cmp::Ordering::Equal => false,
    }
}

/// When the window that contains `t` ends.
fn window_end(tz: Tz, t: i64, q: Quiet) -> i64 {
    let l = local(tz, t);
    let s = l.num_seconds_from_midnight();
    let date = if q.from > q.to && s >= u32::from(q.from) * 60 {
        l.date().succ_opt().unwrap_or(l.date())
    } else {
        l.date()
    };
    let end = resolve(tz, at_minutes(date, q.to));
    // A window end that a DST shift moved to or before `t` ends at the next minute.
    if end > t { end } else { t + MINUTE }
}

/// The first instant at or after `t` outside every window in `windows`.
pub fn quiet_end(tz: Tz, t: i64, windows: &[Quiet]) -> i64 {
    let mut at = t;
    // Each round leaves one window; overlapping windows need a few.
    for _ in 0..(2 * windows.len() + 2) {
        match windows.iter().find(|q| in_quiet(tz, at, **q)) {
            Some(q) => at = window_end(tz, at, *q),
            None => return at,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    /// The hand-written formatter against chrono's, over the whole range of
    /// times (1677–2262), at every precision.
    #[test]
    fn formats_like_chrono() {
        use chrono::{SecondsFormat, TimeZone, Utc};
        let chrono = |n: i64| {
            Utc.timestamp_nanos(n)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        };
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases = vec![i64::MIN, i64::MAX, 0, -1, 1, 951_782_400 * SECOND, -SECOND];
        for _ in 0..20_000 {
            let n = next() as i64;
            cases.extend([n, n - n % SECOND, n - n % 1_000_000, n - n % 1000]);
        }
        for n in cases {
            assert_eq!(rfc3339(n), chrono(n), "{n}");
        }
    }

    /// The fast reader of timestamps against chrono's, on well-formed times
    /// across the range, every precision and offset, and on near misses.
    #[test]
    fn parses_like_chrono() {
        let chrono = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
        };
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases: Vec<String> = [
            "2026-11-29T10:00:00Z",
            "2024-02-29T23:59:59.999999999-12:30",
            "2023-02-29T00:00:00Z",
            "1677-09-21T00:12:43.145224192Z",
            "1677-09-21T00:12:43.145224191Z",
            "2262-04-11T23:47:16.854775807Z",
            "2262-04-11T23:47:16.854775808Z",
            "2026-11-29T10:00:60Z",
            "2026-11-29t10:00:00z",
            "2026-11-29 10:00:00Z",
            "2026-11-29T10:00:00.Z",
            "2026-11-29T10:00:00.1234567891Z",
            "2026-11-29T10:00:00+24:00",
            "2026-11-29T10:00:00+01:60",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T10:00",
            "+2026-11-29T10:00:00Z",
            "2026-11-29T10:00:00Z ",
            "2026-11-29T10:00:00+0100",
            "2026-11-29T1a:00:00Z",
            "",
            "2000-02-29T12:00:00.5+05:45",
            "1900-02-29T00:00:00Z",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..20_000 {
            let r = next();
            let nanos = (r % 1_000_000_000) as i64;
            let digits = (r >> 32) % 10;
            let fraction = match digits {
                0 => String::new(),
                d => format!(".{}", &format!("{nanos:09}")[..d as usize]),
            };
            let offset = match (r >> 40) % 3 {
                0 => "Z".to_string(),
                1 => format!("+{:02}:{:02}", (r >> 44) % 25, (r >> 50) % 61),
                _ => format!("-{:02}:{:02}", (r >> 44) % 25, (r >> 50) % 61),
            };
            cases.push(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{offset}",
                1600 + (r >> 8) % 700,
                (r >> 16) % 14,
                (r >> 20) % 33,
                (r >> 26) % 25,
                (r >> 2) % 61,
                (r >> 5) % 61
            ));
        }
        for case in &cases {
            assert_eq!(parse_rfc3339(case), chrono(case), "{case:?}");
        }
        // The usual shapes do take the fast path.
        for usual in [
            "2026-11-29T10:00:00Z",
            "2024-02-29T10:00:00.25+01:00",
            "2026-03-29T01:30:00-05:00",
        ] {
            assert_eq!(fast_rfc3339(usual.as_bytes()), chrono(usual), "{usual}");
            assert!(fast_rfc3339(usual.as_bytes()).is_some(), "{usual}");
        }
    }

    #[test]
    fn formats_fractions_only_when_present() {
        assert_eq!(rfc3339(t("2026-11-29T10:00:00Z")), "2026-11-29T10:00:00Z");
        assert_eq!(
            rfc3339(t("2026-11-29T10:00:00.5Z")),
            "2026-11-29T10:00:00.500Z"
        );
        assert_eq!(
            rfc3339(t("2026-11-29T11:00:00.000001+01:00")),
            "2026-11-29T10:00:00.000001Z"
        );
    }

    #[test]
    fn spring_forward_gap_reads_with_the_offset_before() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 02:30 does not exist in New York; it is 03:30 EDT = 07:30Z.
        let naive = NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(rfc3339(resolve(ny, naive)), "2026-03-08T07:30:00Z");
    }

    #[test]
    fn fall_back_overlap_takes_the_earlier_instant() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-11-01 01:30 happens twice; the first time is EDT (-4).
        let naive = NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(rfc3339(resolve(ny, naive)), "2026-11-01T05:30:00Z");
    }

    #[test]
    fn next_local_time_is_strictly_after() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        // 09:00 in Paris is 08:00Z; at exactly that instant the next one is tomorrow.
        assert_eq!(
            rfc3339(next_local_time(paris, t("2026-11-29T08:00:00Z"), 9 * 60)),
            "2026-11-30T08:00:00Z"
        );
        assert_eq!(
            rfc3339(next_local_time(paris, t("2026-11-29T07:59:00Z"), 9 * 60)),
            "2026-11-29T08:00:00Z"
        );
    }

    #[test]
    fn quiet_windows_wrap_midnight_and_chain() {
        let utc: Tz = "UTC".parse().unwrap();
        let night = Quiet {
            from: 21 * 60,
            to: 9 * 60,
        };
        assert!(in_quiet(utc, t("2026-11-29T23:00:00Z"), night));
        assert!(in_quiet(utc, t("2026-11-29T03:00:00Z"), night));
        assert!(!in_quiet(utc, t("2026-11-29T09:00:00Z"), night));
        assert!(in_quiet(utc, t("2026-11-29T21:00:00Z"), night));
        assert_eq!(
            rfc3339(quiet_end(utc, t("2026-11-29T23:00:00Z"), &[night])),
            "2026-11-30T09:00:00Z"
        );
        let late = Quiet {
            from: 22 * 60,
            to: 10 * 60,
        };
        assert_eq!(
            rfc3339(quiet_end(utc, t("2026-11-29T23:00:00Z"), &[night, late])),
            "2026-11-30T10:00:00Z"
        );
    }
}
