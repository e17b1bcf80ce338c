//! Every key the bank module writes. See docs/data-model.md.

use crate::platform::store::Key;

/// A payment, one per bank transaction id: `BANKTX#<id>` / `PAYMENT`;
/// GSI1 `PAYMENTS#<status>` / [`payment_sk`], GSI2 `ROOMPAYMENTS#<room>` / [`payment_sk`] once credited to a room.
pub fn payment(transaction_id: &str) -> Key {
    Key::new(format!("BANKTX#{transaction_id}"), "PAYMENT")
}

pub fn payments_by_status_gsi1pk(status: &str) -> String {
    format!("PAYMENTS#{status}")
}

pub fn room_payments_gsi2pk(room: &str) -> String {
    format!("ROOMPAYMENTS#{room}")
}

/// GSI sort key of a payment: when it was received (epoch ms, 13 digits), then its id (oldest first).
pub fn payment_sk(received_at_millis: i64, transaction_id: &str) -> String {
    format!("{received_at_millis:013}#{transaction_id}")
}

/// The scheduled import's state (cursor, last success and error, rate limit): `BANK#IMPORT` / `STATE`.
pub fn import_state() -> Key {
    Key::new("BANK#IMPORT", "STATE")
}
