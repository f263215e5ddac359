//! Dates as JavaScript prints them: `Date.prototype.toUTCString()` for the
//! cookie `Expires` attribute and `toISOString()` for stored timestamps.
//!
//! Times are milliseconds since the Unix epoch, like a JS time value. A JS
//! `Date` only exists for |ms| ≤ 8.64e15 (ECMA-262 TimeClip); outside that
//! range JS has an "Invalid Date", whose `toUTCString()` is the text
//! `Invalid Date` (that is what Blitz writes into `Expires=` for a
//! non-numeric `sessionExpiryMinutes`) and whose `toISOString()` throws. The
//! whole valid range is formatted exactly as V8 does, including years before
//! 1000 and after 9999 (`-0001`, `275760`, ISO `+010000`), so no input can
//! panic or produce text JS would not.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

/// Largest magnitude of a valid JS time value (ECMA-262 §21.4.1.31 TimeClip).
pub const MAX_TIME_MS: i64 = 8_640_000_000_000_000;

/// What JS prints for a `Date` outside the valid range.
pub const INVALID_DATE: &str = "Invalid Date";

const MS_PER_DAY: i64 = 86_400_000;
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A time value broken down into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    /// 0 = Sunday
    weekday: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millisecond: u32,
}

/// Whether `ms` is a time value a JS `Date` can hold.
pub const fn is_valid_time(ms: i64) -> bool {
    ms >= -MAX_TIME_MS && ms <= MAX_TIME_MS
}

fn civil(ms: i64) -> Option<Civil> {
    if !is_valid_time(ms) {
        return None;
    }
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7) as u32;
    let (year, month, day) = civil_from_days(days);
    Some(Civil {
        year,
        month,
        day,
        weekday,
        hour: (in_day / 3_600_000) as u32,
        minute: (in_day / 60_000 % 60) as u32,
        second: (in_day / 1000 % 60) as u32,
        millisecond: (in_day % 1000) as u32,
    })
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), exact for the whole JS range and far beyond; the
/// arithmetic stays in `i64`, so it cannot overflow for |days| ≤ 1e8.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `new Date(ms).toUTCString()`, e.g. `Wed, 15 Jan 2025 12:00:00 GMT`.
///
/// Years are at least four digits with a leading `-` when negative, as
/// ECMA-262 `DateString` specifies (`Fri, 01 Jan -0001 00:00:00 GMT`,
/// `Sat, 13 Sep 275760 00:00:00 GMT`). Outside the valid range the result is
/// `Invalid Date`, as in JS.
pub fn to_utc_string(ms: i64) -> String {
    let Some(c) = civil(ms) else {
        return INVALID_DATE.to_string();
    };
    let mut out = String::with_capacity(29);
    // Written digit by digit: this runs for every cookie of every response.
    let two = |out: &mut String, v: u32| {
        out.push(char::from(b'0' + (v / 10 % 10) as u8));
        out.push(char::from(b'0' + (v % 10) as u8));
    };
    out.push_str(WEEKDAYS[c.weekday as usize % 7]);
    out.push_str(", ");
    two(&mut out, c.day);
    out.push(' ');
    out.push_str(MONTHS[(c.month as usize + 11) % 12]);
    out.push(' ');
    if c.year < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:04}", c.year.unsigned_abs());
    out.push(' ');
    two(&mut out, c.hour);
    out.push(':');
    two(&mut out, c.minute);
    out.push(':');
    two(&mut out, c.second);
    out.push_str(" GMT");
    out
}

/// `new Date(ms).toISOString()`, e.g. `2025-02-14T12:02:00.000Z`; `None` where
/// JS throws a `RangeError` (outside the valid range).
///
/// Years 0..=9999 have four digits; others use the expanded form with a sign
/// and six digits (`+010000-01-01T00:00:00.000Z`, `-000001-…`).
pub fn try_to_iso_string(ms: i64) -> Option<String> {
    let c = civil(ms)?;
    let mut out = String::with_capacity(27);
    if (0..=9999).contains(&c.year) {
        let _ = write!(out, "{:04}", c.year);
    } else {
        let sign = if c.year < 0 { '-' } else { '+' };
        let _ = write!(out, "{sign}{:06}", c.year.unsigned_abs());
    }
    let _ = write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.month, c.day, c.hour, c.minute, c.second, c.millisecond
    );
    Some(out)
}

/// [`try_to_iso_string`] for callers that want text in every case: outside
/// the valid range (where JS would throw) it returns `Invalid Date`.
pub fn to_iso_string(ms: i64) -> String {
    try_to_iso_string(ms).unwrap_or_else(|| INVALID_DATE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ms, toUTCString, toISOString or "" where JS throws), from Node v20.
    const NODE: &[(i64, &str, &str)] = &[
        (
            0,
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "1970-01-01T00:00:00.000Z",
        ),
        (
            -1,
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "1969-12-31T23:59:59.999Z",
        ),
        (
            1736942400000,
            "Wed, 15 Jan 2025 12:00:00 GMT",
            "2025-01-15T12:00:00.000Z",
        ),
        (
            8640000000000000,
            "Sat, 13 Sep 275760 00:00:00 GMT",
            "+275760-09-13T00:00:00.000Z",
        ),
        (
            -8640000000000000,
            "Tue, 20 Apr -271821 00:00:00 GMT",
            "-271821-04-20T00:00:00.000Z",
        ),
        (8640000000000001, "Invalid Date", ""),
        (-8640000000000001, "Invalid Date", ""),
        (i64::MAX, "Invalid Date", ""),
        (i64::MIN, "Invalid Date", ""),
        (
            -62198755200000,
            "Fri, 01 Jan -0001 00:00:00 GMT",
            "-000001-01-01T00:00:00.000Z",
        ),
        (
            -62198755200001,
            "Thu, 31 Dec -0002 23:59:59 GMT",
            "-000002-12-31T23:59:59.999Z",
        ),
        (
            -62167219200000,
            "Sat, 01 Jan 0000 00:00:00 GMT",
            "0000-01-01T00:00:00.000Z",
        ),
        (
            -62135596800000,
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "0001-01-01T00:00:00.000Z",
        ),
        (
            253402300799999,
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "9999-12-31T23:59:59.999Z",
        ),
        (
            253402300800000,
            "Sat, 01 Jan 10000 00:00:00 GMT",
            "+010000-01-01T00:00:00.000Z",
        ),
        (
            -30610224000000,
            "Wed, 01 Jan 1000 00:00:00 GMT",
            "1000-01-01T00:00:00.000Z",
        ),
        (
            -2208988800000,
            "Mon, 01 Jan 1900 00:00:00 GMT",
            "1900-01-01T00:00:00.000Z",
        ),
        (
            951782400000,
            "Tue, 29 Feb 2000 00:00:00 GMT",
            "2000-02-29T00:00:00.000Z",
        ),
        (
            4107542400000,
            "Mon, 01 Mar 2100 00:00:00 GMT",
            "2100-03-01T00:00:00.000Z",
        ),
    ];

    #[test]
    fn matches_node_on_edges() {
        for &(ms, utc, iso) in NODE {
            assert_eq!(to_utc_string(ms), utc, "toUTCString({ms})");
            let want = if iso.is_empty() {
                None
            } else {
                Some(iso.to_string())
            };
            assert_eq!(try_to_iso_string(ms), want, "toISOString({ms})");
        }
        assert_eq!(to_iso_string(i64::MAX), INVALID_DATE);
    }

    /// (ms, toUTCString, toISOString) for pseudo-random times across the
    /// whole valid range, from Node v20.
    const NODE_RANDOM: &[(i64, &str, &str)] = &[
        (
            8248500568277472,
            "Tue, 30 Jul 263354 13:51:17 GMT",
            "+263354-07-30T13:51:17.472Z",
        ),
        (
            -3385365279812360,
            "Sun, 17 Jan -105308 11:36:27 GMT",
            "-105308-01-17T11:36:27.640Z",
        ),
        (
            -1360861707727883,
            "Wed, 03 Jan -41154 18:57:52 GMT",
            "-041154-01-03T18:57:52.117Z",
        ),
        (
            -5765890812143615,
            "Sat, 11 Mar -180744 15:17:36 GMT",
            "-180744-03-11T15:17:36.385Z",
        ),
        (
            2032857977214957,
            "Wed, 14 Sep 66388 19:26:54 GMT",
            "+066388-09-14T19:26:54.957Z",
        ),
        (
            -3192202375337823,
            "Mon, 18 Feb -99187 05:57:42 GMT",
            "-099187-02-18T05:57:42.177Z",
        ),
        (
            -512148378397589,
            "Tue, 30 Aug -14260 17:33:22 GMT",
            "-014260-08-30T17:33:22.411Z",
        ),
        (
            7387319773376864,
            "Tue, 04 Nov 236064 06:22:56 GMT",
            "+236064-11-04T06:22:56.864Z",
        ),
        (
            -4835031177628650,
            "Thu, 17 Dec -151247 23:59:31 GMT",
            "-151247-12-17T23:59:31.350Z",
        ),
        (
            6456822299788627,
            "Tue, 21 Jul 206578 13:56:28 GMT",
            "+206578-07-21T13:56:28.627Z",
        ),
        (
            5866848977646830,
            "Tue, 16 Jan 187883 15:34:06 GMT",
            "+187883-01-16T15:34:06.830Z",
        ),
        (
            -1157178604931412,
            "Mon, 21 Jun -34700 02:37:48 GMT",
            "-034700-06-21T02:37:48.588Z",
        ),
        (
            984049007202372,
            "Fri, 10 Apr 33153 02:26:42 GMT",
            "+033153-04-10T02:26:42.372Z",
        ),
        (
            6722189418924046,
            "Fri, 14 Sep 214987 06:35:24 GMT",
            "+214987-09-14T06:35:24.046Z",
        ),
        (
            -4768885314157148,
            "Sat, 15 Jan -149150 02:57:22 GMT",
            "-149150-01-15T02:57:22.852Z",
        ),
        (
            -5123984956574362,
            "Mon, 19 May -160403 13:23:45 GMT",
            "-160403-05-19T13:23:45.638Z",
        ),
        (
            -201875508963613,
            "Thu, 26 Oct -4428 21:43:56 GMT",
            "-004428-10-26T21:43:56.387Z",
        ),
        (
            6441517831757204,
            "Tue, 28 Jul 206093 12:49:17 GMT",
            "+206093-07-28T12:49:17.204Z",
        ),
        (
            5023074500957664,
            "Thu, 23 Nov 161144 08:29:17 GMT",
            "+161144-11-23T08:29:17.664Z",
        ),
        (
            -7775522110871158,
            "Sat, 07 Jul -244427 02:58:48 GMT",
            "-244427-07-07T02:58:48.842Z",
        ),
        (
            -7690206734072455,
            "Thu, 18 Jan -241723 14:45:27 GMT",
            "-241723-01-18T14:45:27.545Z",
        ),
        (
            -174411146484568,
            "Tue, 17 Feb -3557 11:18:35 GMT",
            "-003557-02-17T11:18:35.432Z",
        ),
        (
            3863644128082846,
            "Sun, 04 Jan 124404 08:01:22 GMT",
            "+124404-01-04T08:01:22.846Z",
        ),
        (
            -7170408617322162,
            "Mon, 18 Oct -225252 12:31:17 GMT",
            "-225252-10-18T12:31:17.838Z",
        ),
        (
            1113361559756,
            "Wed, 13 Apr 2005 03:05:59 GMT",
            "2005-04-13T03:05:59.756Z",
        ),
        (
            2866366914859,
            "Sat, 30 Oct 2060 13:01:54 GMT",
            "2060-10-30T13:01:54.859Z",
        ),
        (
            474853358302,
            "Thu, 17 Jan 1985 23:42:38 GMT",
            "1985-01-17T23:42:38.302Z",
        ),
        (
            1773234287701,
            "Wed, 11 Mar 2026 13:04:47 GMT",
            "2026-03-11T13:04:47.701Z",
        ),
        (
            1570343456576,
            "Sun, 06 Oct 2019 06:30:56 GMT",
            "2019-10-06T06:30:56.576Z",
        ),
        (
            1373371852687,
            "Tue, 09 Jul 2013 12:10:52 GMT",
            "2013-07-09T12:10:52.687Z",
        ),
        (
            3621745835634,
            "Sat, 07 Oct 2084 08:30:35 GMT",
            "2084-10-07T08:30:35.634Z",
        ),
        (
            1748432228697,
            "Wed, 28 May 2025 11:37:08 GMT",
            "2025-05-28T11:37:08.697Z",
        ),
        (
            2756550061300,
            "Tue, 08 May 2057 12:21:01 GMT",
            "2057-05-08T12:21:01.300Z",
        ),
        (
            338909062195,
            "Sat, 27 Sep 1980 13:24:22 GMT",
            "1980-09-27T13:24:22.195Z",
        ),
        (
            1895251913542,
            "Mon, 21 Jan 2030 18:51:53 GMT",
            "2030-01-21T18:51:53.542Z",
        ),
        (
            954635685533,
            "Sun, 02 Apr 2000 00:34:45 GMT",
            "2000-04-02T00:34:45.533Z",
        ),
        (
            653822795240,
            "Thu, 20 Sep 1990 09:26:35 GMT",
            "1990-09-20T09:26:35.240Z",
        ),
        (
            3513040411415,
            "Mon, 28 Apr 2081 04:33:31 GMT",
            "2081-04-28T04:33:31.415Z",
        ),
        (
            1130204443994,
            "Tue, 25 Oct 2005 01:40:43 GMT",
            "2005-10-25T01:40:43.994Z",
        ),
        (
            573749463073,
            "Mon, 07 Mar 1988 14:51:03 GMT",
            "1988-03-07T14:51:03.073Z",
        ),
    ];

    #[test]
    fn matches_node_on_random_times() {
        for &(ms, utc, iso) in NODE_RANDOM {
            assert_eq!(to_utc_string(ms), utc, "toUTCString({ms})");
            assert_eq!(
                try_to_iso_string(ms).as_deref(),
                Some(iso),
                "toISOString({ms})"
            );
        }
    }

    #[test]
    fn vector_dates() {
        // session-tokens.json / session-config.json: frozen clock 2025-01-15T12:00:00Z.
        let now = 1_736_942_400_000i64;
        assert_eq!(
            to_utc_string(now + 2_628_000 * 60_000),
            "Mon, 14 Jan 2030 12:00:00 GMT"
        );
        assert_eq!(
            to_utc_string(now + 10 * 60_000),
            "Wed, 15 Jan 2025 12:10:00 GMT"
        );
        assert_eq!(
            to_utc_string(now + 60 * 60_000),
            "Wed, 15 Jan 2025 13:00:00 GMT"
        );
        let created = now + 1000 + 43_200 * 60_000;
        assert_eq!(to_utc_string(created), "Fri, 14 Feb 2025 12:00:01 GMT");
        assert_eq!(to_iso_string(created), "2025-02-14T12:00:01.000Z");
    }

    #[test]
    fn every_day_round_trips_through_the_calendar() {
        // Consecutive days must step the calendar by exactly one day.
        let mut prev = civil(-MAX_TIME_MS).map(|c| (c.year, c.month, c.day));
        let mut ms = -MAX_TIME_MS + MS_PER_DAY;
        let step = MS_PER_DAY * 997; // a prime stride keeps the test fast
        while ms <= MAX_TIME_MS {
            let c = civil(ms).map(|c| (c.year, c.month, c.day));
            assert!(c > prev, "{ms}");
            prev = c;
            ms += step;
        }
    }
}
