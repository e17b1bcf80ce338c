//! The device layer as devices and the service see it: the local stack's
//! embedded MQTT broker with [`LocalDevices`] (ordinary MQTT clients connect
//! to it over TCP), and, when moto runs (`PREMISES_TEST_MOTO_ENDPOINT`),
//! [`AwsDevices`] against moto's IoT and IoT data plane.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{ConnectReturnCode, ConnectionError, QoS};
use serde_json::{Value, json};
use shared::platform::clock::Clock;
use shared::platform::devices::aws::AwsDevices;
use shared::platform::devices::broker::{self, BrokerAuth, BrokerHandle};
use shared::platform::devices::local::{DEVICE_SHADOW_FILTERS, LocalDevices};
use shared::platform::devices::{DevicesError, Shadow};
use shared::platform::store::Store;
use shared::platform::store::embedded::EmbeddedStore;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);
/// How long to wait before concluding that a message is not coming.
const QUIET: Duration = Duration::from_millis(300);

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(support::unique("premises-devices-test"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A broker on a free port over a fresh embedded store.
struct Local {
    broker: BrokerHandle,
    devices: LocalDevices,
    _dir: TempDir,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.broker.shutdown();
    }
}

async fn local(allow_anonymous: bool) -> Local {
    let dir = TempDir::new();
    let store = Store::Embedded(EmbeddedStore::open(&dir.0.join("store.sqlite"), Clock::System).unwrap());
    store.ensure_table().await.unwrap();
    let auth = BrokerAuth { store: store.clone(), allow_anonymous };
    let broker = broker::start("127.0.0.1:0".parse().unwrap(), auth).await.unwrap();
    let devices = LocalDevices::new(broker.clone(), store);
    Local { broker, devices, _dir: dir }
}

/// A message as a test client received it.
#[derive(Debug)]
struct Received {
    topic: String,
    payload: Bytes,
    qos: QoS,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// An ordinary MQTT 3.1.1 client (rumqttc) driven by a background task.
struct Client {
    client: rumqttc::AsyncClient,
    messages: mpsc::UnboundedReceiver<Received>,
    subacks: mpsc::UnboundedReceiver<Vec<rumqttc::SubscribeReasonCode>>,
}

async fn connect(
    broker: &BrokerHandle,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<Client, ConnectionError> {
    connect_with_keep_alive(broker, client_id, login, Duration::from_secs(5)).await
}

async fn connect_with_keep_alive(
    broker: &BrokerHandle,
    client_id: &str,
    login: Option<(&str, &str)>,
    keep_alive: Duration,
) -> Result<Client, ConnectionError> {
    let mut options = client_options(broker, client_id, login);
    options.set_keep_alive(keep_alive);
    connect_with(options).await
}

fn client_options(broker: &BrokerHandle, client_id: &str, login: Option<(&str, &str)>) -> rumqttc::MqttOptions {
    let addr = broker.local_addr();
    let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((username, password)) = login {
        options.set_credentials(username, password);
    }
    options
}

async fn connect_with(options: rumqttc::MqttOptions) -> Result<Client, ConnectionError> {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
    loop {
        match timeout(WAIT, eventloop.poll()).await.expect("no CONNACK in time")? {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => break,
            _ => continue,
        }
    }
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (subacks_tx, subacks) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = messages_tx.send(Received { topic: p.topic, payload: p.payload, qos: p.qos });
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))) => {
                    let _ = subacks_tx.send(ack.return_codes);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    Ok(Client { client, messages, subacks })
}

async fn anonymous(broker: &BrokerHandle, client_id: &str) -> Client {
    connect(broker, client_id, None).await.unwrap()
}

impl Client {
    async fn subscribe(&mut self, filter: &str) {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let codes = timeout(WAIT, self.subacks.recv()).await.expect("no SUBACK in time").unwrap();
        assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    }

    /// One SUBSCRIBE with all of `filters`; the SUBACK's codes.
    async fn subscribe_many(&mut self, filters: &[&str]) -> Vec<rumqttc::SubscribeReasonCode> {
        let filters = filters.iter().map(|f| rumqttc::SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce));
        self.client.subscribe_many(filters).await.unwrap();
        timeout(WAIT, self.subacks.recv()).await.expect("no SUBACK in time").unwrap()
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    /// Waits until the broker closed the connection (messages before that are ignored).
    async fn closed(&mut self) {
        timeout(WAIT, async { while self.messages.recv().await.is_some() {} })
            .await
            .expect("the broker did not close the connection");
    }

    async fn next(&mut self) -> Received {
        timeout(WAIT, self.messages.recv()).await.expect("no message in time").unwrap()
    }

    /// The next message on `topic`, skipping others (such as `update/accepted` before a delta).
    async fn next_on(&mut self, topic: &str) -> Received {
        loop {
            let message = self.next().await;
            if message.topic == topic {
                return message;
            }
        }
    }

    async fn nothing_more(&mut self) {
        if let Ok(Some(message)) = timeout(QUIET, self.messages.recv()).await {
            panic!("unexpected message {message:?}");
        }
    }
}

fn refusal(result: Result<Client, ConnectionError>) -> ConnectReturnCode {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(other) => panic!("expected a refused connection, got {other:?}"),
        Ok(_) => panic!("expected a refused connection, but it was accepted"),
    }
}

async fn next_incoming(rx: &mut mpsc::Receiver<broker::Incoming>) -> broker::Incoming {
    timeout(WAIT, rx.recv()).await.expect("no message in time").unwrap()
}

// ---------------------------------------------------------------------------
// The local broker

#[tokio::test]
async fn the_broker_reports_the_port_it_picked() {
    let local = local(true).await;
    let addr = local.broker.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(local.broker.endpoint(), addr.to_string());
    std::net::TcpStream::connect(addr).unwrap();
}

#[tokio::test]
async fn two_mqtt_clients_exchange_messages() {
    let local = local(true).await;
    let mut receiver = anonymous(&local.broker, "receiver").await;
    receiver.subscribe("lock/+/status").await;
    let sender = anonymous(&local.broker, "sender").await;
    sender.publish("lock/a1/status", r#"{"battery":80}"#).await;
    let message = receiver.next().await;
    assert_eq!(message.topic, "lock/a1/status");
    assert_eq!(message.json(), json!({"battery": 80}));
    sender.publish("other/topic", "x").await;
    receiver.nothing_more().await;
}

#[tokio::test]
async fn a_client_without_keep_alive_is_accepted_as_aws_iot_does() {
    let local = local(true).await;
    let mut client = connect_with_keep_alive(&local.broker, "no-keep-alive", None, Duration::ZERO).await.unwrap();
    client.subscribe("ping").await;
    local.devices.publish("ping", b"1").await.unwrap();
    client.next().await;
}

#[tokio::test]
async fn an_mqtt5_client_exchanges_messages_with_an_mqtt311_client() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::Packet as Packet5;

    let local = local(true).await;
    let addr = local.broker.local_addr();
    let options = rumqttc::v5::MqttOptions::new("v5-client", addr.ip().to_string(), addr.port());
    let (client5, mut eventloop5) = rumqttc::v5::AsyncClient::new(options, 16);
    client5.subscribe("v5/in", QoS5::AtLeastOnce).await.unwrap();
    client5.subscribe("$aws/things/v5-client/shadow/update/delta", QoS5::AtLeastOnce).await.unwrap();
    let mut subacks = 0;
    while subacks < 2 {
        if let rumqttc::v5::Event::Incoming(Packet5::SubAck(_)) =
            timeout(WAIT, eventloop5.poll()).await.expect("no SUBACK in time").unwrap()
        {
            subacks += 1;
        }
    }
    let mut client4 = anonymous(&local.broker, "v4-client").await;
    client4.subscribe("v5/out").await;

    client4.publish("v5/in", "from 3.1.1").await;
    let received = loop {
        match timeout(WAIT, eventloop5.poll()).await.expect("no message in time").unwrap() {
            rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => break p,
            _ => continue,
        }
    };
    assert_eq!((&received.topic[..], &received.payload[..]), (&b"v5/in"[..], &b"from 3.1.1"[..]));

    local.devices.update_desired("v5-client", json!({"lock": "closed"})).await.unwrap();
    let delta = loop {
        match timeout(WAIT, eventloop5.poll()).await.expect("no delta in time").unwrap() {
            rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => break p,
            _ => continue,
        }
    };
    assert_eq!(&delta.topic[..], b"$aws/things/v5-client/shadow/update/delta");
    let delta: Value = serde_json::from_slice(&delta.payload).unwrap();
    assert_eq!(delta["state"], json!({"lock": "closed"}));

    client5.publish("v5/out", QoS5::AtLeastOnce, false, "from 5").await.unwrap();
    let poll = tokio::spawn(async move {
        loop {
            if eventloop5.poll().await.is_err() {
                break;
            }
        }
    });
    let message = client4.next().await;
    assert_eq!((message.topic.as_str(), &message.payload[..]), ("v5/out", &b"from 5"[..]));
    poll.abort();
}

#[tokio::test]
async fn a_service_publish_reaches_a_subscribed_client_with_qos_1() {
    let local = local(true).await;
    let mut device = anonymous(&local.broker, "lock-1").await;
    device.subscribe("commands/lock-1").await;
    local.devices.publish("commands/lock-1", br#"{"action":"unlock"}"#).await.unwrap();
    let message = device.next().await;
    assert_eq!(message.topic, "commands/lock-1");
    assert_eq!(message.qos, QoS::AtLeastOnce);
    assert_eq!(message.json(), json!({"action": "unlock"}));
}

#[tokio::test]
async fn many_service_publishes_arrive_in_order() {
    let local = local(true).await;
    let mut device = anonymous(&local.broker, "counter").await;
    device.subscribe("count").await;
    for i in 0..50 {
        local.devices.publish("count", i.to_string().as_bytes()).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(device.next().await.payload, Bytes::from(i.to_string()));
    }
}

#[tokio::test]
async fn a_broker_subscription_receives_what_clients_publish() {
    let local = local(true).await;
    let mut rx = local.broker.subscribe(&["smartlock/+/status".to_string(), "alarm/#".to_string()]).await.unwrap();
    let device = anonymous(&local.broker, "lock-7").await;
    device.publish("smartlock/lock-7/status", r#"{"battery":10}"#).await;
    device.publish("alarm/zone/1", "on").await;
    device.publish("unrelated", "x").await;
    let first = next_incoming(&mut rx).await;
    assert_eq!((first.topic.as_str(), &first.payload[..]), ("smartlock/lock-7/status", &br#"{"battery":10}"#[..]));
    let second = next_incoming(&mut rx).await;
    assert_eq!(second.topic, "alarm/zone/1");
    // The service's own publishes reach service subscriptions too.
    local.devices.publish("alarm/zone/2", b"off").await.unwrap();
    assert_eq!(next_incoming(&mut rx).await.topic, "alarm/zone/2");
    assert!(timeout(QUIET, rx.recv()).await.is_err(), "nothing else arrives");
}

#[tokio::test]
async fn shadow_topics_work_but_are_not_matched_by_wildcards() {
    let local = local(true).await;
    let mut rx = local.broker.subscribe(&["$aws/things/+/shadow/update".to_string()]).await.unwrap();
    let mut everything = anonymous(&local.broker, "everything").await;
    everything.subscribe("#").await;
    let device = anonymous(&local.broker, "lock-9").await;
    device.publish("$aws/things/lock-9/shadow/update", r#"{"state":{"reported":{"lock":"closed"}}}"#).await;
    let message = next_incoming(&mut rx).await;
    assert_eq!(message.topic, "$aws/things/lock-9/shadow/update");
    everything.nothing_more().await;
    device.publish("plain/topic", "x").await;
    assert_eq!(everything.next().await.topic, "plain/topic");
}

#[tokio::test]
async fn connections_and_disconnections_are_published_as_aws_iot_lifecycle_events() {
    let local = local(true).await;
    let mut rx = local.broker.subscribe(&["$aws/events/presence/+/+".to_string()]).await.unwrap();
    let watched = anonymous(&local.broker, "watched-lock").await;
    let connected = next_incoming(&mut rx).await;
    assert_eq!(connected.topic, "$aws/events/presence/connected/watched-lock");
    let body: serde_json::Value = serde_json::from_slice(&connected.payload).unwrap();
    assert_eq!((body["clientId"].as_str(), body["eventType"].as_str()), (Some("watched-lock"), Some("connected")));
    watched.client.disconnect().await.unwrap();
    let disconnected = next_incoming(&mut rx).await;
    assert_eq!(disconnected.topic, "$aws/events/presence/disconnected/watched-lock");
}

#[tokio::test]
async fn a_client_using_the_internal_topic_prefix_is_disconnected() {
    let local = local(true).await;
    let mut rx = local.broker.subscribe(&["$aws/things/#".to_string()]).await.unwrap();
    let sneaky = anonymous(&local.broker, "sneaky").await;
    sneaky.publish("~$aws/things/x/shadow/update", "{}").await;
    assert!(timeout(QUIET, rx.recv()).await.is_err(), "the spoofed message is not delivered");
}

#[tokio::test]
async fn publishing_an_invalid_topic_or_an_oversized_payload_is_invalid() {
    let local = local(true).await;
    for topic in ["", "a/+/b", "a/#"] {
        let err = local.devices.publish(topic, b"{}").await.unwrap_err();
        assert!(matches!(err, DevicesError::Invalid(_)), "{topic:?}: {err:?}");
    }
    let err = local.devices.publish("big", &vec![b'x'; 128 * 1024 + 1]).await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
    local.devices.publish("big", &vec![b'x'; 128 * 1024]).await.unwrap();
}

#[tokio::test]
async fn anonymous_clients_are_refused_when_not_allowed() {
    let local = local(false).await;
    assert_eq!(refusal(connect(&local.broker, "nobody", None).await), ConnectReturnCode::NotAuthorized);
}

#[tokio::test]
async fn a_client_cannot_take_over_a_service_session() {
    let local = local(true).await;
    let result = connect(&local.broker, "premises-service-0123", None).await;
    assert_eq!(refusal(result), ConnectReturnCode::NotAuthorized);
    let result = connect(&local.broker, "x", Some(("$premises-service", "guess"))).await;
    assert_eq!(refusal(result), ConnectReturnCode::BadUserNamePassword);
}

#[tokio::test]
async fn unknown_credentials_are_refused() {
    let local = local(false).await;
    let result = connect(&local.broker, "ghost", Some(("ghost", "password"))).await;
    assert_eq!(refusal(result), ConnectReturnCode::BadUserNamePassword);
}

// Needs the embedded store from here on.

#[tokio::test]
async fn provisioned_credentials_are_accepted_and_a_wrong_password_is_refused() {
    let local = local(false).await;
    let credentials = local.devices.provision("lock-1").await.unwrap();
    assert_eq!(credentials.thing_name, "lock-1");
    assert_eq!(credentials.client_id, "lock-1");
    assert_eq!(credentials.username.as_deref(), Some("lock-1"));
    assert_eq!(credentials.endpoint, local.broker.endpoint());
    assert_eq!((credentials.certificate_pem.as_ref(), credentials.private_key.as_ref()), (None, None));
    let password = credentials.password.clone().unwrap();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));

    let mut device = connect(&local.broker, "lock-1", Some(("lock-1", &password))).await.unwrap();
    device.subscribe("smartlock/lock-1/command").await;
    local.devices.publish("smartlock/lock-1/command", b"{}").await.unwrap();
    device.next().await;

    let result = connect(&local.broker, "lock-1", Some(("lock-1", "wrong-password"))).await;
    assert_eq!(refusal(result), ConnectReturnCode::BadUserNamePassword);
}

#[tokio::test]
async fn a_device_must_use_its_thing_name_as_client_id() {
    let local = local(false).await;
    let credentials = local.devices.provision("lock-2").await.unwrap();
    let password = credentials.password.unwrap();
    let result = connect(&local.broker, "someone-else", Some(("lock-2", &password))).await;
    assert_eq!(refusal(result), ConnectReturnCode::NotAuthorized);
}

#[tokio::test]
async fn provisioning_again_rotates_the_password() {
    let local = local(false).await;
    let old = local.devices.provision("lock-3").await.unwrap().password.unwrap();
    let new = local.devices.provision("lock-3").await.unwrap().password.unwrap();
    assert_ne!(old, new);
    let result = connect(&local.broker, "lock-3", Some(("lock-3", &old))).await;
    assert_eq!(refusal(result), ConnectReturnCode::BadUserNamePassword);
    connect(&local.broker, "lock-3", Some(("lock-3", &new))).await.unwrap();
}

#[tokio::test]
async fn deprovisioning_revokes_the_credentials_and_the_shadow() {
    let local = local(false).await;
    let password = local.devices.provision("lock-4").await.unwrap().password.unwrap();
    local.devices.update_desired("lock-4", json!({"lock": "closed"})).await.unwrap();
    local.devices.deprovision("lock-4").await.unwrap();
    let result = connect(&local.broker, "lock-4", Some(("lock-4", &password))).await;
    assert_eq!(refusal(result), ConnectReturnCode::BadUserNamePassword);
    assert_eq!(local.devices.shadow("lock-4").await.unwrap(), None);
    local.devices.deprovision("lock-4").await.unwrap();
}

#[tokio::test]
async fn a_desired_update_sends_the_delta_to_the_device() {
    let local = local(true).await;
    let mut device = anonymous(&local.broker, "lock-5").await;
    device.subscribe("$aws/things/lock-5/shadow/update/delta").await;
    device.subscribe("$aws/things/lock-5/shadow/update/accepted").await;

    local.devices.update_desired("lock-5", json!({"lock": "closed", "led": {"on": true}})).await.unwrap();
    let accepted = device.next_on("$aws/things/lock-5/shadow/update/accepted").await.json();
    assert_eq!(accepted["state"], json!({"desired": {"lock": "closed", "led": {"on": true}}}));
    assert_eq!(accepted["version"], json!(1));
    let delta = device.next_on("$aws/things/lock-5/shadow/update/delta").await.json();
    assert_eq!(delta["state"], json!({"lock": "closed", "led": {"on": true}}));
    assert_eq!(delta["version"], json!(1));
    assert!(delta["timestamp"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(delta["metadata"]["lock"], json!({"timestamp": delta["timestamp"]}));

    // The device reports part of it: the next delta holds only what still differs.
    let report = json!({"state": {"reported": {"lock": "closed", "led": {"on": false}}}});
    local.devices.apply_device_shadow_update("lock-5", report.to_string().as_bytes()).await.unwrap();
    local.devices.update_desired("lock-5", json!({"lock": "closed"})).await.unwrap();
    let delta = device.next_on("$aws/things/lock-5/shadow/update/delta").await.json();
    assert_eq!(delta["state"], json!({"led": {"on": true}}));
    assert_eq!(delta["version"], json!(3));

    // Nothing differs any more: no delta.
    local.devices.update_desired("lock-5", json!({"led": null})).await.unwrap();
    let accepted = device.next_on("$aws/things/lock-5/shadow/update/accepted").await.json();
    assert_eq!(accepted["version"], json!(4));
    device.nothing_more().await;
}

#[tokio::test]
async fn a_reported_update_from_the_device_shows_in_the_shadow() {
    let local = local(true).await;
    let filters: Vec<String> = DEVICE_SHADOW_FILTERS.iter().map(|f| f.to_string()).collect();
    let mut rx = local.broker.subscribe(&filters).await.unwrap();
    let mut device = anonymous(&local.broker, "lock-6").await;
    device.subscribe("$aws/things/lock-6/shadow/update/accepted").await;
    assert_eq!(local.devices.shadow("lock-6").await.unwrap(), None);

    // The local stack's dispatch: the device publishes, the service handles it.
    let update = json!({"state": {"reported": {"lock": "open", "battery": 80}}, "clientToken": "c-1"});
    device.publish("$aws/things/lock-6/shadow/update", update.to_string()).await;
    let message = next_incoming(&mut rx).await;
    assert!(local.devices.handle_device_shadow_message(&message.topic, &message.payload).await.unwrap());

    let accepted = device.next().await.json();
    assert_eq!(accepted["state"], json!({"reported": {"lock": "open", "battery": 80}}));
    assert_eq!(accepted["clientToken"], json!("c-1"));
    let shadow = local.devices.shadow("lock-6").await.unwrap().unwrap();
    assert_eq!(shadow, Shadow { reported: json!({"lock": "open", "battery": 80}), desired: Value::Null, version: 1 });

    let update = json!({"state": {"reported": {"battery": null, "lock": "closed"}}});
    local.devices.apply_device_shadow_update("lock-6", update.to_string().as_bytes()).await.unwrap();
    let shadow = local.devices.shadow("lock-6").await.unwrap().unwrap();
    assert_eq!((shadow.reported, shadow.version), (json!({"lock": "closed"}), 2));
}

#[tokio::test]
async fn a_device_reads_its_shadow_with_get() {
    let local = local(true).await;
    let mut device = anonymous(&local.broker, "lock-11").await;
    device.subscribe("$aws/things/lock-11/shadow/get/+").await;

    let get = "$aws/things/lock-11/shadow/get";
    assert!(local.devices.handle_device_shadow_message(get, br#"{"clientToken":"g-1"}"#).await.unwrap());
    let rejected = device.next().await;
    assert_eq!(rejected.topic, "$aws/things/lock-11/shadow/get/rejected");
    assert_eq!((rejected.json()["code"].clone(), rejected.json()["clientToken"].clone()), (json!(404), json!("g-1")));

    local.devices.update_desired("lock-11", json!({"lock": "closed", "led": "red"})).await.unwrap();
    let report = json!({"state": {"reported": {"lock": "open", "led": "red"}}});
    local.devices.apply_device_shadow_update("lock-11", report.to_string().as_bytes()).await.unwrap();
    assert!(local.devices.handle_device_shadow_message(get, b"").await.unwrap());
    let accepted = device.next().await;
    assert_eq!(accepted.topic, "$aws/things/lock-11/shadow/get/accepted");
    let document = accepted.json();
    assert_eq!(
        document["state"],
        json!({"desired": {"lock": "closed", "led": "red"}, "reported": {"lock": "open", "led": "red"}, "delta": {"lock": "closed"}})
    );
    assert_eq!(document["version"], json!(2));

    assert!(!local.devices.handle_device_shadow_message("lock-11/other", b"{}").await.unwrap());
}

#[tokio::test]
async fn malformed_or_stale_device_updates_are_rejected_on_the_rejected_topic() {
    let local = local(true).await;
    let mut device = anonymous(&local.broker, "lock-8").await;
    device.subscribe("$aws/things/lock-8/shadow/update/rejected").await;

    let err = local.devices.apply_device_shadow_update("lock-8", b"not json").await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
    assert_eq!(device.next().await.json()["code"], json!(400));

    local.devices.update_desired("lock-8", json!({"lock": "closed"})).await.unwrap();
    let stale = json!({"state": {"reported": {"lock": "open"}}, "version": 7, "clientToken": "t"});
    let err = local.devices.apply_device_shadow_update("lock-8", stale.to_string().as_bytes()).await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
    let rejected = device.next().await.json();
    assert_eq!((rejected["code"].clone(), rejected["clientToken"].clone()), (json!(409), json!("t")));
    assert_eq!(local.devices.shadow("lock-8").await.unwrap().unwrap().version, 1);

    let current = json!({"state": {"reported": {"lock": "closed"}}, "version": 1});
    local.devices.apply_device_shadow_update("lock-8", current.to_string().as_bytes()).await.unwrap();
    assert_eq!(local.devices.shadow("lock-8").await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn concurrent_desired_updates_all_land_with_their_own_version() {
    let local = local(true).await;
    let updates = (0..8).map(|i| {
        let devices = local.devices.clone();
        tokio::spawn(async move { devices.update_desired("lock-10", json!({ format!("k{i}"): i })).await })
    });
    for update in futures::future::join_all(updates).await {
        update.unwrap().unwrap();
    }
    let shadow = local.devices.shadow("lock-10").await.unwrap().unwrap();
    assert_eq!(shadow.version, 8);
    assert_eq!(shadow.desired.as_object().unwrap().len(), 8);
}

#[tokio::test]
async fn invalid_thing_names_and_desired_states_are_invalid() {
    let local = local(true).await;
    let err = local.devices.update_desired("a/b", json!({})).await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
    let err = local.devices.update_desired("lock", json!([1])).await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
    let err = local.devices.provision("$aws").await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------
// The device policy (template.yaml's, as AWS IoT applies it)

/// Provisions `thing` and connects as it.
async fn device(local: &Local, thing: &str) -> Client {
    let password = local.devices.provision(thing).await.unwrap().password.unwrap();
    connect(&local.broker, thing, Some((thing, &password))).await.unwrap()
}

#[tokio::test]
async fn a_device_subscribing_beyond_its_own_topics_gets_failure_codes_and_none_of_their_messages() {
    use rumqttc::SubscribeReasonCode::{Failure, Success};
    let local = local(false).await;
    let mut b = device(&local, "lock-b").await;
    let filters = [
        "smartlock/lock-b/#",
        "smartlock/lock-a/command",
        "smartlock/+/command",
        "#",
        "+/lock-a/#",
        "$aws/things/lock-a/shadow/#",
        "$aws/things/+/shadow/update/delta",
        "$aws/events/#",
        "$share/g/smartlock/lock-a/command",
        "appliance/+/reply",
        "$aws/things/lock-b/shadow/update/delta",
    ];
    let codes = b.subscribe_many(&filters).await;
    let ok = Success(QoS::AtLeastOnce);
    assert_eq!(codes, [ok, Failure, Failure, Failure, Failure, Failure, Failure, Failure, Failure, Failure, ok]);

    for topic in ["smartlock/lock-a/command", "appliance/lock-a/reply", "smartlock/lock-b/command"] {
        local.devices.publish(topic, b"{}").await.unwrap();
    }
    local.devices.update_desired("lock-a", json!({"lock": "open"})).await.unwrap();
    local.devices.update_desired("lock-b", json!({"lock": "open"})).await.unwrap();
    assert_eq!(b.next().await.topic, "smartlock/lock-b/command");
    assert_eq!(b.next().await.topic, "$aws/things/lock-b/shadow/update/delta");
    b.nothing_more().await;
}

#[tokio::test]
async fn a_device_publishing_to_another_things_topics_is_disconnected_and_nothing_is_delivered() {
    let local = local(false).await;
    let watched = ["smartlock/+/+".to_string(), "$aws/things/+/shadow/update".to_string()];
    let mut rx = local.broker.subscribe(&watched).await.unwrap();
    for topic in [
        "smartlock/lock-a/response",
        "smartlock/lock-a/status",
        "$aws/things/lock-a/shadow/update",
        "$aws/events/presence/disconnected/lock-a",
    ] {
        let mut b = device(&local, "lock-b").await;
        b.publish(topic, r#"{"request_id":"r","success":true}"#).await;
        b.closed().await;
    }
    // Retained messages need iot:RetainPublish, which the policy does not grant.
    let mut b = device(&local, "lock-b").await;
    b.client.publish("smartlock/lock-b/status", QoS::AtLeastOnce, true, "{}").await.unwrap();
    b.closed().await;
    assert!(timeout(QUIET, rx.recv()).await.is_err(), "nothing reached the service");
    // Its own topics still work.
    let b = device(&local, "lock-b").await;
    b.publish("smartlock/lock-b/status", "{}").await;
    assert_eq!(next_incoming(&mut rx).await.topic, "smartlock/lock-b/status");
}

#[tokio::test]
async fn a_device_does_not_receive_other_things_messages_through_a_session_it_inherited() {
    // In dev mode an anonymous client subscribes to everything in a persistent
    // session under a client id that later becomes a thing's.
    let local = local(true).await;
    let mut options = client_options(&local.broker, "lock-c", None);
    options.set_clean_session(false);
    let mut spy = connect_with(options).await.unwrap();
    spy.subscribe("#").await;
    spy.client.disconnect().await.unwrap();
    spy.closed().await;

    let password = local.devices.provision("lock-c").await.unwrap().password.unwrap();
    let mut options = client_options(&local.broker, "lock-c", Some(("lock-c", &password)));
    options.set_clean_session(false);
    let mut c = connect_with(options).await.unwrap();
    local.devices.publish("smartlock/lock-a/command", br#"{"pin":"1234"}"#).await.unwrap();
    local.devices.publish("smartlock/lock-c/command", b"{}").await.unwrap();
    assert_eq!(c.next().await.topic, "smartlock/lock-c/command");
    c.nothing_more().await;
}

#[tokio::test]
async fn no_client_forges_a_lifecycle_event() {
    let local = local(true).await;
    let mut rx = local.broker.subscribe(&["$aws/events/presence/+/+".to_string()]).await.unwrap();
    let mut forger = anonymous(&local.broker, "forger").await;
    assert_eq!(next_incoming(&mut rx).await.topic, "$aws/events/presence/connected/forger");
    forger.publish("$aws/events/presence/disconnected/lock-a", "{}").await;
    forger.closed().await;
    // Only the broker's own event of the forger leaving arrives.
    assert_eq!(next_incoming(&mut rx).await.topic, "$aws/events/presence/disconnected/forger");
    assert!(timeout(QUIET, rx.recv()).await.is_err());
    // Nor through a will.
    let mut options = client_options(&local.broker, "forger-2", None);
    options.set_last_will(rumqttc::LastWill::new(
        "$aws/events/presence/disconnected/lock-a",
        "{}",
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(refusal(connect_with(options).await), ConnectReturnCode::NotAuthorized);
}

#[tokio::test]
async fn a_device_with_a_will_on_another_things_topic_is_refused() {
    let local = local(false).await;
    let password = local.devices.provision("lock-a").await.unwrap().password.unwrap();
    let mut options = client_options(&local.broker, "lock-a", Some(("lock-a", &password)));
    options.set_last_will(rumqttc::LastWill::new("smartlock/lock-b/status", "{}", QoS::AtLeastOnce, false));
    assert_eq!(refusal(connect_with(options).await), ConnectReturnCode::NotAuthorized);
    let mut options = client_options(&local.broker, "lock-a", Some(("lock-a", &password)));
    options.set_last_will(rumqttc::LastWill::new("smartlock/lock-a/status", "{}", QoS::AtLeastOnce, false));
    connect_with(options).await.unwrap();
}

#[tokio::test]
async fn an_anonymous_client_cannot_take_over_a_devices_client_id_even_when_anonymous_clients_are_allowed() {
    let local = local(true).await;
    let mut a = device(&local, "lock-a").await;
    a.subscribe("smartlock/lock-a/command").await;
    assert_eq!(refusal(connect(&local.broker, "lock-a", None).await), ConnectReturnCode::NotAuthorized);
    let b_password = local.devices.provision("lock-b").await.unwrap().password.unwrap();
    let result = connect(&local.broker, "lock-a", Some(("lock-b", &b_password))).await;
    assert_eq!(refusal(result), ConnectReturnCode::NotAuthorized);
    // The device is still connected.
    local.devices.publish("smartlock/lock-a/command", b"{}").await.unwrap();
    assert_eq!(a.next().await.topic, "smartlock/lock-a/command");
}

#[tokio::test]
async fn an_mqtt5_device_is_not_authorized_beyond_its_topics_and_its_topic_aliases_still_work() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties, SubscribeReasonCode as Code5};

    let local = local(false).await;
    let mut rx = local.broker.subscribe(&["smartlock/+/status".to_string()]).await.unwrap();
    let password = local.devices.provision("lock-5").await.unwrap().password.unwrap();
    let addr = local.broker.local_addr();
    let mut options = rumqttc::v5::MqttOptions::new("lock-5", addr.ip().to_string(), addr.port());
    options.set_credentials("lock-5", password);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
    let filters = ["smartlock/lock-5/#", "smartlock/+/command"]
        .map(|f| rumqttc::v5::mqttbytes::v5::Filter::new(f, QoS5::AtLeastOnce));
    client.subscribe_many(filters).await.unwrap();
    let codes = loop {
        if let rumqttc::v5::Event::Incoming(Packet5::SubAck(ack)) =
            timeout(WAIT, eventloop.poll()).await.expect("no SUBACK in time").unwrap()
        {
            break ack.return_codes;
        }
    };
    assert_eq!(codes, [Code5::Success(QoS5::AtLeastOnce), Code5::NotAuthorized]);

    // A topic alias set on an own topic, then used.
    let alias = PublishProperties { topic_alias: Some(1), ..PublishProperties::default() };
    client
        .publish_with_properties("smartlock/lock-5/status", QoS5::AtLeastOnce, false, "1", alias.clone())
        .await
        .unwrap();
    client.publish_with_properties("", QoS5::AtLeastOnce, false, "2", alias).await.unwrap();
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for payload in ["1", "2"] {
        let message = next_incoming(&mut rx).await;
        assert_eq!((message.topic.as_str(), &message.payload[..]), ("smartlock/lock-5/status", payload.as_bytes()));
    }
    // Another thing's topic closes the connection, as with MQTT 3.1.1.
    client.publish("smartlock/lock-6/status", QoS5::AtLeastOnce, false, "3").await.unwrap();
    timeout(WAIT, poll).await.expect("the broker did not close the connection").unwrap();
    assert!(timeout(QUIET, rx.recv()).await.is_err());
}

#[tokio::test]
async fn an_mqtt5_publish_with_properties_reaches_mqtt311_subscribers_without_taking_the_broker_down() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::PublishProperties;

    let local = local(true).await;
    let mut listener = anonymous(&local.broker, "v4-listener").await;
    listener.subscribe("props/topic").await;
    let addr = local.broker.local_addr();
    let options = rumqttc::v5::MqttOptions::new("v5-props", addr.ip().to_string(), addr.port());
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 16);
    let properties = PublishProperties {
        user_properties: vec![("k".to_string(), "v".to_string())],
        content_type: Some("application/json".to_string()),
        response_topic: Some("props/reply".to_string()),
        ..PublishProperties::default()
    };
    client.publish_with_properties("props/topic", QoS5::AtLeastOnce, false, "1", properties).await.unwrap();
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    assert_eq!(&listener.next().await.payload[..], b"1");
    // The broker still serves MQTT 3.1.1 clients.
    local.devices.publish("props/topic", b"2").await.unwrap();
    assert_eq!(&listener.next().await.payload[..], b"2");
    anonymous(&local.broker, "v4-late").await;
    poll.abort();
}

// ---------------------------------------------------------------------------
// AWS IoT (moto)

struct Aws {
    devices: AwsDevices,
    iot: aws_sdk_iot::Client,
}

async fn aws() -> Option<Aws> {
    let endpoint = support::moto_endpoint()?;
    let sdk = support::sdk_config(&endpoint).await;
    let iot = aws_sdk_iot::Client::new(&sdk);
    // The device policy the stack deploys (`PREMISES_IOT_POLICY` default).
    let document =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]});
    let created = iot.create_policy().policy_name("premises-device").policy_document(document.to_string()).send().await;
    if let Err(e) = created {
        assert!(e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()), "{e:?}");
    }
    Some(Aws { devices: AwsDevices::new(&sdk, None, "premises-device".to_string()), iot })
}

async fn certificate_status(iot: &aws_sdk_iot::Client, id: &str) -> Option<String> {
    let output = iot.describe_certificate().certificate_id(id).send().await.ok()?;
    output.certificate_description()?.status().map(|s| s.as_str().to_string())
}

#[tokio::test]
async fn aws_provisioning_creates_the_thing_with_an_active_certificate() {
    let Some(aws) = aws().await else { return };
    let thing = support::unique("lock");
    let credentials = aws.devices.provision(&thing).await.unwrap();
    assert_eq!((credentials.thing_name.as_str(), credentials.client_id.as_str()), (thing.as_str(), thing.as_str()));
    assert!(credentials.certificate_pem.as_deref().unwrap().contains("BEGIN CERTIFICATE"));
    assert!(credentials.private_key.as_deref().unwrap().contains("PRIVATE KEY"));
    assert!(!credentials.endpoint.is_empty());
    assert_eq!((credentials.username, credentials.password), (None, None));
    let id = credentials.certificate_id.unwrap();
    assert_eq!(certificate_status(&aws.iot, &id).await.as_deref(), Some("ACTIVE"));
    aws.iot.describe_thing().thing_name(&thing).send().await.unwrap();
    let principals = aws.iot.list_thing_principals().thing_name(&thing).send().await.unwrap();
    assert_eq!(principals.principals().len(), 1);
    assert!(principals.principals()[0].ends_with(&id));
}

#[tokio::test]
async fn aws_provisioning_again_deactivates_the_previous_certificate() {
    let Some(aws) = aws().await else { return };
    let thing = support::unique("lock");
    let first = aws.devices.provision(&thing).await.unwrap().certificate_id.unwrap();
    let second = aws.devices.provision(&thing).await.unwrap().certificate_id.unwrap();
    assert_ne!(first, second);
    // Revoked: deactivated, and deleted once AWS lets it go.
    let status = certificate_status(&aws.iot, &first).await;
    assert!(matches!(status.as_deref(), None | Some("INACTIVE")), "{status:?}");
    assert_eq!(certificate_status(&aws.iot, &second).await.as_deref(), Some("ACTIVE"));
    let principals = aws.iot.list_thing_principals().thing_name(&thing).send().await.unwrap();
    assert_eq!(principals.principals().len(), 1);
    assert!(principals.principals()[0].ends_with(&second));
}

#[tokio::test]
async fn aws_publish_is_accepted() {
    let Some(aws) = aws().await else { return };
    aws.devices.publish("commands/lock-1", br#"{"action":"unlock"}"#).await.unwrap();
    let err = aws.devices.publish("commands/+", b"{}").await.unwrap_err();
    assert!(matches!(err, DevicesError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn aws_desired_updates_show_in_the_shadow() {
    let Some(aws) = aws().await else { return };
    let thing = support::unique("lock");
    aws.devices.provision(&thing).await.unwrap();
    assert_eq!(aws.devices.shadow(&thing).await.unwrap(), None);
    aws.devices.update_desired(&thing, json!({"lock": "closed", "led": "red"})).await.unwrap();
    aws.devices.update_desired(&thing, json!({"led": null, "alarm": true})).await.unwrap();
    let shadow = aws.devices.shadow(&thing).await.unwrap().unwrap();
    assert_eq!(shadow.desired, json!({"lock": "closed", "alarm": true}));
    assert_eq!(shadow.reported, Value::Null);
    assert_eq!(shadow.version, 2);
}

#[tokio::test]
async fn aws_deprovisioning_removes_the_thing_and_its_certificates() {
    let Some(aws) = aws().await else { return };
    let thing = support::unique("lock");
    let first = aws.devices.provision(&thing).await.unwrap().certificate_id.unwrap();
    let second = aws.devices.provision(&thing).await.unwrap().certificate_id.unwrap();
    aws.devices.deprovision(&thing).await.unwrap();
    let described = aws.iot.describe_thing().thing_name(&thing).send().await;
    assert!(described.unwrap_err().as_service_error().is_some_and(|e| e.is_resource_not_found_exception()));
    assert_eq!(certificate_status(&aws.iot, &second).await, None);
    assert_eq!(certificate_status(&aws.iot, &first).await, None);
    aws.devices.deprovision(&thing).await.unwrap();
}

#[tokio::test]
async fn aws_an_unknown_thing_has_no_shadow_and_deprovisions_quietly() {
    let Some(aws) = aws().await else { return };
    let thing = support::unique("ghost");
    assert_eq!(aws.devices.shadow(&thing).await.unwrap(), None);
    aws.devices.deprovision(&thing).await.unwrap();
}
