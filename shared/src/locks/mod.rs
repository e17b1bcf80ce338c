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
