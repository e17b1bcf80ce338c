//! Security (seed 003 `apps/security`): the alerts devices raise — low
//! battery, a jammed lock, a device gone offline — each told to the device's
//! owner through the notifications queue, and the alert endpoints.

pub mod alerts;
