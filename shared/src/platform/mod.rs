//! The platform layer: configuration, telemetry, storage, queues, devices,
//! HTTP plumbing and the Lambda entry points. Domain-agnostic.

pub mod app;
pub mod clock;
pub mod config;
pub mod devices;
pub mod doc;
pub mod function;
pub mod http;
pub mod id;
pub mod lambda;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod template;
