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

/// A new unique, time-ordered identifier (UUIDv7, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
