//! Injectable time, so that expiry, TOTP and schedules are testable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The process clock: the system's, or a manual one that tests move.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Milliseconds since the Unix epoch, shared by every clone.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(epoch_millis: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(epoch_millis)))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0),
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// Whole seconds since the Unix epoch (the unit of DynamoDB TTL).
    pub fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance_millis(&self, by: i64) {
        if let Clock::Manual(ms) = self {
            ms.fetch_add(by, Ordering::SeqCst);
        }
    }

    pub fn set_millis(&self, to: i64) {
        if let Clock::Manual(ms) = self {
            ms.store(to, Ordering::SeqCst);
        }
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcDateTime {
    /// The calendar date of an epoch second (Howard Hinnant's civil-from-days).
    pub fn from_epoch_secs(epoch_secs: i64) -> Self {
        let (days, rem) = (epoch_secs.div_euclid(86_400), epoch_secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcDateTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// The epoch second at midnight UTC of a `YYYY-MM-DD` date (Howard Hinnant's days-from-civil);
    /// `None` unless it is a real calendar date.
    pub fn midnight_of(date: &str) -> Option<i64> {
        let b = date.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let number = |s: &str| s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse::<i64>().ok()).flatten();
        let (year, month, day) = (number(&date[..4])?, number(&date[5..7])?, number(&date[8..])?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let secs = (era * 146_097 + doe - 719_468) * 86_400;
        // 31 February comes back as 3 March: not a date.
        let back = UtcDateTime::from_epoch_secs(secs);
        (back.year == year && i64::from(back.month) == month && i64::from(back.day) == day).then_some(secs)
    }

    /// `2026-11-22T03:41:00Z`
    pub fn rfc3339(&self) -> String {
        let UtcDateTime { year, month, day, hour, minute, second } = *self;
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

/// A new unique, time-ordered identifier (UUIDv7, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_become_calendar_dates() {
        assert_eq!(UtcDateTime::from_epoch_secs(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UtcDateTime::from_epoch_secs(1_795_318_860).rfc3339(), "2026-11-22T03:41:00Z");
        assert_eq!(UtcDateTime::from_epoch_secs(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(UtcDateTime::from_epoch_secs(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn calendar_dates_become_epoch_seconds_and_impossible_ones_do_not() {
        assert_eq!(UtcDateTime::midnight_of("1970-01-01"), Some(0));
        assert_eq!(UtcDateTime::midnight_of("2000-02-29"), Some(951_782_400));
        assert_eq!(UtcDateTime::midnight_of("2026-11-22"), Some(1_795_305_600));
        assert_eq!(UtcDateTime::midnight_of("1969-12-31"), Some(-86_400));
        for bad in ["2026-02-29", "2026-02-31", "2026-13-01", "2026-00-10", "2026-1-01", "20261101", "2026-11-+1"] {
            assert_eq!(UtcDateTime::midnight_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_millis(), 1_000);
        clock.advance_millis(1_500);
        assert_eq!((clock.now_millis(), clock.now_secs()), (2_500, 2));
    }
}
