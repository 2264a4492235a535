//! A moment in UTC with millisecond precision: what every `…_at` field holds.
//!
//! Sent and stored as RFC 3339 text, `2026-11-25T09:00:00.000Z`, the form the
//! database writes (`strftime('%Y-%m-%dT%H:%M:%fZ')`) and that sorts as text in
//! time order. Pure calendar arithmetic (no clock, no time zone database), so it
//! compiles for the browser as well.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

/// Years 0000–9999: what four digits can say.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// `None` outside the years 0000–9999.
    pub fn from_unix_ms(unix_ms: i64) -> Option<Self> {
        (MIN_MS..=MAX_MS)
            .contains(&unix_ms)
            .then_some(Self { unix_ms })
    }

    pub fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// Year, month, day, hour, minute, second, millisecond.
    fn parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let days = self.unix_ms.div_euclid(86_400_000);
        let ms_of_day = self.unix_ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = (ms_of_day / 1000) as u32;
        (
            y,
            m,
            d,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            (ms_of_day % 1000) as u32,
        )
    }

    /// `2026-11-25 09:00` — to the minute, for tables.
    pub fn minutes(self) -> String {
        let (y, mo, d, h, mi, _, _) = self.parts();
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
    }

    /// `2026-11-25`.
    pub fn date(self) -> String {
        let (y, mo, d, ..) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}")
    }

    /// `09:00:05` — the time of day.
    pub fn clock(self) -> String {
        let (_, _, _, h, mi, s, _) = self.parts();
        format!("{h:02}:{mi:02}:{s:02}")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, ms) = self.parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTimestamp(String);

impl fmt::Display for BadTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a time: expected RFC 3339 such as 2026-11-25T09:00:00.000Z",
            crate::quote::quoted(&self.0)
        )
    }
}

impl std::error::Error for BadTimestamp {}

impl FromStr for Timestamp {
    type Err = BadTimestamp;

    /// RFC 3339: `YYYY-MM-DDTHH:MM:SS`, an optional fraction (kept to the
    /// millisecond), then `Z` or `±HH:MM`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadTimestamp(text.chars().take(64).collect());
        let b = text.as_bytes();
        if b.len() < 20 || !b.is_ascii() {
            return Err(bad());
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = &text[range];
            digits
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| digits.parse().ok())
                .flatten()
        };
        let separators = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        let fields = (
            num(0..4),
            num(5..7),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19),
        );
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = fields else {
            return Err(bad());
        };
        if !separators
            || !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo as u32) as i64
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(bad());
        }
        let mut at = 19;
        let mut ms = 0;
        if b[at] == b'.' {
            let start = at + 1;
            at = start;
            while at < b.len() && b[at].is_ascii_digit() {
                at += 1;
            }
            if at == start {
                return Err(bad());
            }
            let fraction = &text[start..at.min(start + 3)];
            ms =
                fraction.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(3 - fraction.len() as u32);
        }
        let offset_ms = match &text[at..] {
            "Z" | "z" => 0,
            zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
                let (Some(oh), Some(om)) = (num(at + 1..at + 3), num(at + 4..at + 6)) else {
                    return Err(bad());
                };
                if zone.as_bytes()[3] != b':' || oh > 23 || om > 59 {
                    return Err(bad());
                }
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                sign * (oh * 60 + om) * 60_000
            }
            _ => return Err(bad()),
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        let unix_ms = days * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000 + ms - offset_ms;
        Self::from_unix_ms(unix_ms).ok_or_else(bad)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn known_moments() {
        assert_eq!(at("1970-01-01T00:00:00.000Z").unix_ms(), 0);
        assert_eq!(at("2026-11-25T09:00:00.123Z").unix_ms(), 1_795_597_200_123);
        assert_eq!(at("2000-02-29T23:59:59Z").unix_ms(), 951_868_799_000);
        assert_eq!(at("1969-12-31T23:59:59.999Z").unix_ms(), -1);
        assert_eq!(
            at("2026-11-25T10:30:00+01:30"),
            at("2026-11-25T09:00:00.000Z")
        );
        assert_eq!(at("2026-11-25T09:00:00.5Z").unix_ms() % 1000, 500);
        assert_eq!(at("2026-11-25T09:00:00.123456789Z").unix_ms() % 1000, 123);
    }

    #[test]
    fn shown_forms() {
        let t = at("2026-03-07T04:05:06.007Z");
        assert_eq!(t.to_string(), "2026-03-07T04:05:06.007Z");
        assert_eq!(t.minutes(), "2026-03-07 04:05");
        assert_eq!(t.date(), "2026-03-07");
        assert_eq!(t.clock(), "04:05:06");
        assert_eq!(serde_json::to_value(t).unwrap(), "2026-03-07T04:05:06.007Z");
        let back: Timestamp = serde_json::from_value("2026-03-07T04:05:06.007Z".into()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn not_times() {
        for text in [
            "",
            "t",
            "2026-11-25",
            "2026-11-25T09:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T09:60:00Z",
            "2026-11-25T09:00:00.Z",
            "2026-11-25T09:00:00+0100",
            "2026-11-25T09:00:00Zjunk",
            "+026-11-25T09:00:00Z",
            "2026-11-25T09:00:00\u{e9}Z",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text:?} parsed");
        }
        assert!(serde_json::from_value::<Timestamp>("soon".into()).is_err());
    }

    proptest! {
        /// Every representable millisecond prints and parses back to itself,
        /// and the text sorts as the time does.
        #[test]
        fn text_round_trips_and_sorts(a in MIN_MS..=MAX_MS, b in MIN_MS..=MAX_MS) {
            let (ta, tb) = (Timestamp::from_unix_ms(a).unwrap(), Timestamp::from_unix_ms(b).unwrap());
            prop_assert_eq!(ta.to_string().parse::<Timestamp>().unwrap(), ta);
            prop_assert_eq!(ta.to_string().cmp(&tb.to_string()), a.cmp(&b));
        }

        /// Day numbers and dates convert both ways.
        #[test]
        fn civil_days_round_trip(days in -719_528_i64..2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
