//! The endpoints' MQTT transport (IoT rules; the embedded broker locally).
//!
//! - `appliance/{endpoint_id}/request` `{request_id, op, body}` → the operation
//!   HTTP would run; the reply `{request_id, status, body}` goes to
//!   `appliance/{endpoint_id}/reply`. Tokens must name the topic's endpoint.
//! - `appliance/{endpoint_id}/status` → the endpoint's `last_seen`.

use ::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::App;
use crate::platform::function::{Function, Uses};
use crate::platform::http::ApiError;
use crate::platform::store::{Cond, StoreError, Update, n};

use super::handlers::status_and_body;
use super::{keys, service};

pub const REQUEST_SQL: &str = "SELECT *, topic(2) AS endpoint_id FROM 'appliance/+/request'";
pub const STATUS_SQL: &str = "SELECT topic(2) AS endpoint_id FROM 'appliance/+/status'";

#[derive(Debug, Deserialize)]
struct MqttRequest {
    endpoint_id: String,
    #[serde(default)]
    request_id: Json,
    #[serde(default)]
    op: String,
    #[serde(default)]
    body: Json,
}

pub const APPLIANCE_MQTT_REQUEST: Function = Function::iot(
    "appliance-mqtt-request",
    "Answer an endpoint's MQTT request (appliances)",
    REQUEST_SQL,
    |app, event| Box::pin(request(app, event)),
)
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE), Uses::Publish("appliance")]);

/// Runs one request and publishes its reply. A publish failure fails the invocation (IoT retries it).
pub async fn request(app: &'static App, event: Json) -> anyhow::Result<()> {
    let req: MqttRequest = serde_json::from_value(event)?;
    // The endpoint's certificate identity (the topic it may publish on) stands for its device key.
    let from = service::Caller::Mqtt { endpoint_id: req.endpoint_id.as_str() };
    let (status, body) = match req.op.as_str() {
        "challenge" => status_and_body(StatusCode::OK, service::challenge(app, req.body, from).await),
        "verify" => status_and_body(StatusCode::OK, service::verify(app, req.body, from).await),
        "start" => status_and_body(StatusCode::CREATED, service::start(app, req.body, from).await),
        "finish" => status_and_body(StatusCode::OK, service::finish(app, req.body, from).await),
        other => ApiError::invalid_field(
            "op",
            "invalid_choice",
            format!("\"{other}\" is not one of challenge, verify, start, finish."),
        )
        .into_parts(),
    };
    let reply = json!({"request_id": req.request_id, "status": status.as_u16(), "body": body});
    let topic = format!("appliance/{}/reply", req.endpoint_id);
    app.devices.publish(&topic, reply.to_string().as_bytes()).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct StatusEvent {
    endpoint_id: String,
}

pub const APPLIANCE_MQTT_STATUS: Function = Function::iot(
    "appliance-mqtt-status",
    "Record an endpoint's status telemetry (appliances)",
    STATUS_SQL,
    |app, event| Box::pin(status(app, event)),
)
.uses(&[Uses::TableWrite]);

/// Telemetry: the endpoint was seen now. Unknown endpoints are ignored (logged). One conditional update.
pub async fn status(app: &'static App, event: Json) -> anyhow::Result<()> {
    let event: StatusEvent = serde_json::from_value(event)?;
    let update = Update::new().set("last_seen", n(app.clock.now_secs()));
    match app.store.update(&keys::endpoint(&event.endpoint_id), update, Some(Cond::item_exists())).await {
        Ok(_) => Ok(()),
        Err(StoreError::ConditionFailed) => {
            tracing::warn!(endpoint_id = %event.endpoint_id, "status from an unknown endpoint");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
