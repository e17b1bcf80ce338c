//! The `premises` binary as `cargo run` starts it: health, routing errors,
//! headers, the MQTT broker, and a clean stop on SIGTERM.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

use crate::helpers::{Backend, Server};

crate::on_both_stores!(
    health_answers_on_both_documented_paths,
    unknown_paths_are_404_and_known_paths_with_another_method_are_405,
    responses_carry_security_and_cors_headers,
    bodies_over_the_limit_are_refused_with_413,
    an_mqtt_client_can_connect_subscribe_and_publish,
    sigterm_stops_the_stack_cleanly_and_a_restart_serves_again,
);

async fn health_answers_on_both_documented_paths(backend: Backend) {
    let server = Server::start(&backend).await;
    for path in ["/health/", "/api/v1/health/"] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"status": "healthy", "service": "premises", "version": env!("CARGO_PKG_VERSION")}));
    }
}

async fn unknown_paths_are_404_and_known_paths_with_another_method_are_405(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = reqwest::Client::new();

    // Paths match exactly as declared: the trailing slash is part of the route.
    for path in ["/health", "/nope/", "/api/v1/health/extra/"] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }

    let r = client.post(server.url("/health/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}

async fn responses_carry_security_and_cors_headers(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = reqwest::Client::new();
    for r in [
        client.get(server.url("/health/")).header("origin", "https://app.example").send().await.unwrap(),
        client.get(server.url("/missing/")).send().await.unwrap(),
    ] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert!(h["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
        assert_eq!(h["access-control-allow-origin"], "*");
    }

    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/health/"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
}

async fn bodies_over_the_limit_are_refused_with_413(backend: Backend) {
    let server = Server::start(&backend).await;
    let big = vec![b'x'; 1024 * 1024 + 1];
    let r = reqwest::Client::new().get(server.url("/health/")).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
}

async fn an_mqtt_client_can_connect_subscribe_and_publish(backend: Backend) {
    // An anonymous client, as with `mosquitto_sub`: the documented dev switch.
    let server = Server::start_with_env(&backend, &[("PREMISES_MQTT_ALLOW_ANONYMOUS", "true")]).await;
    let mut options = MqttOptions::new(crate::helpers::unique("client"), "127.0.0.1", server.mqtt.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 16);
    client.subscribe("smartlock/+/status", QoS::AtLeastOnce).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await.expect("mqtt connection") {
                Event::Incoming(Packet::SubAck(_)) => {
                    client
                        .publish("smartlock/lock0001/status", QoS::AtLeastOnce, false, r#"{"battery":80}"#)
                        .await
                        .unwrap();
                }
                Event::Incoming(Packet::Publish(p)) => return (p.topic, p.payload),
                _ => {}
            }
        }
    })
    .await
    .expect("the broker delivered the message");
    assert_eq!(received.0, "smartlock/lock0001/status");
    assert_eq!(&received.1[..], br#"{"battery":80}"#);
}

async fn sigterm_stops_the_stack_cleanly_and_a_restart_serves_again(backend: Backend) {
    let server = Server::start(&backend).await;
    let (dir, table) = (server.data_dir.clone(), server.table.clone());
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");

    let again = Server::start_in(&backend, dir, table).await;
    let r = reqwest::get(again.url("/health/")).await.unwrap();
    assert_eq!(r.status(), 200);
}
