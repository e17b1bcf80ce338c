//! Health: proves the whole path (route, Lambda, template) end to end.

use serde::Serialize;

use crate::App;
use crate::platform::http::{self, Request, Response};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

/// `GET /health/` and `GET /api/v1/health/` (seeds 003, 004). No store round trip.
pub async fn health(_app: &'static App, _req: Request) -> http::Result<Response> {
    http::ok(&Health { status: "healthy", service: "premises", version: env!("CARGO_PKG_VERSION") })
}
