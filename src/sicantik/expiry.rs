//! Expiry status and reminder thresholds, from the gateway's date in the regency's time zone.

/// Indonesia's zones have no daylight saving: a fixed offset is exact.
pub fn zone_offset(name: &str) -> Option<i64> {
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
pub fn today(now_unix: i64, offset: i64) -> i64 {
    (now_unix + offset).div_euclid(86_400)
}

/// Days from `today` until a `YYYY-MM-DD` expiry (0 on the day, negative after).
pub fn days_left(expiry: &str, today: i64) -> Option<i64> {
    let day = crate::clock::parse_odoo(expiry.get(..10)?)?.div_euclid(86_400);
    Some(day - today)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Expired,
}

impl Status {
    pub fn of(days_left: i64) -> Status {
        match days_left {
            d if d > 60 => Status::Ok,
            d if d > 30 => Status::Warning,
            d if d > 0 => Status::Critical,
            _ => Status::Expired,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Expired => "expired",
        }
    }
}

/// Which thresholds to record now for a permit `days_left` from expiry, given the ones already
/// recorded for this expiry; each with whether it is sent.
///
/// Every threshold passed since the expiry was learned is sent, also when the agent was off
/// on the day it passed (catch up, never skip). When the expiry is new to us (first seen, or
/// renewed), the thresholds it had already passed are recorded unsent, except the nearest one
/// while the permit is still valid: one timely reminder, not a burst of stale ones.
pub fn due(days_left: i64, thresholds: &[u32], recorded: &[u32]) -> Vec<(u32, bool)> {
    let passed: Vec<u32> = thresholds
        .iter()
        .copied()
        .filter(|&t| days_left <= i64::from(t))
        .collect();
    let new: Vec<u32> = passed.iter().copied().filter(|t| !recorded.contains(t)).collect();
    if !recorded.is_empty() {
        return new.into_iter().map(|t| (t, true)).collect();
    }
    let nearest = passed.iter().copied().min();
    new.into_iter()
        .map(|t| (t, days_left > 0 && Some(t) == nearest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bands() {
        assert_eq!(Status::of(61), Status::Ok);
        assert_eq!(Status::of(60), Status::Warning);
        assert_eq!(Status::of(31), Status::Warning);
        assert_eq!(Status::of(30), Status::Critical);
        assert_eq!(Status::of(1), Status::Critical);
        assert_eq!(Status::of(0), Status::Expired);
        assert_eq!(Status::of(-5), Status::Expired);
    }

    #[test]
    fn the_date_turns_at_local_midnight() {
        // 2026-11-22 17:00 UTC is 2026-11-23 00:00 in Jakarta.
        let utc = crate::clock::parse_odoo("2026-11-22 17:00:00").unwrap();
        let jakarta = zone_offset("Asia/Jakarta").unwrap();
        assert_eq!(days_left("2026-11-23", today(utc, jakarta)), Some(0));
        assert_eq!(days_left("2026-11-23", today(utc - 1, jakarta)), Some(1));
        assert_eq!(zone_offset("+05:30"), Some(19_800));
        assert_eq!(zone_offset("Mars/Olympus"), None);
    }

    #[test]
    fn thresholds_fire_once_and_catch_up() {
        let t = [90, 60, 30, 7];
        // First seen 100 days out: nothing yet.
        assert_eq!(due(100, &t, &[]), vec![]);
        // First seen 45 days out: 60 is the one reminder, 90 is recorded unsent.
        assert_eq!(due(45, &t, &[]), vec![(90, false), (60, true)]);
        // Known since 95 days out (90 sent at 89); the agent was off past both 60 and 30.
        assert_eq!(due(20, &t, &[90]), vec![(60, true), (30, true)]);
        // Nothing twice.
        assert_eq!(due(20, &t, &[90, 60, 30]), vec![]);
        // First seen already expired: recorded, nothing sent.
        assert_eq!(
            due(-3, &t, &[]),
            vec![(90, false), (60, false), (30, false), (7, false)]
        );
    }
}
