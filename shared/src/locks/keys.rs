//! Every key the locks module writes. See docs/data-model.md.

use crate::platform::store::Key;

/// A lock, keyed by its hardware id (also its `id` in the API): `LOCK#<device_id>` / `LOCK`;
/// GSI1 `OWNERLOCKS#<owner>` / `<created ms, 13 digits>#<device_id>`; while online GSI2
/// `LOCKSONLINE` / `<last_seen s, 12 digits>#<device_id>` (the connectivity job's index).
pub fn lock(device_id: &str) -> Key {
    Key::new(lock_pk(device_id), "LOCK")
}

pub fn lock_pk(device_id: &str) -> String {
    format!("LOCK#{device_id}")
}

pub fn owner_locks_gsi1pk(owner: &str) -> String {
    format!("OWNERLOCKS#{owner}")
}

pub const ONLINE_GSI2PK: &str = "LOCKSONLINE";

pub fn online_gsi2sk(last_seen: i64, device_id: &str) -> String {
    format!("{last_seen:012}#{device_id}")
}

/// The directory of every lock (admins' list, the daily time sync): `LOCKS` / `<device_id>`.
pub fn directory(device_id: &str) -> Key {
    Key::new(DIRECTORY_PK, device_id)
}

pub const DIRECTORY_PK: &str = "LOCKS";

/// A battery reading: `LOCK#<device_id>` / `BATTERY#<ms, 13 digits>#<id>`, kept 30 days.
pub fn battery(device_id: &str, at_millis: i64, id: &str) -> Key {
    Key::new(lock_pk(device_id), format!("{BATTERY_PREFIX}{at_millis:013}#{id}"))
}

pub const BATTERY_PREFIX: &str = "BATTERY#";

/// An access log entry: `LOCK#<device_id>` / `LOG#<ms, 13 digits>#<request id>`.
pub fn log(device_id: &str, at_millis: i64, request_id: &str) -> Key {
    Key::new(lock_pk(device_id), format!("{LOG_PREFIX}{at_millis:013}#{request_id}"))
}

pub const LOG_PREFIX: &str = "LOG#";

/// A command sent to a lock: `LOCKCMD#<request id>` / `LOCKCMD`; while it waits for the device's
/// response GSI1 `LOCKCMDPENDING` / `<deadline ms, 13 digits>#<request id>` (the timeout job's index).
pub fn command(request_id: &str) -> Key {
    Key::new(format!("LOCKCMD#{request_id}"), "LOCKCMD")
}

pub const PENDING_GSI1PK: &str = "LOCKCMDPENDING";

pub fn pending_gsi1sk(deadline_millis: i64, request_id: &str) -> String {
    format!("{deadline_millis:013}#{request_id}")
}
