//! Smart locks over MQTT (seed 003 `apps/devices`): the device registry with
//! provisioning, lock/unlock commands the device acknowledges, status and
//! heartbeat telemetry, connectivity, firmware and time, and the alerts a
//! device's state raises (through [`crate::security::alerts`]).
//!
//! Topics (seed): `smartlock/{device_id}/status|command|response|heartbeat|ota`.
//!
//! - [`model`], [`keys`]: the device, its battery history, access log and pending commands;
//! - [`service`]: the rules (commands, telemetry, transitions that raise alerts);
//! - [`handlers`] (HTTP), [`mqtt`] (IoT rules), [`jobs`] (schedules).

pub mod handlers;
pub mod jobs;
pub mod keys;
pub mod model;
pub mod mqtt;
pub mod service;

use crate::platform::function::Module;

/// The locks module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "locks",
    description: "Smart locks over MQTT: devices, commands, telemetry and access logs (seed 003)",
    functions: &[
        handlers::DEVICES_LIST,
        handlers::DEVICES_CREATE,
        handlers::DEVICES_GET,
        handlers::DEVICES_UPDATE,
        handlers::DEVICES_PATCH,
        handlers::DEVICES_DELETE,
        handlers::DEVICES_LOCK,
        handlers::DEVICES_UNLOCK,
        handlers::DEVICES_STATUS,
        handlers::DEVICES_BATTERY,
        handlers::DEVICES_LOGS,
        handlers::DEVICES_SETTINGS_GET,
        handlers::DEVICES_SETTINGS_PUT,
        handlers::DEVICES_ROTATE_KEYS,
        handlers::DEVICES_FIRMWARE,
        mqtt::LOCKS_MQTT_STATUS,
        mqtt::LOCKS_MQTT_RESPONSE,
        mqtt::LOCKS_MQTT_HEARTBEAT,
        mqtt::LOCKS_PRESENCE,
        jobs::LOCKS_CONNECTIVITY,
        jobs::LOCKS_COMMAND_TIMEOUTS,
        jobs::LOCKS_TIME_SYNC,
    ],
    queues: &[],
    params: &[],
};
