//! Wall-clock time as Unix seconds, and the two text forms linegate speaks: Odoo's naive-UTC
//! `YYYY-MM-DD HH:MM:SS` and RFC 3339 for our own records. A tiny civil-calendar conversion
//! (Howard Hinnant's algorithm) is all this needs, so no date crate is pulled in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, floored.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        // A gateway without a clock battery can boot before 1970 only in theory; say 0.
        Err(_) => 0,
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether the kernel says the clock is synchronised (NTP or similar). A gateway without a
/// clock battery boots in the past; operator writes carry this so their times can be judged.
#[allow(unsafe_code, reason = "adjtimex(2) has no safe binding; modes = 0 only reads")]
pub(crate) fn synchronized() -> bool {
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: modes = 0 only reads the kernel's state into the struct we own.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        // A sandbox that denies adjtimex (systemd's ProtectClock): ask timesyncd instead.
        return std::path::Path::new("/run/systemd/timesync/synchronized").exists();
    }
    state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
}

/// How far the gateway's local time (its time zone, /etc/localtime or $TZ) is ahead of UTC at
/// `unix`, in seconds: what the floor's screens show their times in, whatever zone a tablet
/// or kiosk was left in.
#[allow(
    unsafe_code,
    reason = "localtime_r(3) has no safe binding; it only fills the struct we own"
)]
pub(crate) fn local_offset(unix: i64) -> i64 {
    let time: libc::time_t = unix as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to values we own, alive for the call.
    let done = unsafe { libc::localtime_r(&time, &mut tm) };
    if done.is_null() {
        return 0;
    }
    tm.tm_gmtoff as i64
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date for a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn split(unix: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Odoo's datetime text: naive UTC, floored to the second.
pub fn format_odoo(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = split(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// RFC 3339 in UTC, for timestamps linegate records itself.
pub fn format_rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = split(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parses Odoo's `YYYY-MM-DD HH:MM:SS` (also accepts a `T` separator and a date alone).
pub fn parse_odoo(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (h, mi, s) = match b.len() {
        10 => (0, 0, 0),
        19 if matches!(b[10], b' ' | b'T') && b[13] == b':' && b[16] == b':' => {
            (num(11..13)?, num(14..16)?, num(17..19)?)
        }
        _ => return None,
    };
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s)
}

/// RFC 3339: `2026-11-22T08:00:00Z`, with optional fractions (dropped) and `±HH:MM` offsets.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let base = parse_odoo(text.get(..19)?)?;
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    Some(base - offset)
}

/// An HTTP `Date` (IMF-fixdate, the one form RFC 9110 lets servers send):
/// `Tue, 01 Dec 2026 12:43:08 GMT`.
pub(crate) fn parse_http_date(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = text.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let (day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if zone != "GMT" || parts.next().is_some() || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    parse_odoo(&format!("{year}-{month:02}-{day} {time}"))
}

/// Indonesia's zones have no daylight saving: a fixed offset is exact.
pub(crate) fn zone_offset(name: &str) -> Option<i64> {
    let hours = match name {
        "Asia/Jakarta" | "Asia/Pontianak" | "WIB" => 7,
        "Asia/Makassar" | "Asia/Ujung_Pandang" | "WITA" => 8,
        "Asia/Jayapura" | "WIT" => 9,
        "UTC" | "Etc/UTC" => 0,
        other => {
            // "+07:00" / "-03:30"
            let (sign, rest) = match other.as_bytes().first()? {
                b'+' => (1, &other[1..]),
                b'-' => (-1, &other[1..]),
                _ => return None,
            };
            let (h, m) = rest.split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 14 || m > 59 {
                return None;
            }
            return Some(sign * (h * 3600 + m * 60));
        }
    };
    Some(hours * 3600)
}

/// Today as days since 1970-01-01, in a zone `offset` seconds east of UTC.
pub(crate) fn today(now_unix: i64, offset: i64) -> i64 {
    (now_unix + offset).div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_offset_is_a_time_zones() {
        // Whatever zone the machine is in: within a day, in whole minutes (every zone in use).
        let offset = local_offset(now_unix());
        assert!(offset.abs() <= 14 * 3600 && offset % 60 == 0, "{offset}");
    }
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_odoo(0), "1970-01-01 00:00:00");
        assert_eq!(parse_odoo("2026-11-22 01:40:25"), Some(1_795_311_625));
        assert_eq!(format_rfc3339(1_795_311_625), "2026-11-22T01:40:25Z");
        assert_eq!(parse_odoo("2024-02-29"), Some(1_709_164_800));
    }

    #[test]
    fn rfc3339_as_browsers_and_panels_write_it() {
        let t = parse_odoo("2026-11-22 08:00:00").unwrap();
        assert_eq!(parse_rfc3339("2026-11-22T08:00:00Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T08:00:00.123Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T15:00:00+07:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-22T08:00:00"),
            None,
            "a time without a zone is ambiguous"
        );
        assert_eq!(parse_rfc3339("2026-11-22T08:00:00.Z"), None);
    }

    #[test]
    fn http_dates_as_servers_send_them() {
        let t = parse_odoo("2026-12-01 12:43:08").unwrap();
        assert_eq!(parse_http_date("Tue, 01 Dec 2026 12:43:08 GMT"), Some(t));
        for bad in [
            "",
            "Tue, 1 Dec 2026 12:43:08 GMT",
            "Tue, 01 Dez 2026 12:43:08 GMT",
            "Tue, 01 Dec 2026 12:43:08 +0700",
            "Tuesday, 01-Dec-26 12:43:08 GMT",
            "Tue, 01 Dec 2026 25:43:08 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_datetime() {
        for bad in [
            "",
            "false",
            "2026-13-01 00:00:00",
            "2026-11-22 1:40:25",
            "20261122",
            "2026-11-22 01:40",
        ] {
            assert_eq!(parse_odoo(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_date_turns_at_local_midnight() {
        // 2026-11-22 17:00 UTC is 2026-11-23 00:00 in Jakarta.
        let utc = parse_odoo("2026-11-22 17:00:00").unwrap();
        let jakarta = zone_offset("Asia/Jakarta").unwrap();
        let day = parse_odoo("2026-11-23").unwrap() / 86_400;
        assert_eq!(today(utc, jakarta), day);
        assert_eq!(today(utc - 1, jakarta), day - 1);
        assert_eq!(zone_offset("+05:30"), Some(19_800));
        assert_eq!(zone_offset("Mars/Olympus"), None);
    }

    proptest! {
        #[test]
        fn format_and_parse_are_inverse(unix in 0i64..8_000_000_000) {
            prop_assert_eq!(parse_odoo(&format_odoo(unix)), Some(unix));
        }
    }
}
