//! Freeze windows' arithmetic: when a window is in force, its next occurrences, and how much of
//! an interval falls inside an environment's windows. Pure (no I/O, no clock): every instant is
//! milliseconds since the epoch, given by the caller.
//!
//! Weekly windows are wall-clock times in an IANA time zone (jiff, with its bundled time zone
//! database), so this module is server-side only: the domain crate, also compiled for the
//! browser, does not carry a time zone database; the API sends computed UTC instants instead.
//!
//! Wall times that do not exist or exist twice (daylight saving time changes) resolve so:
//! - a wall time skipped by a gap (02:30 on the day clocks jump from 02:00 to 03:00) is the
//!   first instant after the gap, the transition itself (03:00 in the new offset), for a start
//!   and an end alike;
//! - a wall time repeated by a fold (02:30 on the day clocks fall back from 03:00 to 02:00) is
//!   its earlier instant for a start and its later instant for an end, so a window covers every
//!   instant at which the wall clock shows a time inside it.
//!
//! A weekly window starts at `from_day from_time` and ends at the first `to_day to_time` after
//! it (so Friday 16:00 to Monday 08:00 crosses the week's end); an occurrence that resolves to
//! no time at all (both ends inside one gap) is skipped.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
const WEEK_MINUTES: i64 = 7 * 1440;

/// Window ends are searched at most this far back before an instant: a weekly window lasts
/// less than a week, stretched by at most a day by time zone changes.
const LOOKBACK_MS: i64 = WEEK_MS + 2 * DAY_MS;

/// The most occurrences of one weekly window looked at for one interval (about 19 years).
const MAX_WEEKS: usize = 1000;

/// The day names the API takes, Monday first.
pub const DAYS: [&str; 7] = crate::model::WEEKDAYS;

/// A half-open interval of instants, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Span {
    pub fn contains(self, at_ms: i64) -> bool {
        self.start_ms <= at_ms && at_ms < self.end_ms
    }
}

/// A day of the week and a wall time on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekTime {
    pub day: Weekday,
    pub hour: i8,
    pub minute: i8,
}

impl WeekTime {
    /// Parses a day name (`monday` … `sunday`) and `HH:MM`; the error says which is wrong.
    pub fn parse(day: &str, time: &str) -> Result<Self, WeekTimeError> {
        let day = DAYS
            .iter()
            .position(|d| *d == day)
            .and_then(|i| Weekday::from_monday_zero_offset(i as i8).ok())
            .ok_or(WeekTimeError::Day)?;
        let (h, m) = time.split_once(':').ok_or(WeekTimeError::Time)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(WeekTimeError::Time);
        }
        let (hour, minute): (i8, i8) = (h.parse().unwrap_or(99), m.parse().unwrap_or(99));
        if hour > 23 || minute > 59 {
            return Err(WeekTimeError::Time);
        }
        Ok(Self { day, hour, minute })
    }

    /// Minutes since Monday 00:00.
    fn minute_of_week(self) -> i64 {
        i64::from(self.day.to_monday_zero_offset()) * 1440
            + i64::from(self.hour) * 60
            + i64::from(self.minute)
    }

    pub fn day_name(self) -> &'static str {
        DAYS[self.day.to_monday_zero_offset() as usize]
    }

    /// `HH:MM`.
    pub fn time(self) -> String {
        format!("{:02}:{:02}", self.hour, self.minute)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeekTimeError {
    Day,
    Time,
}

/// A weekly window in a time zone.
#[derive(Debug, Clone)]
pub struct Weekly {
    pub from: WeekTime,
    pub to: WeekTime,
    pub zone: TimeZone,
}

/// Looks up an IANA time zone name in the bundled database.
pub fn zone(name: &str) -> Option<TimeZone> {
    // A fixed offset or a POSIX rule is no IANA name; the database knows only names.
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    TimeZone::get(name).ok()
}

impl Weekly {
    /// `None` when both ends are the same wall time (a window that never ends).
    pub fn new(from: WeekTime, to: WeekTime, zone: TimeZone) -> Option<Self> {
        (from != to).then_some(Self { from, to, zone })
    }

    /// Days from the start's date to the end's: the end is the first `to` after `from`.
    fn days_to_end(&self) -> i64 {
        let minutes =
            (self.to.minute_of_week() - self.from.minute_of_week()).rem_euclid(WEEK_MINUTES);
        (i64::from(self.from.hour) * 60 + i64::from(self.from.minute) + minutes) / 1440
    }

    /// The occurrence starting on `date` (a `from.day`), if it is any time at all.
    fn occurrence_on(&self, date: Date) -> Option<Span> {
        let start = date.at(self.from.hour, self.from.minute, 0, 0);
        let end_date = date
            .checked_add(jiff::Span::new().days(self.days_to_end()))
            .ok()?;
        let end = end_date.at(self.to.hour, self.to.minute, 0, 0);
        let span = Span {
            start_ms: instant(&self.zone, start, Fold::Earlier)?,
            end_ms: instant(&self.zone, end, Fold::Later)?,
        };
        (span.end_ms > span.start_ms).then_some(span)
    }

    /// Occurrences in start order, from the first that ends after `after_ms`.
    fn occurrences(&self, after_ms: i64) -> impl Iterator<Item = Span> + '_ {
        let first = jiff::Timestamp::from_millisecond(after_ms - LOOKBACK_MS)
            .ok()
            .map(|t| self.zone.to_datetime(t).date())
            .and_then(|d| {
                let ahead = i64::from(
                    (self.from.day.to_monday_zero_offset() - d.weekday().to_monday_zero_offset())
                        .rem_euclid(7),
                );
                d.checked_add(jiff::Span::new().days(ahead)).ok()
            });
        let mut date = first;
        std::iter::from_fn(move || {
            let d = date?;
            date = d.checked_add(jiff::Span::new().days(7)).ok();
            Some(d)
        })
        .take(MAX_WEEKS)
        .filter_map(|d| self.occurrence_on(d))
        .skip_while(move |s| s.end_ms <= after_ms)
    }
}

#[derive(Clone, Copy)]
enum Fold {
    Earlier,
    Later,
}

/// The instant a wall time stands for in `zone`, by the rules in this module's documentation.
fn instant(zone: &TimeZone, dt: DateTime, fold: Fold) -> Option<i64> {
    let ts = match zone.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
        AmbiguousOffset::Gap { before, .. } => {
            // With the offset from before the gap the wall time lands after the transition;
            // the transition is the first instant whose wall time is past the skipped one.
            let past = before.to_timestamp(dt).ok()?;
            zone.preceding(past).next()?.timestamp()
        }
        AmbiguousOffset::Fold { before, after } => match fold {
            Fold::Earlier => before.to_timestamp(dt).ok()?,
            Fold::Later => after.to_timestamp(dt).ok()?,
        },
    };
    Some(ts.as_millisecond())
}

/// A freeze window's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// One-off, `[from, to)`.
    Once(Span),
    Weekly(Weekly),
}

impl Schedule {
    /// Occurrences in start order, from the first that ends after `after_ms`.
    pub fn occurrences(&self, after_ms: i64) -> Box<dyn Iterator<Item = Span> + '_> {
        match self {
            Schedule::Once(span) => {
                Box::new(std::iter::once(*span).filter(move |s| s.end_ms > after_ms))
            }
            Schedule::Weekly(w) => Box::new(w.occurrences(after_ms)),
        }
    }

    /// The occurrence in force at `at_ms`.
    pub fn active_at(&self, at_ms: i64) -> Option<Span> {
        self.occurrences(at_ms).next().filter(|s| s.contains(at_ms))
    }

    /// The occurrence in force at `at_ms` (if any) and the `n` after it.
    pub fn next(&self, at_ms: i64, n: usize) -> Vec<Span> {
        let mut spans = self.occurrences(at_ms).peekable();
        let current = spans.next_if(|s| s.contains(at_ms));
        current.into_iter().chain(spans.take(n)).collect()
    }

    /// Its occurrences' parts inside `within`.
    fn clipped(&self, within: Span) -> impl Iterator<Item = Span> + '_ {
        self.occurrences(within.start_ms)
            .take_while(move |s| s.start_ms < within.end_ms)
            .map(move |s| Span {
                start_ms: s.start_ms.max(within.start_ms),
                end_ms: s.end_ms.min(within.end_ms),
            })
    }
}

/// Which of `schedules` holds at `at_ms`, and until when the freeze lasts: the window in force
/// that ends last, and the end of the unbroken frozen time from `at_ms` on (windows that
/// overlap or touch it chain it).
pub fn frozen_at(schedules: &[Schedule], at_ms: i64) -> Option<(usize, i64)> {
    let (index, span) = schedules
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.active_at(at_ms).map(|span| (i, span)))
        .max_by_key(|(_, span)| span.end_ms)?;
    let mut until = span.end_ms;
    // Each pass extends `until` by a window in force at it; at most one pass per window and
    // occurrence chained, bounded by the windows' count times a few weeks in practice.
    for _ in 0..schedules.len() * 8 {
        let next = schedules
            .iter()
            .filter_map(|s| s.active_at(until))
            .map(|s| s.end_ms)
            .max();
        match next {
            Some(end) if end > until => until = end,
            _ => break,
        }
    }
    Some((index, until))
}

/// How many milliseconds of `within` fall inside at least one of `schedules`.
pub fn overlap_ms(schedules: &[Schedule], within: Span) -> i64 {
    if within.end_ms <= within.start_ms {
        return 0;
    }
    let mut spans: Vec<Span> = schedules.iter().flat_map(|s| s.clipped(within)).collect();
    spans.sort();
    let mut total = 0;
    let mut covered_to = within.start_ms;
    for s in spans {
        let start = s.start_ms.max(covered_to);
        if s.end_ms > start {
            total += s.end_ms - start;
            covered_to = s.end_ms;
        }
    }
    total
}

/// The wall time of `at_ms` in `zone`: `Monday 2026-03-30 08:00 CEST`.
pub fn wall_time(zone: &TimeZone, at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms).map_or_else(
        |_| at_ms.to_string(),
        |t| {
            t.to_zoned(zone.clone())
                .strftime("%A %Y-%m-%d %H:%M %Z")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339
            .parse::<crate::domain::time::Timestamp>()
            .unwrap()
            .unix_ms()
    }

    fn weekly(from: (&str, &str), to: (&str, &str), zone_name: &str) -> Schedule {
        Schedule::Weekly(
            Weekly::new(
                WeekTime::parse(from.0, from.1).unwrap(),
                WeekTime::parse(to.0, to.1).unwrap(),
                zone(zone_name).unwrap(),
            )
            .unwrap(),
        )
    }

    fn span(from: &str, to: &str) -> Span {
        Span {
            start_ms: ms(from),
            end_ms: ms(to),
        }
    }

    #[test]
    fn days_times_and_zones_parse_strictly() {
        assert_eq!(
            WeekTime::parse("friday", "16:00").unwrap(),
            WeekTime {
                day: Weekday::Friday,
                hour: 16,
                minute: 0
            }
        );
        assert_eq!(WeekTime::parse("Friday", "16:00"), Err(WeekTimeError::Day));
        assert_eq!(WeekTime::parse("fri", "16:00"), Err(WeekTimeError::Day));
        for bad in [
            "24:00", "16:60", "4:00", "16:0", "16-00", "", "+1:00", "16:00:00",
        ] {
            assert_eq!(
                WeekTime::parse("monday", bad),
                Err(WeekTimeError::Time),
                "{bad}"
            );
        }
        assert!(zone("Europe/Berlin").is_some());
        assert!(zone("America/New_York").is_some());
        assert!(zone("Mars/Olympus").is_none());
        assert!(zone("").is_none());
        let same = WeekTime::parse("monday", "08:00").unwrap();
        assert!(Weekly::new(same, same, zone("UTC").unwrap()).is_none());
    }

    #[test]
    fn a_weekend_window_in_berlin_follows_its_offset_and_crosses_the_week_end() {
        let w = weekly(("friday", "16:00"), ("monday", "08:00"), "Europe/Berlin");
        // Winter (CET, +01:00): Friday 2026-12-04 16:00 is 15:00 UTC.
        assert_eq!(
            w.active_at(ms("2026-12-05T12:00:00Z")),
            Some(span("2026-12-04T15:00:00Z", "2026-12-07T07:00:00Z"))
        );
        assert_eq!(w.active_at(ms("2026-12-07T07:00:00Z")), None);
        assert_eq!(w.active_at(ms("2026-12-04T14:59:59Z")), None);
        // Summer (CEST, +02:00).
        assert_eq!(
            w.active_at(ms("2026-07-05T23:00:00Z")),
            Some(span("2026-07-03T14:00:00Z", "2026-07-06T06:00:00Z"))
        );
        let next = w.next(ms("2026-12-05T12:00:00Z"), 3);
        assert_eq!(next.len(), 4);
        assert_eq!(next[0].start_ms, ms("2026-12-04T15:00:00Z"));
        assert_eq!(next[3].start_ms, ms("2026-12-25T15:00:00Z"));
        assert_eq!(
            w.next(ms("2026-12-07T12:00:00Z"), 3)[0].start_ms,
            ms("2026-12-11T15:00:00Z")
        );
    }

    #[test]
    fn a_window_from_sunday_night_to_monday_morning_crosses_the_week_boundary() {
        let w = weekly(("sunday", "22:00"), ("monday", "06:00"), "UTC");
        assert_eq!(
            w.active_at(ms("2026-12-07T01:00:00Z")),
            Some(span("2026-12-06T22:00:00Z", "2026-12-07T06:00:00Z"))
        );
        assert_eq!(w.active_at(ms("2026-12-06T21:59:00Z")), None);
        // Monday 08:00 to Monday 07:59 lasts all week but a minute.
        let long = weekly(("monday", "08:00"), ("monday", "07:59"), "UTC");
        assert_eq!(
            long.active_at(ms("2026-12-07T07:00:00Z")),
            Some(span("2026-11-30T08:00:00Z", "2026-12-07T07:59:00Z"))
        );
        assert_eq!(long.active_at(ms("2026-12-07T07:59:30Z")), None);
    }

    #[test]
    fn a_start_skipped_by_the_spring_gap_is_the_transition() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
        let w = weekly(("sunday", "02:30"), ("sunday", "05:00"), "Europe/Berlin");
        assert_eq!(
            w.active_at(ms("2026-03-29T01:00:00Z")),
            Some(span("2026-03-29T01:00:00Z", "2026-03-29T03:00:00Z"))
        );
        assert_eq!(w.active_at(ms("2026-03-29T00:59:59Z")), None);
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
        let w = weekly(("sunday", "02:15"), ("sunday", "03:30"), "America/New_York");
        assert_eq!(
            w.next(ms("2026-03-07T00:00:00Z"), 0),
            Vec::<Span>::new(),
            "nothing in force"
        );
        assert_eq!(
            w.next(ms("2026-03-07T00:00:00Z"), 1),
            vec![span("2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z")]
        );
        // A window wholly inside the gap does not happen that week.
        let w = weekly(("sunday", "02:10"), ("sunday", "02:40"), "America/New_York");
        assert_eq!(
            w.next(ms("2026-03-07T00:00:00Z"), 1),
            vec![span("2026-03-15T06:10:00Z", "2026-03-15T06:40:00Z")]
        );
    }

    #[test]
    fn a_window_covers_both_passes_of_an_autumn_fold() {
        // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:30 happens
        // at 00:30 UTC and at 01:30 UTC. A start takes the first, an end the second.
        let w = weekly(("sunday", "02:30"), ("sunday", "04:00"), "Europe/Berlin");
        assert_eq!(
            w.active_at(ms("2026-10-25T00:30:00Z")),
            Some(span("2026-10-25T00:30:00Z", "2026-10-25T03:00:00Z"))
        );
        let w = weekly(
            ("saturday", "22:00"),
            ("sunday", "01:30"),
            "America/New_York",
        );
        // New York, 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and 06:30 UTC (EST).
        assert_eq!(
            w.active_at(ms("2026-11-01T06:00:00Z")),
            Some(span("2026-11-01T02:00:00Z", "2026-11-01T06:30:00Z"))
        );
    }

    #[test]
    fn freezes_chain_and_overlaps_count_once() {
        let once = Schedule::Once(span("2026-12-04T10:00:00Z", "2026-12-04T12:00:00Z"));
        let later = Schedule::Once(span("2026-12-04T11:00:00Z", "2026-12-04T14:00:00Z"));
        let after = Schedule::Once(span("2026-12-04T14:00:00Z", "2026-12-04T15:00:00Z"));
        let all = [once, later, after];
        assert_eq!(
            frozen_at(&all, ms("2026-12-04T10:30:00Z")),
            Some((0, ms("2026-12-04T15:00:00Z")))
        );
        assert_eq!(
            frozen_at(&all, ms("2026-12-04T11:30:00Z")),
            Some((1, ms("2026-12-04T15:00:00Z")))
        );
        assert_eq!(frozen_at(&all, ms("2026-12-04T15:00:00Z")), None);
        assert_eq!(
            overlap_ms(&all, span("2026-12-04T09:00:00Z", "2026-12-04T16:00:00Z")),
            5 * 3_600_000
        );
        // A step held 10 minutes whose hold met a 3-minute freeze.
        let freeze = [Schedule::Once(span(
            "2026-12-04T10:02:00Z",
            "2026-12-04T10:05:00Z",
        ))];
        assert_eq!(
            overlap_ms(
                &freeze,
                span("2026-12-04T10:00:00Z", "2026-12-04T10:13:00Z")
            ),
            180_000
        );
        assert_eq!(
            overlap_ms(
                &freeze,
                span("2026-12-04T10:03:00Z", "2026-12-04T10:03:00Z")
            ),
            0
        );
    }

    #[test]
    fn wall_times_name_the_zone() {
        let berlin = zone("Europe/Berlin").unwrap();
        assert_eq!(
            wall_time(&berlin, ms("2026-12-07T07:00:00Z")),
            "Monday 2026-12-07 08:00 CET"
        );
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
    ];

    fn week_time() -> impl Strategy<Value = WeekTime> {
        (0i8..7, 0i8..24, 0i8..4).prop_map(|(d, hour, quarter)| WeekTime {
            day: Weekday::from_monday_zero_offset(d).unwrap(),
            hour,
            minute: quarter * 15,
        })
    }

    /// Seconds since Monday 00:00 of `at_ms`'s wall time in `zone`.
    fn wall_second_of_week(zone: &TimeZone, at_ms: i64) -> (i64, DateTime) {
        let dt = zone.to_datetime(jiff::Timestamp::from_millisecond(at_ms).unwrap());
        let s = i64::from(dt.weekday().to_monday_zero_offset()) * 86_400
            + i64::from(dt.hour()) * 3600
            + i64::from(dt.minute()) * 60
            + i64::from(dt.second());
        (s, dt)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// An instant is inside a weekly window iff its wall time in the window's zone lies
        /// in `[from, to)` in the week's circular order — for every instant whose wall time
        /// is not repeated by a fold (there a start takes the first pass, an end the second).
        #[test]
        fn inside_a_weekly_window_iff_the_wall_time_is_inside(
            from in week_time(),
            to in week_time(),
            z in 0..ZONES.len(),
            at_ms in ms("2020-01-01T00:00:00Z")..ms("2035-01-01T00:00:00Z"),
        ) {
            prop_assume!(from != to);
            let tz = zone(ZONES[z]).unwrap();
            let (s, dt) = wall_second_of_week(&tz, at_ms);
            let folded = matches!(tz.to_ambiguous_timestamp(dt).offset(), AmbiguousOffset::Fold { .. });
            prop_assume!(!folded);
            let (f, t) = (from.minute_of_week() * 60, to.minute_of_week() * 60);
            let inside = if f < t { f <= s && s < t } else { s >= f || s < t };
            let w = Schedule::Weekly(Weekly::new(from, to, tz).unwrap());
            let active = w.active_at(at_ms);
            prop_assert_eq!(active.is_some(), inside, "{:?}", active);
            if let Some(span) = active {
                prop_assert!(span.contains(at_ms));
                prop_assert!(span.end_ms - span.start_ms <= WEEK_MS + 2 * 3_600_000);
            }
        }

        /// The overlap of windows with an interval is the measure of their union inside it
        /// (checked quarter hour by quarter hour: every boundary here falls on one).
        #[test]
        fn overlap_is_the_measure_of_the_union(
            windows in proptest::collection::vec((week_time(), week_time()), 1..4),
            once in proptest::option::of((0i64..400, 1i64..200)),
            z in 0..3usize,
            start in 0i64..(4 * 365 * 96),
            quarters in 0i64..300,
        ) {
            let base = ms("2025-01-01T00:00:00Z");
            let q = 900_000;
            let tz = zone(ZONES[z]).unwrap();
            let mut schedules: Vec<Schedule> = windows
                .into_iter()
                .filter_map(|(f, t)| Weekly::new(f, t, tz.clone()).map(Schedule::Weekly))
                .collect();
            let within = Span { start_ms: base + start * q, end_ms: base + (start + quarters) * q };
            if let Some((offset, len)) = once {
                let s = within.start_ms + (offset - 100) * q;
                schedules.push(Schedule::Once(Span { start_ms: s, end_ms: s + len * q }));
            }
            let sampled: i64 = (0..quarters)
                .filter(|i| {
                    let at = within.start_ms + i * q;
                    schedules.iter().any(|s| s.active_at(at).is_some())
                })
                .count() as i64 * q;
            prop_assert_eq!(overlap_ms(&schedules, within), sampled);
        }
    }
}
