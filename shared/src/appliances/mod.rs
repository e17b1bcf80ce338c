//! Appliances (seed 000): rooms with balances in cents, TOTP-authorised
//! appliance runs that reserve money at start and refund the difference at
//! finish, over HTTP and MQTT; admin endpoints; the stuck-run job.
//!
//! - [`model`]: rooms, TOTP secrets, appliances, endpoints, runs, ledger entries;
//! - [`keys`]: every key this module writes (one place);
//! - [`tokens`]: challenge, access and start tokens;
//! - [`service`]: the operations and the money rules;
//! - [`throttle`]: the per-room, per-endpoint TOTP throttle;
//! - [`handlers`] (HTTP), [`mqtt`] (IoT rules), [`admin`], [`jobs`].

pub mod admin;
pub mod handlers;
pub mod jobs;
pub mod keys;
pub mod model;
pub mod mqtt;
pub mod service;
pub mod throttle;
pub mod tokens;
