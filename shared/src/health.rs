//! Health: proves the whole path (route, Lambda, template) end to end.

use serde::Serialize;
use serde_json::json;

use crate::App;
use crate::platform::doc::{Op, schema_of};
use crate::platform::function::{Function, Module};
use crate::platform::http::{self, Request, Response};

/// The health module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "health",
    description: "Service health, for load balancers and the seeds' clients",
    functions: &[HEALTH, API_V1_HEALTH],
    queues: &[],
    params: &[],
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

pub const HEALTH: Function =
    Function::http("health", "GET", "/health/", "Service health", |app, req| Box::pin(health(app, req)))
        .doc(health_doc);

pub const API_V1_HEALTH: Function =
    Function::http("api-v1-health", "GET", "/api/v1/health/", "Service health (API prefix)", |app, req| {
        Box::pin(health(app, req))
    })
    .doc(health_doc);

/// `GET /health/` and `GET /api/v1/health/` (seeds 003, 004). No store round trip.
pub async fn health(_app: &'static App, _req: Request) -> http::Result<Response> {
    http::ok(&Health { status: "healthy", service: "premises", version: env!("CARGO_PKG_VERSION") })
}

fn health_doc() -> Op {
    Op::new()
        .reply(200, "The service is up", schema_of::<Health>)
        .reply_example(json!({"status": "healthy", "service": "premises", "version": "0.1.0"}))
}
