//! The lock items as stored. Times are epoch seconds unless named `_millis`.

use serde::{Deserialize, Serialize};

/// The states a lock reports (seed: locked/unlocked/jammed/error).
pub const LOCK_STATES: [&str; 4] = ["locked", "unlocked", "jammed", "error"];

/// Below this battery percentage a lock raises `low_battery`, once per drop.
pub const LOW_BATTERY: i64 = 20;

/// Seconds of silence after which a lock counts as offline.
pub const OFFLINE_AFTER_SECS: i64 = 300;

/// User preferences of a lock (the seed's DeviceSettings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LockSettings {
    pub auto_lock_enabled: bool,
    /// Seconds.
    pub auto_lock_delay: i64,
    pub silent_mode: bool,
    pub led_enabled: bool,
    pub notifications_enabled: bool,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            auto_lock_enabled: true,
            auto_lock_delay: 30,
            silent_mode: false,
            led_enabled: true,
            notifications_enabled: true,
        }
    }
}

/// A smart lock (the seed's Device), keyed by its hardware id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lock {
    pub device_id: String,
    pub name: String,
    #[serde(default)]
    pub location: String,
    pub owner_id: String,
    pub is_online: bool,
    pub battery_level: i64,
    pub lock_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_strength: Option<i64>,
    #[serde(default)]
    pub firmware_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    /// The last lock/unlock command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<i64>,
    /// Set when the battery went below [`LOW_BATTERY`] and its alert was raised; cleared when it recovers.
    #[serde(default)]
    pub battery_low: bool,
    #[serde(default)]
    pub settings: LockSettings,
    /// Access log entries written (the `count` of `logs/`), added to in the transaction that writes each.
    #[serde(default)]
    pub log_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Lock,
    Unlock,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Lock => "lock",
            Action::Unlock => "unlock",
        }
    }

    /// The state a successful command leaves the lock in.
    pub fn state(self) -> &'static str {
        match self {
            Action::Lock => "locked",
            Action::Unlock => "unlocked",
        }
    }
}

/// An access log entry (the seed's AccessLog): one command and what came of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessLogEntry {
    pub request_id: String,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Who sent it, as the seed shows it (the user's name, or `system`).
    pub user: String,
    /// `app` (the API), `system` (a device removed).
    pub access_method: String,
    pub action: Action,
    /// `pending` until the device answers, then `succeeded` or `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub timestamp_millis: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
}

/// A command waiting for the device's response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingCommand {
    pub request_id: String,
    pub device_id: String,
    pub action: Action,
    /// The sort key of its access log entry.
    pub log_sk: String,
    pub deadline_millis: i64,
    #[serde(default)]
    pub done: bool,
}

/// One battery reading.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatteryReading {
    pub level: i64,
    pub at: i64,
}
