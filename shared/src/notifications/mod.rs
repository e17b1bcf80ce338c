//! Notifications: what producers put on the `notifications` queue.
//!
//! Producers (identity's OTP SMS, later bank credits and device alerts)
//! enqueue a [`Notification`]; the consumer ([`deliver`]) delivers it on each
//! of its channels through [`providers`]. The notification id makes delivery
//! idempotent, so a message the queue delivers twice reaches its recipient
//! once. [`inbox`] serves the in-app inbox and the dev outbox. A secret (an OTP
//! code) travels [`sealed`]: never in plain text on the queue or its DLQ.

pub mod deliver;
pub mod inbox;
pub mod keys;
pub mod providers;
pub mod sealed;

use serde::{Deserialize, Serialize};

use crate::App;
use crate::platform::function::{Module, Param};
use crate::platform::queue::{OutMessage, QueueDef, QueueError};

/// `PREMISES_EMAIL_FROM` in every function (any may queue an email).
pub const EMAIL_FROM: Param = Param::global(
    "EmailFrom",
    "PREMISES_EMAIL_FROM",
    "PREMISES_EMAIL_FROM, the SES-verified sender of notification emails.",
)
.default("no-reply@example.com");

/// The notifications module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "notifications",
    description: "The in-app inbox, and notifications delivered by SMS, email, Telegram and push",
    functions: &[
        inbox::NOTIFICATIONS_LIST,
        inbox::NOTIFICATIONS_UNREAD_COUNT,
        inbox::NOTIFICATIONS_READ,
        inbox::NOTIFICATIONS_READ_ALL,
        inbox::DEV_OUTBOX,
        deliver::NOTIFICATIONS_DELIVER,
        inbox::ADMIN_NOTIFICATIONS_GET,
    ],
    queues: &[QUEUE],
    params: &[EMAIL_FROM],
};

/// The queue every notification goes through.
pub const QUEUE: QueueDef = QueueDef {
    name: "notifications",
    visibility_timeout_secs: 60,
    max_receive_count: 5,
    fifo: false,
    retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
};

/// Who receives a notification: a user, or a bare address for people without an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    User(String),
    Phone(String),
    Email(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Inbox,
    Email,
    Sms,
    Telegram,
}

/// One message to one recipient on one or more channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per message (a UUIDv7, so inbox items sort by time); deliveries are deduplicated on it.
    pub id: String,
    pub recipient: Recipient,
    /// What it is about (`otp`, `room_credited`, `low_battery`, …).
    pub kind: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub data: serde_json::Value,
    pub channels: Vec<Channel>,
    /// The secret part of `body` (an OTP code), sealed ([`sealed`]): the body holds
    /// [`sealed::SECRET_PLACEHOLDER`] in its place, and only the provider call sees it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<String>,
}

/// Puts the notification on the queue. One queue send.
pub async fn enqueue(app: &App, notification: &Notification) -> Result<(), QueueError> {
    app.queue.send(QUEUE.name, OutMessage::json(notification)?).await.map(|_| ())
}
