//! The locks' MQTT traffic (IoT rules; the embedded broker locally). Every
//! message is validated before it touches state: an unknown device, a
//! malformed body or an out-of-range value is logged and dropped.

use serde_json::Value as Json;

use crate::App;
use crate::platform::function::{Function, Uses};

use super::model::LOCK_STATES;
use super::service::{self, StatusReport};

pub const STATUS_SQL: &str = "SELECT *, topic(2) AS device_id FROM 'smartlock/+/status'";
pub const RESPONSE_SQL: &str = "SELECT *, topic(2) AS device_id FROM 'smartlock/+/response'";
pub const HEARTBEAT_SQL: &str = "SELECT topic(2) AS device_id FROM 'smartlock/+/heartbeat'";
/// AWS IoT's lifecycle events (the local broker publishes the same).
pub const PRESENCE_SQL: &str = "SELECT clientId AS device_id, eventType AS event_type FROM '$aws/events/presence/+/+'";

fn device_id(event: &Json) -> Option<&str> {
    event.get("device_id").and_then(Json::as_str).filter(|id| service::valid_device_id(id))
}

/// Why a message was dropped.
fn reject(event: &Json, why: &str) -> anyhow::Result<()> {
    let device = event.get("device_id").and_then(Json::as_str).unwrap_or("?");
    tracing::warn!(device_id = device, reason = why, "MQTT message rejected");
    Ok(())
}

pub const LOCKS_MQTT_STATUS: Function =
    Function::iot("locks-mqtt-status", "Record a lock's status report (locks)", STATUS_SQL, |app, event| {
        Box::pin(status(app, event))
    })
    .uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `smartlock/{device_id}/status` `{online?, battery?, lock_status?|status?, signal_strength?, …}`.
pub async fn status(app: &'static App, event: Json) -> anyhow::Result<()> {
    let Some(id) = device_id(&event) else { return reject(&event, "invalid device id") };
    let online = match event.get("online") {
        None | Some(Json::Null) => true,
        Some(Json::Bool(b)) => *b,
        Some(_) => return reject(&event, "online is not a boolean"),
    };
    let battery = match event.get("battery").or_else(|| event.get("battery_level")) {
        None | Some(Json::Null) => None,
        Some(v) => match v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)) {
            Some(b) if (0..=100).contains(&b) => Some(b),
            _ => return reject(&event, "battery is not a whole percentage from 0 to 100"),
        },
    };
    let lock_status = match event.get("lock_status").or_else(|| event.get("status")) {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if LOCK_STATES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => return reject(&event, "lock_status is not one of locked, unlocked, jammed, error"),
    };
    let signal_strength = match event.get("signal_strength") {
        None | Some(Json::Null) => None,
        Some(v) => match v.as_i64() {
            Some(dbm) if (-150..=0).contains(&dbm) => Some(dbm),
            _ => return reject(&event, "signal_strength is not a dBm value from -150 to 0"),
        },
    };
    service::record_status(app, id, StatusReport { online, battery, lock_status, signal_strength }).await
}

pub const LOCKS_MQTT_RESPONSE: Function = Function::iot(
    "locks-mqtt-response",
    "Complete a lock command the device answered (locks)",
    RESPONSE_SQL,
    |app, event| Box::pin(response(app, event)),
)
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `smartlock/{device_id}/response` `{request_id, success, status?, reason?}`.
pub async fn response(app: &'static App, event: Json) -> anyhow::Result<()> {
    let Some(id) = device_id(&event) else { return reject(&event, "invalid device id") };
    let Some(request_id) = event.get("request_id").and_then(Json::as_str).filter(|r| !r.is_empty() && r.len() <= 64)
    else {
        return reject(&event, "no request_id");
    };
    let Some(success) = event.get("success").and_then(Json::as_bool) else {
        return reject(&event, "success is not a boolean");
    };
    let status = match event.get("status") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if LOCK_STATES.contains(&s.as_str()) => Some(s.as_str()),
        Some(_) => return reject(&event, "status is not one of locked, unlocked, jammed, error"),
    };
    let reason = ["reason", "error", "message"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Json::as_str))
        .map(|r| r.chars().take(200).collect::<String>());
    service::complete_command(app, id, request_id, success, status, reason).await
}

pub const LOCKS_MQTT_HEARTBEAT: Function =
    Function::iot("locks-mqtt-heartbeat", "Record a lock's heartbeat (locks)", HEARTBEAT_SQL, |app, event| {
        Box::pin(heartbeat(app, event))
    })
    .uses(&[Uses::TableWrite]);

/// `smartlock/{device_id}/heartbeat`: seen now.
pub async fn heartbeat(app: &'static App, event: Json) -> anyhow::Result<()> {
    let Some(id) = device_id(&event) else { return reject(&event, "invalid device id") };
    service::record_heartbeat(app, id).await
}

pub const LOCKS_PRESENCE: Function =
    Function::iot("locks-presence", "A lock connected or disconnected (locks)", PRESENCE_SQL, |app, event| {
        Box::pin(presence(app, event))
    })
    .uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `$aws/events/presence/connected|disconnected/{clientId}`: a lock's connection came or went.
/// Client ids that are not locks (other devices, tools) are ignored.
pub async fn presence(app: &'static App, event: Json) -> anyhow::Result<()> {
    let Some(id) = device_id(&event) else { return Ok(()) };
    if service::get_lock(app, id).await?.is_none() {
        return Ok(());
    }
    match event.get("event_type").and_then(Json::as_str) {
        Some("connected") => service::record_heartbeat(app, id).await,
        Some("disconnected") => service::mark_offline(app, id, None).await.map(|_| ()),
        _ => reject(&event, "unknown presence event"),
    }
}
