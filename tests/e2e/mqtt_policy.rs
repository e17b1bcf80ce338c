//! The local broker's device policy (issue 13, item 5) attacked through the
//! local stack's real entry points: two locks A and B registered over HTTP by
//! two owners, each connected as a real MQTT client with the credentials the
//! API issued, and an anonymous client. B tries to reach A (subscribe to its
//! commands, acknowledge its unlock, fake its status and presence, rewrite
//! its shadow, take over its client id); the anonymous client tries to connect
//! at all. Each attempt must fail as on AWS IoT (a failure code in the SUBACK,
//! a closed connection on a foreign PUBLISH, a refused CONNECT), and HTTP must
//! show A unchanged. Both stores.

use std::time::Duration;

use premises_local::{Options, Stack};
use reqwest::{Client, StatusCode};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use serde_json::{Value, json};
use shared::platform::clock::Clock;
use shared::platform::config::{Config, StoreBackend};

use crate::helpers::{Backend, Server, data_dir, eventually, unique};

crate::on_both_stores!(
    a_device_subscribing_to_another_locks_command_topic_is_refused_and_never_sees_its_pin,
    a_device_acknowledging_another_locks_unlock_is_disconnected_and_the_command_stays_pending,
    a_device_faking_another_locks_status_heartbeat_or_presence_is_disconnected_and_changes_nothing,
    a_device_rewriting_another_locks_shadow_is_disconnected_and_the_shadow_is_unchanged,
    an_anonymous_client_is_refused_even_with_a_locks_client_id_and_the_lock_stays_connected,
    taking_over_a_locks_client_id_is_refused_even_with_the_anonymous_dev_switch_on_and_the_lock_stays_connected,
    the_premises_binary_refuses_anonymous_mqtt_clients_unless_switched_on,
);

const PASSWORD: &str = "LockOwner123!";
const A: &str = "POLICYA00001";
const B: &str = "POLICYB00001";
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait before concluding that nothing (more) is coming.
const QUIET: Duration = Duration::from_millis(500);

struct T {
    stack: Stack,
    base: String,
    client: Client,
    /// A's owner and A's create answer (with its credentials).
    owner_a: String,
    created_a: Value,
    owner_b: String,
    created_b: Value,
}

impl T {
    /// The stack with its defaults (anonymous MQTT off), and locks A and B of two owners.
    async fn start(backend: &Backend) -> T {
        Self::start_with(backend, false).await
    }

    async fn start_with(backend: &Backend, allow_anonymous: bool) -> T {
        let mut config = Config::for_tests(data_dir("mqtt-policy"));
        if allow_anonymous {
            config.mqtt_allow_anonymous = true;
        }
        let mut sdk = None;
        if let Backend::Dynamodb(endpoint) = backend {
            config.store = StoreBackend::Dynamodb;
            config.table_name = unique("mqtt-policy");
            sdk = Some(crate::helpers::dynamodb_sdk(endpoint).await);
        }
        let clock = Clock::manual(Clock::System.now_millis());
        let stack = Stack::start(config, clock, Options { sdk, ..Options::default() }).await.expect("stack");
        let base = format!("http://{}", stack.http_addr);
        let mut t = T {
            stack,
            base,
            client: Client::new(),
            owner_a: String::new(),
            created_a: Value::Null,
            owner_b: String::new(),
            created_b: Value::Null,
        };
        t.owner_a = t.user().await;
        t.created_a = t.register(&t.owner_a, A).await;
        t.owner_b = t.user().await;
        t.created_b = t.register(&t.owner_b, B).await;
        t
    }

    async fn user(&self) -> String {
        let email = format!("{}@example.com", unique("owner"));
        let body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD, "first_name": "Jan", "last_name": "Novak"});
        let (status, out) = self.call("POST", "/api/v1/auth/register/", None, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out["tokens"]["access"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        crate::helpers::call(&self.client, &self.base, method, path, token, body).await
    }

    async fn register(&self, token: &str, device_id: &str) -> Value {
        let body = json!({"name": "Front Door", "device_id": device_id, "location": "Home"});
        let (status, out) = self.call("POST", "/api/v1/devices/", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out
    }

    /// Connects with `client_id` and `login` (username, password); the CONNACK refusal if any.
    async fn connect(&self, client_id: &str, login: Option<(&str, &str)>) -> Result<Mqtt, ConnectionError> {
        let addr = self.stack.mqtt_addr.expect("broker");
        let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((username, password)) = login {
            options.set_credentials(username, password);
        }
        let (client, mut events) = AsyncClient::new(options, 32);
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                    return Ok::<(), ConnectionError>(());
                }
            }
        })
        .await
        .expect("a CONNACK in time")?;
        Ok(Mqtt { client, events })
    }

    /// A lock connected with its own credentials.
    async fn device(&self, created: &Value) -> Mqtt {
        let creds = &created["credentials"];
        let login = (creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
        self.connect(creds["client_id"].as_str().unwrap(), Some(login)).await.expect("the lock connects")
    }

    /// Lock A, connected and subscribed to its topics, online as far as the API knows.
    async fn lock_a(&self) -> Mqtt {
        let mut a = self.device(&self.created_a).await;
        let codes = a.subscribe(&[&format!("smartlock/{A}/#")]).await;
        assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
        self.until_status(&self.owner_a, A, |s| s["is_online"] == true).await;
        a
    }

    async fn status(&self, token: &str, id: &str) -> Value {
        let (status, out) = self.call("GET", &format!("/api/v1/devices/{id}/status/"), Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    async fn until_status(&self, token: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let found = eventually(WAIT, || async {
            let s = self.status(token, id).await;
            check(&s).then_some(s)
        })
        .await;
        match found {
            Some(s) => s,
            None => panic!("the status never matched: {}", self.status(token, id).await),
        }
    }

    /// What the API shows of a lock's state (without the time it was last seen).
    async fn state(&self, token: &str, id: &str) -> Value {
        let s = self.status(token, id).await;
        json!({"is_online": s["is_online"], "battery_level": s["battery_level"], "lock_status": s["lock_status"]})
    }

    async fn alerts(&self, token: &str) -> Vec<Value> {
        let (status, out) = self.call("GET", "/api/v1/security/alerts/", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["results"].as_array().unwrap().clone()
    }

    async fn logs(&self, token: &str, id: &str) -> Vec<Value> {
        let (status, out) = self.call("GET", &format!("/api/v1/devices/{id}/logs/"), Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["results"].as_array().unwrap().clone()
    }
}

/// A connected MQTT 3.1.1 client (rumqttc).
struct Mqtt {
    client: AsyncClient,
    events: EventLoop,
}

impl Mqtt {
    /// One SUBSCRIBE with all of `filters`: the codes of its SUBACK.
    async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
        let filters = filters.iter().map(|f| SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce));
        self.client.subscribe_many(filters).await.unwrap();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::SubAck(ack)) = self.events.poll().await.expect("mqtt") {
                    return ack.return_codes;
                }
            }
        })
        .await
        .expect("a SUBACK in time")
    }

    /// Publishes with QoS 1 and drives the connection until the broker acknowledged it.
    async fn publish(&mut self, topic: &str, body: Value) {
        self.client.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::PubAck(_)) = self.events.poll().await.expect("mqtt") {
                    return;
                }
            }
        })
        .await
        .expect("a PUBACK in time");
    }

    /// Publishes with QoS 1 and asserts that the broker closes the connection
    /// instead of acknowledging.
    async fn publish_and_be_disconnected(mut self, topic: &str, body: Value) {
        self.client.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        let outcome = tokio::time::timeout(WAIT, async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => return "acknowledged",
                    Ok(_) => {}
                    Err(_) => return "disconnected",
                }
            }
        })
        .await
        .expect("the broker neither acknowledged nor disconnected");
        assert_eq!(outcome, "disconnected", "a publish to {topic:?} was accepted");
    }

    /// The next message within `within`, if any.
    async fn next_within(&mut self, within: Duration) -> Option<(String, Value)> {
        tokio::time::timeout(within, async {
            loop {
                if let Event::Incoming(Packet::Publish(p)) = self.events.poll().await.expect("mqtt") {
                    return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
            }
        })
        .await
        .ok()
    }

    async fn next(&mut self) -> (String, Value) {
        self.next_within(WAIT).await.expect("a message in time")
    }

    /// The next message on a topic ending with `suffix`, skipping others.
    async fn next_ending(&mut self, suffix: &str) -> Value {
        loop {
            let (topic, body) = self.next().await;
            if topic.ends_with(suffix) {
                return body;
            }
        }
    }
}

fn refusal(result: Result<Mqtt, ConnectionError>) -> ConnectReturnCode {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(other) => panic!("expected a refused CONNECT, got {other:?}"),
        Ok(_) => panic!("expected a refused CONNECT, but it was accepted"),
    }
}

async fn a_device_subscribing_to_another_locks_command_topic_is_refused_and_never_sees_its_pin(backend: Backend) {
    let t = T::start(&backend).await;
    let mut a = t.lock_a().await;
    let mut b = t.device(&t.created_b).await;
    let own = format!("smartlock/{B}/#");
    let foreign = [
        format!("smartlock/{A}/command"),
        "smartlock/+/command".to_string(),
        "#".to_string(),
        format!("+/{A}/#"),
        format!("$aws/things/{A}/shadow/#"),
        "$aws/things/+/shadow/update/delta".to_string(),
        "$aws/events/#".to_string(),
        format!("$share/g/smartlock/{A}/command"),
        "appliance/+/reply".to_string(),
    ];
    let mut filters = vec![own.as_str()];
    filters.extend(foreign.iter().map(String::as_str));
    // This is what a refused subscription looks like to rumqttc: `Failure` (0x80) at its position.
    let codes = b.subscribe(&filters).await;
    let mut expected = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)];
    expected.extend(foreign.iter().map(|_| SubscribeReasonCode::Failure));
    assert_eq!(codes, expected);

    let (status, sent) = t
        .call("POST", &format!("/api/v1/devices/{A}/unlock/"), Some(&t.owner_a), Some(json!({"pin_code": "246810"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let command = a.next_ending("/command").await;
    assert_eq!(command["pin"], "246810");
    assert_eq!(b.next_within(QUIET).await, None, "B received something of A's");

    // B's own subscription works: its connection is alive and gets its own commands only.
    let (status, _) = t.call("POST", &format!("/api/v1/devices/{B}/lock/"), Some(&t.owner_b), None).await;
    assert_eq!(status, StatusCode::OK);
    let (topic, command) = b.next().await;
    assert_eq!(
        (topic.as_str(), command["command"].as_str()),
        (format!("smartlock/{B}/command").as_str(), Some("lock"))
    );
    assert_eq!(b.next_within(QUIET).await, None);
}

async fn a_device_acknowledging_another_locks_unlock_is_disconnected_and_the_command_stays_pending(backend: Backend) {
    let t = T::start(&backend).await;
    let mut a = t.lock_a().await;
    let (_, sent) = t
        .call("POST", &format!("/api/v1/devices/{A}/unlock/"), Some(&t.owner_a), Some(json!({"pin_code": "246810"})))
        .await;
    let request_id = sent["request_id"].clone();
    assert_eq!(a.next_ending("/command").await["request_id"], request_id);

    let b = t.device(&t.created_b).await;
    let forged = json!({"request_id": request_id, "success": true, "status": "unlocked"});
    b.publish_and_be_disconnected(&format!("smartlock/{A}/response"), forged.clone()).await;
    tokio::time::sleep(QUIET).await;
    let logs = t.logs(&t.owner_a, A).await;
    assert_eq!((logs.len(), logs[0]["status"].as_str()), (1, Some("pending")), "{logs:?}");
    assert_eq!(t.status(&t.owner_a, A).await["lock_status"], "locked");

    // A's own acknowledgement still completes it.
    a.publish(&format!("smartlock/{A}/response"), forged).await;
    t.until_status(&t.owner_a, A, |s| s["lock_status"] == "unlocked").await;
    assert_eq!(t.logs(&t.owner_a, A).await[0]["status"], "succeeded");
}

async fn a_device_faking_another_locks_status_heartbeat_or_presence_is_disconnected_and_changes_nothing(
    backend: Backend,
) {
    let t = T::start(&backend).await;
    let _a = t.lock_a().await;
    let before = t.state(&t.owner_a, A).await;
    assert_eq!(before, json!({"is_online": true, "battery_level": 100, "lock_status": "locked"}));

    let attacks = [
        (format!("smartlock/{A}/status"), json!({"online": false, "battery": 5, "lock_status": "jammed"})),
        (format!("smartlock/{A}/heartbeat"), json!({"battery": 5})),
        (format!("$aws/events/presence/disconnected/{A}"), json!({"clientId": A, "eventType": "disconnected"})),
    ];
    for (topic, body) in attacks {
        let b = t.device(&t.created_b).await;
        b.publish_and_be_disconnected(&topic, body).await;
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(t.state(&t.owner_a, A).await, before);
    assert_eq!(t.alerts(&t.owner_a).await, Vec::<Value>::new());
}

async fn a_device_rewriting_another_locks_shadow_is_disconnected_and_the_shadow_is_unchanged(backend: Backend) {
    let t = T::start(&backend).await;
    let mut a = t.lock_a().await;
    let shadow_before = t.stack.app.devices.shadow(A).await.unwrap();
    let state_before = t.state(&t.owner_a, A).await;

    let b = t.device(&t.created_b).await;
    let rewrite = json!({"state": {"desired": {"lock_state": "unlocked"}, "reported": {"lock_state": "unlocked"}}});
    b.publish_and_be_disconnected(&format!("$aws/things/{A}/shadow/update"), rewrite.clone()).await;
    let b = t.device(&t.created_b).await;
    b.publish_and_be_disconnected(&format!("$aws/things/{A}/shadow/get"), json!({})).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(t.stack.app.devices.shadow(A).await.unwrap(), shadow_before);
    assert_eq!(t.state(&t.owner_a, A).await, state_before);

    // The same update from A itself is applied: the path the attack took is a live one.
    a.publish(&format!("$aws/things/{A}/shadow/update"), rewrite).await;
    let applied = eventually(WAIT, || async {
        let shadow = t.stack.app.devices.shadow(A).await.unwrap()?;
        (shadow.reported["lock_state"] == "unlocked").then_some(())
    })
    .await;
    assert!(applied.is_some(), "A's own shadow update was not applied");
}

async fn an_anonymous_client_is_refused_even_with_a_locks_client_id_and_the_lock_stays_connected(backend: Backend) {
    let t = T::start(&backend).await;
    let mut a = t.lock_a().await;
    // Without credentials nothing is possible, not even reading appliance replies (access tokens).
    assert_eq!(refusal(t.connect(&unique("mosquitto-sub"), None).await), ConnectReturnCode::NotAuthorized);
    assert_eq!(refusal(t.connect(A, None).await), ConnectReturnCode::NotAuthorized);

    let (status, _) = t.call("POST", &format!("/api/v1/devices/{A}/lock/"), Some(&t.owner_a), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a.next_ending("/command").await["command"], "lock");
    assert_eq!(t.status(&t.owner_a, A).await["is_online"], true);
}

async fn taking_over_a_locks_client_id_is_refused_even_with_the_anonymous_dev_switch_on_and_the_lock_stays_connected(
    backend: Backend,
) {
    let t = T::start_with(&backend, true).await;
    let mut a = t.lock_a().await;
    // Anonymous clients are let in by the switch, but not as a provisioned lock
    // (which would disconnect it and report it offline).
    t.connect(&unique("mosquitto-sub"), None).await.expect("the dev switch lets anonymous clients in");
    assert_eq!(refusal(t.connect(A, None).await), ConnectReturnCode::NotAuthorized);
    let creds_b = &t.created_b["credentials"];
    let (user_b, password_b) = (creds_b["username"].as_str().unwrap(), creds_b["password"].as_str().unwrap());
    assert_eq!(refusal(t.connect(A, Some((user_b, password_b))).await), ConnectReturnCode::NotAuthorized);
    assert_eq!(refusal(t.connect(A, Some((A, password_b))).await), ConnectReturnCode::BadUserNamePassword);

    let (status, _) = t.call("POST", &format!("/api/v1/devices/{A}/lock/"), Some(&t.owner_a), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a.next_ending("/command").await["command"], "lock");
    tokio::time::sleep(QUIET).await;
    assert_eq!(t.status(&t.owner_a, A).await["is_online"], true);
}

async fn the_premises_binary_refuses_anonymous_mqtt_clients_unless_switched_on(backend: Backend) {
    let connect = |port: u16| async move {
        let mut options = MqttOptions::new(unique("mosquitto-sub"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (_client, mut events) = AsyncClient::new(options, 8);
        tokio::time::timeout(WAIT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("a CONNACK in time")
    };
    let server = Server::start(&backend).await;
    match connect(server.mqtt.port()).await {
        Err(ConnectionError::ConnectionRefused(code)) => assert_eq!(code, ConnectReturnCode::NotAuthorized),
        other => panic!("an anonymous client was not refused: {other:?}"),
    }
    drop(server);
    let server = Server::start_with_env(&backend, &[("PREMISES_MQTT_ALLOW_ANONYMOUS", "true")]).await;
    connect(server.mqtt.port()).await.expect("the dev switch lets anonymous clients in");
}
