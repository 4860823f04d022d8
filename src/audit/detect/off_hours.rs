//! Administrative actions outside working hours (the deployment's hours and days, in its
//! own UTC offset: Minsk by default).

use serde_json::json;

use super::{Alert, Rule};
use crate::audit::{Event, Kind, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// Hours of the day, [start, end).
    pub start_hour: u8,
    pub end_hour: u8,
    /// Monday first.
    pub days: [bool; 7],
    pub utc_offset_minutes: i32,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            start_hour: 8,
            end_hour: 19,
            days: [true, true, true, true, true, false, false],
            utc_offset_minutes: 180,
        }
    }
}

impl WorkingHours {
    /// Whether `at_ms` falls in working hours.
    pub fn contains(&self, at_ms: i64) -> bool {
        let local_s = at_ms.div_euclid(1000) + i64::from(self.utc_offset_minutes) * 60;
        let day = local_s.div_euclid(86_400);
        let hour = (local_s.rem_euclid(86_400) / 3600) as u8;
        // 1970-01-01 was a Thursday (index 3, Monday first).
        let weekday = (day + 3).rem_euclid(7) as usize;
        self.days[weekday] && hour >= self.start_hour && hour < self.end_hour
    }
}

pub fn observe(hours: &WorkingHours, seq: i64, e: &Event) -> Option<Alert> {
    if e.kind != Kind::Admin || e.outcome != Outcome::Success || hours.contains(e.at_ms) {
        return None;
    }
    Some(Alert {
        rule: Rule::AdminOffHours,
        subject: e.subject.clone(),
        ip: e.ip.clone(),
        details: json!({"operation": e.reason, "event_seq": seq}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_are_local_weekdays() {
        let h = WorkingHours::default();
        // 2026-12-02 is a Wednesday; 09:30 in Minsk is 06:30 UTC.
        let wed_0630_utc = 1_796_193_000_000;
        assert!(h.contains(wed_0630_utc));
        assert!(
            !h.contains(wed_0630_utc - 2 * 3600 * 1000),
            "04:30 UTC is 07:30 in Minsk"
        );
        assert!(!h.contains(wed_0630_utc + 3 * 86_400_000), "Saturday");
        assert!(h.contains(wed_0630_utc + 9 * 3600 * 1000), "18:30 in Minsk");
        assert!(
            !h.contains(wed_0630_utc + 10 * 3600 * 1000),
            "19:30 in Minsk"
        );
    }
}
