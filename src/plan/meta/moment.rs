//! `{{date 'YYYYMMDD' tz='Asia/Tokyo'}}`: moment-timezone's `tz(zone).format(pattern)`, in the
//! English locale metadata-action runs with. Text in `[…]` and characters that are no token are
//! kept as they are.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Longest first, as moment's tokenizer tries them.
const TOKENS: &[&str] = &[
    "YYYY", "GGGG", "gggg", "MMMM", "dddd", "DDDD", "SSS", "MMM", "ddd", "DDD", "Do", "YY", "MM", "DD", "dd", "HH",
    "hh", "kk", "mm", "ss", "SS", "WW", "ww", "ZZ", "zz", "LTS", "LT", "Y", "Q", "M", "D", "d", "E", "e", "H", "h",
    "k", "m", "s", "S", "W", "w", "A", "a", "Z", "z", "X", "x", "L",
];

/// The zone by its IANA name (moment accepts any case).
pub fn zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>()
        .ok()
        .or_else(|| chrono_tz::TZ_VARIANTS.iter().copied().find(|z| z.name().eq_ignore_ascii_case(name)))
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn offset(seconds: i32, colon: bool) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let m = seconds.unsigned_abs() / 60;
    if colon { format!("{sign}{:02}:{:02}", m / 60, m % 60) } else { format!("{sign}{:02}{:02}", m / 60, m % 60) }
}

/// The week of the year in moment's English locale (weeks start on Sunday; the week holding
/// January 1st is week 1).
fn locale_week(t: &DateTime<Tz>) -> (i32, u32) {
    let doy = t.ordinal0() as i64;
    let dow = t.weekday().num_days_from_sunday() as i64;
    let jan1_dow = (dow - doy).rem_euclid(7);
    let week = (doy + jan1_dow) / 7 + 1;
    // The last days of December can belong to the next year's week 1.
    let days_in_year = if chrono::NaiveDate::from_yo_opt(t.year(), 366).is_some() { 366 } else { 365 };
    let next_jan1_dow = (jan1_dow + days_in_year) % 7;
    if next_jan1_dow != 0 && doy >= days_in_year - next_jan1_dow {
        return (t.year() + 1, 1);
    }
    (t.year(), week as u32)
}

fn token(tok: &str, t: &DateTime<Tz>) -> String {
    let (h12, am) = (if t.hour().is_multiple_of(12) { 12 } else { t.hour() % 12 }, t.hour() < 12);
    let off = t.offset().fix().local_minus_utc();
    match tok {
        "YYYY" => format!("{:04}", t.year()),
        "YY" => format!("{:02}", t.year().rem_euclid(100)),
        "Y" => t.year().to_string(),
        "GGGG" => format!("{:04}", t.iso_week().year()),
        "gggg" => format!("{:04}", locale_week(t).0),
        "Q" => (t.month0() / 3 + 1).to_string(),
        "MMMM" => MONTHS[t.month0() as usize].into(),
        "MMM" => MONTHS[t.month0() as usize][..3].into(),
        "MM" => format!("{:02}", t.month()),
        "M" => t.month().to_string(),
        "DDDD" => format!("{:03}", t.ordinal()),
        "DDD" => t.ordinal().to_string(),
        "DD" => format!("{:02}", t.day()),
        "Do" => ordinal(t.day()),
        "D" => t.day().to_string(),
        "dddd" => DAYS[t.weekday().num_days_from_sunday() as usize].into(),
        "ddd" => DAYS[t.weekday().num_days_from_sunday() as usize][..3].into(),
        "dd" => DAYS[t.weekday().num_days_from_sunday() as usize][..2].into(),
        "d" | "e" => t.weekday().num_days_from_sunday().to_string(),
        "E" => t.weekday().number_from_monday().to_string(),
        "WW" => format!("{:02}", t.iso_week().week()),
        "W" => t.iso_week().week().to_string(),
        "ww" => format!("{:02}", locale_week(t).1),
        "w" => locale_week(t).1.to_string(),
        "HH" => format!("{:02}", t.hour()),
        "H" => t.hour().to_string(),
        "hh" => format!("{h12:02}"),
        "h" => h12.to_string(),
        "kk" => format!("{:02}", if t.hour() == 0 { 24 } else { t.hour() }),
        "k" => (if t.hour() == 0 { 24 } else { t.hour() }).to_string(),
        "mm" => format!("{:02}", t.minute()),
        "m" => t.minute().to_string(),
        "ss" => format!("{:02}", t.second()),
        "s" => t.second().to_string(),
        "SSS" => format!("{:03}", t.timestamp_subsec_millis()),
        "SS" => format!("{:02}", t.timestamp_subsec_millis() / 10),
        "S" => (t.timestamp_subsec_millis() / 100).to_string(),
        "A" => (if am { "AM" } else { "PM" }).into(),
        "a" => (if am { "am" } else { "pm" }).into(),
        "ZZ" => offset(off, false),
        "Z" => offset(off, true),
        "zz" | "z" => t.offset().to_string(),
        "X" => t.timestamp().to_string(),
        "x" => t.timestamp_millis().to_string(),
        "LTS" => format!("{h12}:{:02}:{:02} {}", t.minute(), t.second(), if am { "AM" } else { "PM" }),
        "LT" => format!("{h12}:{:02} {}", t.minute(), if am { "AM" } else { "PM" }),
        "L" => format!("{:02}/{:02}/{:04}", t.month(), t.day(), t.year()),
        _ => tok.into(),
    }
}

/// `format()` without a pattern: `Z` for a zero offset (moment's `defaultFormatUtc`), else the
/// offset.
pub fn default_format(at: DateTime<Utc>, zone: Tz) -> &'static str {
    match zone.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc() {
        0 => "YYYY-MM-DDTHH:mm:ss[Z]",
        _ => "YYYY-MM-DDTHH:mm:ssZ",
    }
}

/// Formats `at` in `zone` with a moment pattern.
pub fn format(at: DateTime<Utc>, zone: Tz, pattern: &str) -> String {
    let t = zone.from_utc_datetime(&at.naive_utc());
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '['
            && let Some(end) = rest.find(']')
        {
            out.push_str(&rest[1..end]);
            rest = &rest[end + 1..];
            continue;
        }
        match TOKENS.iter().find(|tok| rest.starts_with(**tok)) {
            Some(tok) => {
                out.push_str(&token(tok, &t));
                rest = &rest[tok.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_moment_timezone() {
        // Each expected string printed by moment-timezone 0.6 for 2020-01-10T00:30:00.000Z.
        let at: DateTime<Utc> = "2020-01-10T00:30:00Z".parse().unwrap();
        let tokyo = zone("Asia/Tokyo").unwrap();
        let utc = zone("UTC").unwrap();
        for (pattern, in_tokyo, in_utc) in [
            ("YYYYMMDD-HHmmss", "20200110-093000", "20200110-003000"),
            (
                "Do MMMM YYYY dddd [at] h:mm A Z ZZ z",
                "10th January 2020 Friday at 9:30 AM +09:00 +0900 JST",
                "10th January 2020 Friday at 12:30 AM +00:00 +0000 UTC",
            ),
            (
                "W WW w ww GGGG gggg E e Q DDD DDDD X x SSS",
                "2 02 2 02 2020 2020 5 5 1 10 010 1578616200 1578616200000 000",
                "2 02 2 02 2020 2020 5 5 1 10 010 1578616200 1578616200000 000",
            ),
            ("YY-M-D H k hh a", "20-1-10 9 9 09 am", "20-1-10 0 24 12 am"),
            ("[week]W", "week2", "week2"),
            ("LT L", "9:30 AM 01/10/2020", "12:30 AM 01/10/2020"),
        ] {
            assert_eq!(format(at, tokyo, pattern), in_tokyo, "{pattern}");
            assert_eq!(format(at, utc, pattern), in_utc, "{pattern}");
        }
        assert_eq!(format(at, utc, default_format(at, utc)), "2020-01-10T00:30:00Z");
        assert_eq!(format(at, tokyo, default_format(at, tokyo)), "2020-01-10T09:30:00+09:00");
        assert!(zone("asia/tokyo").is_some());
        assert!(zone("Mars/Olympus").is_none());
    }
}
