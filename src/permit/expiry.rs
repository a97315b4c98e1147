//! Expiry status and reminder thresholds, from the date in the regency's time zone
//! ([`crate::clock::today`]).

/// Days from `today` until a `YYYY-MM-DD` expiry (0 on the day, negative after).
pub(crate) fn days_left(expiry: &str, today: i64) -> Option<i64> {
    let day = crate::clock::parse_odoo(expiry.get(..10)?)?.div_euclid(86_400);
    Some(day - today)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Warning,
    Critical,
    Expired,
}

impl Status {
    pub(crate) fn of(days_left: i64) -> Status {
        match days_left {
            d if d > 60 => Status::Ok,
            d if d > 30 => Status::Warning,
            d if d > 0 => Status::Critical,
            _ => Status::Expired,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Expired => "expired",
        }
    }
}

/// Which thresholds to record now for a permit `days_left` from expiry, whose expiry was
/// learned when `learned_days_left` remained, given the ones already recorded; each with
/// whether it is sent.
///
/// A threshold crossed since the expiry was learned is sent, also when the agent was off on the
/// day it passed (catch up, never skip). Of those already passed when the expiry was learned,
/// only the nearest is sent: one timely reminder, not a burst of stale ones. Nothing is sent
/// once the permit has expired (an "expires in 7 days" after the fact helps nobody); such
/// thresholds are recorded unsent, so they never go out late.
pub(crate) fn due(days_left: i64, learned_days_left: i64, thresholds: &[u32], recorded: &[u32]) -> Vec<(u32, bool)> {
    let nearest_at_learning = thresholds
        .iter()
        .copied()
        .filter(|&t| learned_days_left <= i64::from(t))
        .min();
    thresholds
        .iter()
        .copied()
        .filter(|&t| days_left <= i64::from(t) && !recorded.contains(&t))
        .map(|t| {
            let crossed_since = i64::from(t) < learned_days_left;
            (t, days_left > 0 && (crossed_since || Some(t) == nearest_at_learning))
        })
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
    fn days_left_turn_at_the_regencys_midnight() {
        use crate::clock::{parse_odoo, today, zone_offset};
        // 2026-11-22 17:00 UTC is 2026-11-23 00:00 in Jakarta.
        let utc = parse_odoo("2026-11-22 17:00:00").unwrap();
        let jakarta = zone_offset("Asia/Jakarta").unwrap();
        assert_eq!(days_left("2026-11-23", today(utc, jakarta)), Some(0));
        assert_eq!(days_left("2026-11-23", today(utc - 1, jakarta)), Some(1));
    }

    #[test]
    fn thresholds_fire_once_and_catch_up() {
        let t = [90, 60, 30, 7];
        // Learned 100 days out: nothing yet; each threshold as it comes, caught up after days off.
        assert_eq!(due(100, 100, &t, &[]), vec![]);
        assert_eq!(due(85, 100, &t, &[]), vec![(90, true)]);
        assert_eq!(
            due(45, 100, &t, &[]),
            vec![(90, true), (60, true)],
            "off from 100 to 45 days left"
        );
        assert_eq!(due(20, 100, &t, &[90]), vec![(60, true), (30, true)]);
        // Nothing twice.
        assert_eq!(due(20, 100, &t, &[90, 60, 30]), vec![]);
        // Learned 45 days out: 60 is the one reminder, 90 is recorded unsent; later ones as they come.
        assert_eq!(due(45, 45, &t, &[]), vec![(90, false), (60, true)]);
        assert_eq!(due(25, 45, &t, &[90, 60]), vec![(30, true)]);
        // Learned already expired: recorded, nothing sent.
        assert_eq!(
            due(-3, -3, &t, &[]),
            vec![(90, false), (60, false), (30, false), (7, false)]
        );
        // Off from 85 to -10 days left: nothing goes out after the expiry.
        assert_eq!(due(-10, 100, &t, &[90]), vec![(60, false), (30, false), (7, false)]);
        // A threshold added to the config later does not reach long-expired permits.
        assert_eq!(
            due(-300, 100, &[90, 60, 30, 14, 7], &[90, 60, 30, 7]),
            vec![(14, false)]
        );
    }
}
