//! The sample events in `events/` read as the Lambda runtime delivers them,
//! and the HTTP one runs through the health function.

use std::path::Path;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use shared::App;
use shared::platform::app::LocalParts;
use shared::platform::clock::Clock;
use shared::platform::config::Config;

fn event(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_api_gateway_event_is_a_get_of_the_health_route() {
    let req = lambda_http::request::from_str(&event("apigw-http-v2-health.json")).unwrap();
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.uri().path(), "/health/");
    let RequestContext::ApiGatewayV2(ctx) = req.request_context() else {
        panic!("not an HTTP API (payload 2.0) request: {:?}", req.request_context())
    };
    assert_eq!(ctx.route_key.as_deref(), Some("GET /health/"));
    assert_eq!(ctx.http.method, http::Method::GET);
    assert_eq!(ctx.http.source_ip.as_deref(), Some("203.0.113.24"));
    assert!(ctx.request_id.is_some_and(|id| !id.is_empty()));
}

#[test]
fn the_sqs_event_carries_two_json_messages() {
    let sqs: SqsEvent = serde_json::from_str(&event("sqs.json")).unwrap();
    assert_eq!(sqs.records.len(), 2);
    for record in &sqs.records {
        assert!(record.message_id.as_deref().is_some_and(|id| !id.is_empty()));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert!(record.attributes.contains_key("ApproximateReceiveCount"));
        let body: serde_json::Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        assert!(body["transaction_id"].is_string());
    }
    assert_eq!(sqs.records[1].attributes["ApproximateReceiveCount"], "2");
}

#[test]
fn the_iot_rule_event_is_the_object_the_rule_selects() {
    let payload: serde_json::Value = serde_json::from_str(&event("iot-rule.json")).unwrap();
    let object = payload.as_object().expect("an IoT rule delivers a JSON object");
    assert_eq!(object["device_id"], "lock0001abcd");
    assert_eq!(object["battery_level"], 80);
}

#[test]
fn the_schedule_event_is_an_eventbridge_scheduled_event() {
    let e: EventBridgeEvent = serde_json::from_str(&event("eventbridge-schedule.json")).unwrap();
    assert_eq!(e.detail_type, "Scheduled Event");
    assert_eq!(e.source, "aws.events");
    assert_eq!(e.resources.as_ref().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_api_gateway_event_through_the_health_function_answers_200() {
    let dir = std::env::temp_dir().join(format!("premises-events-test-{}", std::process::id()));
    let local = LocalParts { start_broker: true, ..Default::default() };
    let app = App::build(Config::for_tests(dir.clone()), Clock::System, local).await.unwrap();
    let app: &'static App = Box::leak(Box::new(app));

    let req = lambda_http::request::from_str(&event("apigw-http-v2-health.json")).unwrap();
    let health = shared::catalog::get("health").unwrap();
    let response = shared::platform::http::dispatch(app, health, req).await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "premises");
    let _ = std::fs::remove_dir_all(dir);
}
