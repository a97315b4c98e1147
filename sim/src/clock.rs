//! The time forms the simulators speak: Unix seconds and Odoo's naive-UTC
//! `YYYY-MM-DD HH:MM:SS`. The calendar arithmetic is humantime's, so the simulators share no
//! date code (nor its bugs) with the agent they test.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn system_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64)
}

/// Odoo's datetime text: naive UTC, to the second.
pub(crate) fn format_odoo(unix: i64) -> String {
    let text = humantime::format_rfc3339_seconds(system_time(unix)).to_string();
    // "2026-11-22T01:40:25Z" → "2026-11-22 01:40:25"
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// An HTTP `Date` (IMF-fixdate): `Tue, 01 Dec 2026 12:43:08 GMT`.
pub(crate) fn format_http_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = humantime::format_rfc3339_seconds(system_time(unix)).to_string();
    // "2026-12-01T12:43:08Z"
    let month: usize = text[5..7].parse().unwrap_or(1);
    let weekday = DAYS[unix.max(0).div_euclid(86_400).rem_euclid(7) as usize];
    format!(
        "{weekday}, {} {} {} {} GMT",
        &text[8..10],
        MONTHS[month - 1],
        &text[0..4],
        &text[11..19]
    )
}

/// Odoo's datetime text, or a date alone, as Unix seconds.
pub(crate) fn parse_odoo(text: &str) -> Option<i64> {
    let full = if text.len() == 10 {
        format!("{text} 00:00:00")
    } else {
        text.to_string()
    };
    let at = humantime::parse_rfc3339_weak(&full).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_as_servers_write_them() {
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(parse_odoo("2026-12-01 12:43:08").unwrap()),
            "Tue, 01 Dec 2026 12:43:08 GMT"
        );
    }

    #[test]
    fn odoo_and_http_forms() {
        assert_eq!(format_odoo(1_795_311_625), "2026-11-22 01:40:25");
        assert_eq!(parse_odoo("2026-11-22 01:40:25"), Some(1_795_311_625));
        assert_eq!(parse_odoo("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_odoo("false"), None);
    }
}
