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

use crate::platform::doc::{QueryParam, string};
use crate::platform::function::Module;

/// The appliances module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "appliances",
    description: "Rooms with prepaid balances and pay-per-use appliances driven by endpoint devices (seed 000)",
    functions: &[
        handlers::APPLIANCE_AUTH_CHALLENGE,
        handlers::APPLIANCE_AUTH_VERIFY,
        handlers::APPLIANCE_START,
        handlers::APPLIANCE_FINISH,
        admin::ADMIN_ROOMS_CREATE,
        admin::ADMIN_ROOMS_LIST,
        admin::ADMIN_ROOMS_GET,
        admin::ADMIN_ROOMS_TOTP,
        admin::ADMIN_ROOMS_CREDIT,
        admin::ADMIN_ROOMS_LEDGER,
        admin::ADMIN_APPLIANCES_CREATE,
        admin::ADMIN_APPLIANCES_LIST,
        admin::ADMIN_ENDPOINTS_CREATE,
        admin::ADMIN_ENDPOINTS_LIST,
        admin::ADMIN_ENDPOINTS_REVOKE_TOKENS,
        admin::ADMIN_ENDPOINTS_ROTATE_KEY,
        admin::ADMIN_RUNS_LIST,
        admin::ADMIN_RUNS_ABORT,
        mqtt::APPLIANCE_MQTT_REQUEST,
        mqtt::APPLIANCE_MQTT_STATUS,
        jobs::APPLIANCE_STUCK_RUNS,
    ],
    queues: &[],
    params: &[],
};

/// The appliance endpoints' device key header.
pub(crate) const ENDPOINT_KEY: &[QueryParam] = &[QueryParam {
    name: "X-Endpoint-Key",
    description: "The endpoint's device key (from its creation or last rotation). Required unless the endpoint \
                  is `legacy_keyless`: 401 `endpoint_key_required` or `endpoint_key_invalid`, and nothing changes.",
    schema: string,
}];
