//! Every key the notifications module writes. See docs/data-model.md.

use crate::platform::store::Key;

/// The inbox partition of a user (shared with the user item, which sorts apart).
pub fn inbox_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

pub const INBOX_PREFIX: &str = "NOTIF#";

/// One inbox item: `USER#<user>` / `NOTIF#<notification id>` (UUIDv7: sorts by time).
pub fn inbox(user_id: &str, id: &str) -> Key {
    Key::new(inbox_pk(user_id), format!("{INBOX_PREFIX}{id}"))
}

/// GSI1 partition of a user's unread inbox items (sparse: removed when read).
pub fn unread_gsi1pk(user_id: &str) -> String {
    format!("UNREAD#{user_id}")
}

/// What became of one channel of one notification: `NOTIF#<id>` / `DELIVERY#<channel>`.
pub fn delivery(id: &str, channel: &str) -> Key {
    Key::new(format!("NOTIF#{id}"), format!("DELIVERY#{channel}"))
}

/// The dev outbox: `OUTBOX` / `<notification id>#<channel>`.
pub const OUTBOX_PK: &str = "OUTBOX";

pub fn outbox(id: &str, channel: &str) -> Key {
    Key::new(OUTBOX_PK, format!("{id}#{channel}"))
}
