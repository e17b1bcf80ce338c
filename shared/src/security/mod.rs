//! Security (seed 003 `apps/security`): the alerts devices raise — low
//! battery, a jammed lock, a device gone offline — each told to the device's
//! owner through the notifications queue, and the alert endpoints.

pub mod alerts;

use crate::platform::function::Module;

/// The security module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "security",
    description: "Security alerts the locks raise (seed 003)",
    functions: &[alerts::SECURITY_ALERTS_LIST, alerts::SECURITY_ALERTS_UNRESOLVED, alerts::SECURITY_ALERTS_RESOLVE],
    queues: &[],
    params: &[],
};
