//! The appliance items as stored. Money is integer cents; times are epoch seconds.

use serde::{Deserialize, Serialize};

crate::bounded_id!(
    /// A room's key (what residents type and bank payments name).
    pub RoomKey, max = 64
);
crate::bounded_id!(
    /// An endpoint's id (the device in a laundry room).
    pub EndpointId, max = 64
);
crate::bounded_id!(
    /// A run's id (a UUIDv7 today).
    pub RunId, max = 64
);

/// Default cap on the units one run may ask for (an appliance may set its own).
pub const DEFAULT_MAX_UNITS: i64 = 1_000;
/// Default cap on the price (whole currency units) one run may reserve.
pub const DEFAULT_MAX_PRICE: i64 = 1_000;

fn default_max_units() -> i64 {
    DEFAULT_MAX_UNITS
}

fn default_max_price() -> i64 {
    DEFAULT_MAX_PRICE
}

/// A room: the key residents and bank payments use, and its balance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Room {
    pub key: String,
    /// Cents; never negative.
    pub balance: i64,
    /// The user told of the room's bank credits (a resident), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_id: Option<String>,
    pub created_at: i64,
}

/// A room's TOTP secret (base32, RFC 6238 SHA-1, 6 digits, 30 s) and the last accepted step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomTotp {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<i64>,
    pub created_at: i64,
}

/// A kind of appliance and its price per unit in whole currency units.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Appliance {
    pub name: String,
    pub price_per_unit: i64,
    /// Most units one run may ask for (`start` refuses more: 400 naming `units`).
    #[serde(default = "default_max_units")]
    pub max_units: i64,
    /// Most whole currency units one run may reserve (`start` refuses more: 400 naming `price`).
    #[serde(default = "default_max_price")]
    pub max_price: i64,
    pub created_at: i64,
}

/// A device in a laundry room that serves some appliances. As stored: never
/// sent to a client as is (its key hash stays in the store; see `admin::EndpointView`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub name: String,
    pub appliances: Vec<String>,
    /// Every appliance token carries it; bumping it invalidates them all.
    pub token_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    pub created_at: i64,
    /// SHA-256 (hex) of the device key the endpoint sends in `X-Endpoint-Key`;
    /// absent on endpoints created before keys existed (refused until an admin rotates the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// A terminal that cannot send a header: its HTTP requests pass without the key (each one logged).
    #[serde(default)]
    pub legacy_keyless: bool,
}

/// A room's failed TOTP codes at one endpoint (`throttle`): the failures
/// counted in the window that started at `window_start`, and the lock.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TotpThrottle {
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub failures: i64,
    #[serde(default)]
    pub window_start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Finished,
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// One use of an appliance, paid by a room.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub run_id: String,
    pub room: String,
    pub endpoint_id: String,
    pub appliance: String,
    pub initial_units: i64,
    /// Whole currency units, as the client sent them.
    pub initial_price: i64,
    /// `initial_price × 100`, taken from the room at start.
    pub reserved_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_units: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_price: Option<i64>,
    /// Cents given back at finish or abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_cents: Option<i64>,
    pub status: RunStatus,
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Who ended it when it did not finish normally (`device`, `admin`, `stuck_run_job`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

/// One change of a room's balance.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: String,
    pub room: String,
    /// Cents: negative takes from the room, positive gives to it.
    pub amount: i64,
    pub balance_after: i64,
    /// `run_start`, `run_refund`, `admin_credit`, `bank_credit`, …
    pub kind: String,
    /// What caused it (a run id, a bank transaction id, an admin's note).
    pub reference: String,
    /// Epoch milliseconds.
    pub at: i64,
}
