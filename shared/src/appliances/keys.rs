//! Every key the appliances module writes. See docs/data-model.md.

use crate::platform::store::Key;

/// A room: `ROOM#<key>` / `ROOM`, balance in cents; GSI1 `ROOMS` / `<key>`.
pub fn room(key: &str) -> Key {
    Key::new(format!("ROOM#{key}"), "ROOM")
}

pub const ROOMS_GSI1PK: &str = "ROOMS";

/// A room's TOTP secret and the last time step it accepted: `ROOM#<key>` / `TOTP`.
pub fn room_totp(key: &str) -> Key {
    Key::new(format!("ROOM#{key}"), "TOTP")
}

/// A room's TOTP throttle at one endpoint: `ROOM#<key>` / `TOTPTHROTTLE#<endpoint id>` (expires by TTL).
pub fn totp_throttle(room: &str, endpoint_id: &str) -> Key {
    Key::new(format!("ROOM#{room}"), format!("{TOTP_THROTTLE_PREFIX}{endpoint_id}"))
}

/// The room's throttle items sort after this prefix within its partition.
pub const TOTP_THROTTLE_PREFIX: &str = "TOTPTHROTTLE#";

/// The partition of a room (its item, TOTP and ledger).
pub fn room_pk(key: &str) -> String {
    format!("ROOM#{key}")
}

/// Ledger entries sort after this prefix within the room's partition.
pub const LEDGER_PREFIX: &str = "LEDGER#";

/// One ledger entry: `ROOM#<key>` / `LEDGER#<epoch ms, 13 digits>#<id>`.
pub fn ledger(room_key: &str, at_millis: i64, id: &str) -> Key {
    Key::new(room_pk(room_key), format!("{LEDGER_PREFIX}{at_millis:013}#{id}"))
}

/// An appliance type: `APPLIANCE#<name>` / `APPLIANCE`; GSI1 `APPLIANCES` / `<name>`.
pub fn appliance(name: &str) -> Key {
    Key::new(format!("APPLIANCE#{name}"), "APPLIANCE")
}

pub const APPLIANCES_GSI1PK: &str = "APPLIANCES";

/// An endpoint (the device in a laundry room): `ENDPOINT#<id>` / `ENDPOINT`; GSI1 `ENDPOINTS` / `<id>`.
pub fn endpoint(id: &str) -> Key {
    Key::new(format!("ENDPOINT#{id}"), "ENDPOINT")
}

pub const ENDPOINTS_GSI1PK: &str = "ENDPOINTS";

/// Occupancy of one appliance at one endpoint: `ENDPOINT#<id>` / `OCCUPANCY#<appliance>`, the run holding it.
pub fn occupancy(endpoint_id: &str, appliance: &str) -> Key {
    Key::new(format!("ENDPOINT#{endpoint_id}"), format!("OCCUPANCY#{appliance}"))
}

/// A run: `RUN#<id>` / `RUN`; GSI1 `ROOMRUNS#<room>` / `<started_at>#<id>`, GSI2 `RUNSTATUS#<status>` / `<started_at>#<id>`.
pub fn run(id: &str) -> Key {
    Key::new(format!("RUN#{id}"), "RUN")
}

pub fn room_runs_gsi1pk(room: &str) -> String {
    format!("ROOMRUNS#{room}")
}

pub fn run_status_gsi2pk(status: &str) -> String {
    format!("RUNSTATUS#{status}")
}

/// GSI sort key of a run: zero-padded start second, then the id (oldest first).
pub fn run_sk(started_at: i64, id: &str) -> String {
    format!("{started_at:012}#{id}")
}
