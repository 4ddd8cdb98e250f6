//! Timestamps as logs write them, turned into instants with a UTC offset.
//!
//! Many formats write local time without a zone (`Nov  1 00:00:03`, `2026-11-01 00:00:03,123`)
//! and RFC 3164 even leaves out the year. A [`Clock`] completes them: the zone is a configured
//! one (the system's by default) and the year is the one that puts the time at most
//! [`FUTURE_SLACK_SECONDS`] after a reference "now", so a file written across New Year and read
//! in January gets December of the previous year and January of this one.
//!
//! Converting a local time through the zone database costs far more than parsing it, and most
//! consecutive lines share their hour, so the clock caches the instant and offset of the last
//! local hour it converted and adds minutes and seconds to it (zone transitions happen on whole
//! hours in every zone that has them today).

use std::cell::Cell;

use jiff::{Timestamp, civil, tz::TimeZone};

/// How far after "now" a year-less timestamp may lie before it is taken to be from last year.
pub const FUTURE_SLACK_SECONDS: i64 = 2 * 86_400;

/// An instant as a log line wrote it: seconds and nanoseconds since the Unix epoch (UTC) and the
/// offset from UTC of the zone it was written or completed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset from UTC in seconds (east positive).
    pub offset: i32,
}

impl Stamp {
    /// The instant as a chrono UTC time, when it is in chrono's range.
    pub fn to_utc(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp(self.seconds, self.nanos)
    }

    /// RFC 3339 text in the stamp's own offset, e.g. `2026-11-01T00:00:03+01:00`.
    pub fn to_rfc3339(self) -> Option<String> {
        let offset = chrono::FixedOffset::east_opt(self.offset)?;
        let utc = self.to_utc()?;
        Some(utc.with_timezone(&offset).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

#[derive(Clone, Copy)]
struct HourCache {
    /// Year (0 = inferred), month, day, hour of the cached local hour.
    key: (i16, u8, u8, u8),
    /// The instant of that local hour's start, and its offset.
    base: i64,
    offset: i32,
}

/// Completes zone-less and year-less timestamps: a zone and a reference "now".
#[derive(Debug)]
pub struct Clock {
    tz: TimeZone,
    now: Timestamp,
    now_year: i16,
    cache: Cell<Option<HourCache>>,
}

impl std::fmt::Debug for HourCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HourCache").field("key", &self.key).field("base", &self.base).finish()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new(TimeZone::system(), Timestamp::now())
    }
}

impl Clone for Clock {
    fn clone(&self) -> Clock {
        Clock::new(self.tz.clone(), self.now)
    }
}

impl Clock {
    /// A clock for zone `tz` that completes year-less timestamps relative to `now`.
    pub fn new(tz: TimeZone, now: Timestamp) -> Clock {
        let now_year = now.to_zoned(tz.clone()).year();
        Clock { tz, now, now_year, cache: Cell::new(None) }
    }

    /// A clock in UTC frozen at `now` (tests and reproducible runs).
    pub fn utc_at(now: Timestamp) -> Clock {
        Clock::new(TimeZone::UTC, now)
    }

    /// The zone used for zone-less timestamps.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The reference "now".
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A local time in the clock's zone. `year` 0 means "infer it from now".
    #[allow(clippy::too_many_arguments)]
    pub fn local(
        &self,
        year: i16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanos: u32,
    ) -> Option<Stamp> {
        if minute > 59 || second > 60 || nanos >= 1_000_000_000 {
            return None;
        }
        let key = (year, month, day, hour);
        let hour_start = match self.cache.get() {
            Some(it) if it.key == key => it,
            _ => {
                let it = self.hour_start(key)?;
                self.cache.set(Some(it));
                it
            }
        };
        let seconds = hour_start.base + i64::from(minute) * 60 + i64::from(second);
        Some(Stamp { seconds, nanos, offset: hour_start.offset })
    }

    fn hour_start(&self, key: (i16, u8, u8, u8)) -> Option<HourCache> {
        let (year, month, day, hour) = key;
        let convert = |year: i16| -> Option<Timestamp> {
            let dt =
                civil::DateTime::new(year, month as i8, day as i8, hour as i8, 0, 0, 0).ok()?;
            self.tz.to_ambiguous_timestamp(dt).compatible().ok()
        };
        let ts = if year != 0 {
            convert(year)?
        } else {
            // The latest year that does not put the time (much) after now; February 29 looks
            // back up to a leap year.
            let limit = self.now.as_second().saturating_add(FUTURE_SLACK_SECONDS);
            let mut found = None;
            for back in 0..=8 {
                if let Some(ts) = convert(self.now_year.checked_sub(back)?)
                    && ts.as_second() <= limit
                {
                    found = Some(ts);
                    break;
                }
            }
            found?
        };
        let offset = self.tz.to_offset(ts).seconds();
        Some(HourCache { key, base: ts.as_second(), offset })
    }
}

/// A UTC time with an explicit offset: `seconds` are local wall-clock fields.
pub(crate) fn with_offset(
    date: (i64, u8, u8),
    time: (u8, u8, u8),
    nanos: u32,
    offset: i32,
) -> Option<Stamp> {
    let (y, m, d) = date;
    let (hh, mm, ss) = time;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 || nanos >= 1_000_000_000 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let local = days * 86_400 + i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss);
    Some(Stamp { seconds: local - i64::from(offset), nanos, offset })
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Month number (1–12) of an English three-letter abbreviation, any case.
pub(crate) fn month(name: &[u8]) -> Option<u8> {
    let [a, b, c] = name else { return None };
    let key = [a.to_ascii_lowercase(), b.to_ascii_lowercase(), c.to_ascii_lowercase()];
    Some(match &key {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Value of ASCII digits (all of `bytes` must be digits; at most 9 of them).
pub(crate) fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    Some(n)
}

/// `HH:MM:SS` at the start of `b`.
fn hms(b: &[u8]) -> Option<(u8, u8, u8)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((digits(&b[0..2])? as u8, digits(&b[3..5])? as u8, digits(&b[6..8])? as u8))
}

/// RFC 3164 `Mmm dd hh:mm:ss` (day space-padded or not) at the start of `s`; returns the stamp
/// and the number of bytes used.
pub(crate) fn parse_bsd(s: &str, clock: &Clock) -> Option<(Stamp, usize)> {
    let b = s.as_bytes();
    if b.len() < 14 || b[3] != b' ' {
        return None;
    }
    let month = month(&b[0..3])?;
    let (day, rest) = if b[4] == b' ' {
        (digits(&b[5..6])?, 6)
    } else if b[5] == b' ' {
        (digits(&b[4..5])?, 5)
    } else {
        (digits(&b[4..6])?, 6)
    };
    let mut used = rest;
    if b.get(used) != Some(&b' ') {
        return None;
    }
    used += 1;
    let (h, m, sec) = hms(b.get(used..)?)?;
    used += 8;
    let mut nanos = 0;
    if b.get(used) == Some(&b'.') {
        let (n, len) = fraction(&b[used + 1..])?;
        nanos = n;
        used += 1 + len;
    }
    if day == 0 || day > 31 || h > 23 {
        return None;
    }
    let stamp = clock.local(0, month, day as u8, h, m, sec, nanos)?;
    Some((stamp, used))
}

/// Up to 9 fraction digits → nanoseconds; returns the digits' count (more than 9 are skipped).
fn fraction(b: &[u8]) -> Option<(u32, usize)> {
    let len = b.iter().take_while(|it| it.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let kept = len.min(9);
    let mut n = digits(&b[..kept])?;
    for _ in kept..9 {
        n *= 10;
    }
    Some((n, len))
}

/// ISO-8601 style date and time at the start of `s`: `YYYY-MM-DD` then `T` or a space (or
/// `YYYY/MM/DD`, as nginx writes), `HH:MM:SS`, an optional fraction after `.` or `,`, and an
/// optional zone (`Z`, `±HH:MM`, `±HHMM`). Zone-less times are completed by the clock's zone.
pub(crate) fn parse_iso(s: &str, clock: &Clock) -> Option<(Stamp, usize)> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let sep = b[4];
    if (sep != b'-' && sep != b'/') || b[7] != sep || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])? as u8;
    let day = digits(&b[8..10])? as u8;
    let (h, m, sec) = hms(&b[11..])?;
    let mut used = 19;
    let mut nanos = 0;
    if matches!(b.get(used), Some(b'.' | b',')) {
        let (n, len) = fraction(&b[used + 1..])?;
        nanos = n;
        used += 1 + len;
    }
    let offset = match b.get(used) {
        Some(b'Z' | b'z') => {
            used += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[used + 1..];
            let (hh, mm, len) = if rest.len() >= 5 && rest[2] == b':' {
                (digits(&rest[0..2])?, digits(&rest[3..5])?, 5)
            } else if rest.len() >= 4 {
                (digits(&rest[0..2])?, digits(&rest[2..4])?, 4)
            } else {
                return None;
            };
            used += 1 + len;
            let secs = (hh * 3600 + mm * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };
    let stamp = match offset {
        Some(offset) => with_offset((i64::from(year), month, day), (h, m, sec), nanos, offset)?,
        None => {
            if !(1..=12).contains(&month) || day == 0 || day > 31 || h > 23 {
                return None;
            }
            clock.local(i16::try_from(year).ok()?, month, day, h, m, sec, nanos)?
        }
    };
    Some((stamp, used))
}

/// `dd/Mon/yyyy:HH:MM:SS +zzzz` (nginx and Apache access logs).
pub(crate) fn parse_clf(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let day = digits(&b[0..2])? as u8;
    let month = month(&b[3..6])?;
    let year = digits(&b[7..11])?;
    let (h, m, sec) = hms(&b[12..])?;
    let sign = b[21];
    let secs = (digits(&b[22..24])? * 3600 + digits(&b[24..26])? * 60) as i32;
    let offset = match sign {
        b'+' => secs,
        b'-' => -secs,
        _ => return None,
    };
    with_offset((i64::from(year), month, day), (h, m, sec), 0, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(now: &str, tz: &str) -> Clock {
        Clock::new(TimeZone::get(tz).unwrap(), now.parse().unwrap())
    }

    fn bsd(s: &str, clock: &Clock) -> String {
        parse_bsd(s, clock).and_then(|(it, _)| it.to_rfc3339()).unwrap_or_default()
    }

    #[test]
    fn year_less_times_take_the_year_that_is_not_in_the_future() {
        let c = clock("2027-01-01T00:30:00Z", "UTC");
        assert_eq!(bsd("Dec 31 23:59:59 x", &c), "2026-12-31T23:59:59Z");
        assert_eq!(bsd("Jan  1 00:00:01 x", &c), "2027-01-01T00:00:01Z");
        // Read back in November, the same two lines still straddle New Year in order.
        let c = clock("2027-11-23T12:00:00Z", "UTC");
        assert_eq!(bsd("Dec 31 23:59:59 x", &c), "2026-12-31T23:59:59Z");
        assert_eq!(bsd("Jan  1 00:00:01 x", &c), "2027-01-01T00:00:01Z");
        // A day or two ahead of now is clock skew, not last year.
        assert_eq!(bsd("Nov 24 12:00:00 x", &c), "2027-11-24T12:00:00Z");
        assert_eq!(bsd("Feb 29 10:00:00 x", &c), "2024-02-29T10:00:00Z");
    }

    #[test]
    fn zones_apply_with_daylight_saving_time() {
        let c = clock("2026-11-23T12:00:00Z", "Europe/Berlin");
        assert_eq!(bsd("Jul  4 12:00:00 x", &c), "2026-07-04T12:00:00+02:00");
        assert_eq!(bsd("Nov  1 00:00:03 x", &c), "2026-11-01T00:00:03+01:00");
        let (it, used) = parse_iso("2026-03-29 03:30:00,250 rest", &c).unwrap();
        assert_eq!(
            (it.to_rfc3339().unwrap().as_str(), used),
            ("2026-03-29T03:30:00.250+02:00", 23)
        );
    }

    #[test]
    fn explicit_offsets_win_over_the_zone() {
        let c = clock("2026-11-23T12:00:00Z", "Europe/Berlin");
        for (text, want) in [
            ("2026-11-01T00:00:03.123456+00:00", "2026-11-01T00:00:03.123456Z"),
            ("2003-10-11T22:14:15.003Z", "2003-10-11T22:14:15.003Z"),
            ("2026-11-01T00:00:03-0500", "2026-11-01T00:00:03-05:00"),
            ("2026/11/01 00:00:03", "2026-11-01T00:00:03+01:00"),
        ] {
            let got = parse_iso(text, &c).and_then(|(it, _)| it.to_rfc3339());
            assert_eq!(got.as_deref(), Some(want), "{text}");
        }
        let clf = parse_clf("10/Oct/2000:13:55:36 -0700").and_then(Stamp::to_rfc3339);
        assert_eq!(clf.as_deref(), Some("2000-10-10T13:55:36-07:00"));
    }

    #[test]
    fn nonsense_is_rejected() {
        let c = clock("2026-11-23T12:00:00Z", "UTC");
        for text in ["Foo  1 00:00:03", "Nov 41 00:00:03", "Nov  1 25:00:03", "Nov  1 00:61:03"] {
            assert_eq!(bsd(text, &c), "", "{text}");
        }
        for text in ["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T00:00:00+9"] {
            assert!(parse_iso(text, &c).is_none(), "{text}");
        }
    }
}
