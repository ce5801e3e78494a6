//! Instants as milliseconds since the Unix epoch, and their ISO-8601 forms.
//!
//! The API sends every date as `JSON.stringify(new Date())` does:
//! `YYYY-MM-DDTHH:MM:SS.mmmZ`. This module owns that format in both
//! directions, so no date crate is needed and the output is the same on every
//! platform.

use std::fmt;

/// The first instant RFC 3339 can write: 0000-01-01T00:00:00.000Z.
pub const FIRST: Millis = Millis(-62_167_219_200_000);
/// The last instant RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const LAST: Millis = Millis(253_402_300_799_999);

/// A point in time: milliseconds since 1970-01-01T00:00:00Z (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    /// Adds a (possibly negative) number of milliseconds, saturating.
    pub fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Parses an RFC 3339 timestamp such as `2026-01-01T00:00:00Z` or
    /// `2026-01-01T10:30:00.250+02:00`.
    pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
        let bad = |why: &str| format!("`{}` is not an RFC 3339 timestamp: {why}", crate::excerpt::quote(text));
        let b = text.as_bytes();
        if !text.is_ascii() {
            return Err(bad("expected only ASCII digits, `-`, `:`, `T`, `.`, `Z` and `+`"));
        }
        if b.len() < 20 {
            return Err(bad("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
            let part = &text[range];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse::<i64>().map_err(|_| bad("a number is out of range"))
            } else {
                Err(bad("expected digits"))
            }
        };
        if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
            return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(bad("the date does not exist"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(bad("the time of day is out of range"));
        }
        let mut rest = &text[19..];
        let mut millis = 0i64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad("expected digits after the decimal point"));
            }
            // Keep milliseconds; finer digits are truncated, as `new Date()` does.
            let kept = &frac[..digits.min(3)];
            millis = kept.parse::<i64>().map_err(|_| bad("bad fraction"))? * 10i64.pow(3 - kept.len() as u32);
            rest = &frac[digits..];
        }
        let offset_minutes = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                let h = num_in(rest, 1..3).ok_or_else(|| bad("bad offset"))?;
                let m = num_in(rest, 4..6).ok_or_else(|| bad("bad offset"))?;
                if h > 23 || m > 59 {
                    return Err(bad("the offset is out of range"));
                }
                sign * (h * 60 + m)
            }
            _ => return Err(bad("expected Z or an offset such as +02:00 at the end")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Ok(Millis(secs * 1000 + millis))
    }
}

fn num_in(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl Millis {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, exactly as JavaScript's `toISOString`,
    /// as 24 ASCII bytes. An instant outside the years 0000 to 9999 is
    /// written as [`FIRST`] or [`LAST`], so every date sent stays RFC 3339
    /// (the clock keeps a year away from both; only a scenario's own huge
    /// durations get there). Written digit by digit: bodies carry up to a
    /// dozen dates, and `write!` with padding cost ten times as much.
    pub fn iso_bytes(self) -> [u8; 24] {
        let ms = self.0.clamp(FIRST.0, LAST.0);
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        // Every field is in range after the clamp; `% 10` keeps each a digit regardless.
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n.rem_euclid(10)) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, h);
        put(14, 2, m);
        put(17, 2, s);
        put(20, 3, milli);
        out
    }
}

impl fmt::Display for Millis {
    /// See [`Millis::iso_bytes`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.iso_bytes();
        // ASCII digits and separators only.
        f.write_str(std::str::from_utf8(&bytes).unwrap_or_default())
    }
}

impl serde::Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.iso_bytes();
        s.serialize_str(std::str::from_utf8(&bytes).unwrap_or_default())
    }
}

/// Renders a number of seconds as the server's `stringifyDuration` does:
/// `600` → `"10m"`, `5400` → `"1h30m"`, `90061` → `"1d1h1m1s"`.
pub fn duration_string(seconds: u64) -> String {
    let mut out = String::with_capacity(16);
    write_duration(&mut out, seconds);
    out
}

/// True when `text` is what [`duration_string`] writes for `seconds`
/// (compared as it is written: no string is built).
pub fn is_duration_string(text: &str, seconds: u64) -> bool {
    /// What is left of the text to match, or `None` once it differs.
    struct Rest<'a>(Option<&'a str>);
    impl std::fmt::Write for Rest<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 = self.0.and_then(|rest| rest.strip_prefix(s));
            Ok(())
        }
    }
    let mut rest = Rest(Some(text));
    write_duration(&mut rest, seconds);
    rest.0 == Some("")
}

fn write_duration(out: &mut impl std::fmt::Write, mut seconds: u64) {
    if seconds == 0 {
        let _ = out.write_str("0s");
    }
    for (unit, size) in [('w', 604_800), ('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)] {
        if seconds >= size {
            let _ = write!(out, "{}{unit}", seconds / size);
            seconds %= size;
        }
    }
}

/// Parses a duration such as `"10m"`, `"1h42m"`, `"30s"` or `"2d"` into
/// seconds. Units: `w`, `d`, `h`, `m`, `s`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let size = match c {
            'w' => 604_800,
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(size)?)?;
        digits.clear();
        any = true;
    }
    (any && digits.is_empty()).then_some(total)
}

/// [`parse_duration`] in milliseconds; `None` for zero, nonsense, or a
/// duration too long to be represented.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    parse_duration(text).filter(|s| *s > 0).and_then(|s| i64::try_from(s).ok()?.checked_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(Millis(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Millis(1_735_689_605_000).to_string(), "2025-01-01T00:00:05.000Z");
        assert_eq!(Millis(951_782_400_123).to_string(), "2000-02-29T00:00:00.123Z");
        assert_eq!(Millis(-1).to_string(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_instant_is_written_within_rfc_3339() {
        assert_eq!(FIRST.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(LAST.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Millis::parse_rfc3339("0000-01-01T00:00:00Z"), Ok(FIRST));
        assert_eq!(Millis::parse_rfc3339("9999-12-31T23:59:59.999Z"), Ok(LAST));
        for (ms, text) in [
            (FIRST.0 - 1, "0000-01-01T00:00:00.000Z"),
            (i64::MIN, "0000-01-01T00:00:00.000Z"),
            (LAST.0 + 1, "9999-12-31T23:59:59.999Z"),
            (i64::MAX, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(Millis(ms).to_string(), text, "{ms}");
        }
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_fractions() {
        assert_eq!(Millis::parse_rfc3339("2025-01-01T00:00:05Z"), Ok(Millis(1_735_689_605_000)));
        assert_eq!(Millis::parse_rfc3339("2025-01-01T02:00:05.5+02:00"), Ok(Millis(1_735_689_605_500)));
        assert_eq!(Millis::parse_rfc3339("2000-02-29T00:00:00.123456Z"), Ok(Millis(951_782_400_123)));
    }

    #[test]
    fn the_digit_writer_agrees_with_padded_formatting() {
        // Spread over the whole range, leap days and the edges included.
        let mut ms = FIRST.0;
        while ms <= LAST.0 {
            let days = ms.div_euclid(86_400_000);
            let in_day = ms.rem_euclid(86_400_000);
            let (y, mo, d) = civil_from_days(days);
            let (h, mi, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
            let padded = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z");
            assert_eq!(Millis(ms).to_string(), padded);
            assert_eq!(serde_json::to_string(&Millis(ms)).unwrap_or_default(), format!("\"{padded}\""));
            ms += 86_399_997_123 / 7;
        }
    }

    #[test]
    fn round_trips() {
        for ms in [0, 1, 86_399_999, 1_735_689_605_123, 4_102_444_800_000] {
            let text = Millis(ms).to_string();
            assert_eq!(Millis::parse_rfc3339(&text), Ok(Millis(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_bad_timestamps() {
        for bad in [
            "",
            "2025-01-01",
            "2025-02-30T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+2:00",
            "20x5-01-01T00:00:00Z",
            "2025-01-01T00:00:00Zjunk",
        ] {
            assert!(Millis::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_render_and_parse() {
        assert_eq!(duration_string(600), "10m");
        assert_eq!(duration_string(5400), "1h30m");
        assert_eq!(duration_string(90_061), "1d1h1m1s");
        for (text, seconds, is) in [("10m", 600, true), ("600s", 600, false), ("10m0s", 600, false), ("1", 60, false)] {
            assert_eq!(is_duration_string(text, seconds), is, "{text}");
        }
        for seconds in [0, 1, 59, 60, 3599, 3600, 86_399, 604_800, 1_000_000, u64::MAX] {
            assert!(is_duration_string(&duration_string(seconds), seconds), "{seconds}");
            assert!(!is_duration_string(&format!("{}x", duration_string(seconds)), seconds));
        }
        assert_eq!(parse_duration("1h42m"), Some(6120));
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration_ms("10m"), Some(600_000));
        assert_eq!(parse_duration_ms("0s"), None);
        assert_eq!(parse_duration_ms("10000000000000000s"), None);
        assert_eq!(parse_duration("99999999999999999999w"), None);
    }
}
