//! Writing instants as RFC 3339 text (LANGUAGE.md §8): the decisions' `at`,
//! test expectations, explanations — every layer that shows a time.
//!
//! Promise: total over the years 1677–2262 (every `i64` nanosecond instant),
//! and the same text for the same instant everywhere.

const SECOND: i64 = 1_000_000_000;

/// `2026-11-29T10:00:00Z`, with fractional seconds only when not zero (3, 6 or 9
/// digits), as LANGUAGE.md §8 asks.
pub fn rfc3339(nanos: i64) -> String {
    let mut out = String::with_capacity(30);
    write_rfc3339(nanos, &mut out);
    out
}

/// [`rfc3339`], appended to `out` (every decision has one or two: the calendar
/// arithmetic is done here rather than through chrono's general formatter).
pub fn write_rfc3339(nanos: i64, out: &mut String) {
    let seconds = nanos.div_euclid(SECOND);
    let fraction = nanos.rem_euclid(SECOND);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn` at most, then `Z`; years are 1677–2262.
    let mut buf = *b"0000-00-00T00:00:00.000000000";
    let mut put = |at: usize, width: usize, n: i64| {
        let mut n = n;
        for i in (at..at + width).rev() {
            if let Some(b) = buf.get_mut(i) {
                *b = b'0' + (n % 10) as u8;
            }
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    let end = if fraction == 0 {
        19
    } else if fraction % 1_000_000 == 0 {
        put(20, 3, fraction / 1_000_000);
        23
    } else if fraction % 1000 == 0 {
        put(20, 6, fraction / 1000);
        26
    } else {
        put(20, 9, fraction);
        29
    };
    out.push_str(std::str::from_utf8(buf.get(..end).unwrap_or_default()).unwrap_or_default());
    out.push('Z');
}
