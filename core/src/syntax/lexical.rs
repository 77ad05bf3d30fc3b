//! Lexical facts both the tree builder and the error messages use (a leaf of
//! `syntax`: it imports nothing from it): duration units, and the code part
//! of a line.

/// Seconds per duration unit (`s`, `m`, `h`, `d`, `w`).
pub(crate) fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        "w" => Some(604_800),
        _ => None,
    }
}

/// The unit a user probably meant by a spelled-out one (`min`, `Hours` …).
pub(crate) fn suggest_unit(unit: &str) -> Option<&'static str> {
    match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "m" | "min" | "mins" | "minute" | "minutes" | "mn" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "d" | "day" | "days" => Some("d"),
        "w" | "wk" | "wks" | "week" | "weeks" => Some("w"),
        _ => None,
    }
}

/// The part of a line before a `//` comment that is not inside a string.
pub(crate) fn code_part(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}
