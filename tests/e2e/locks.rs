//! Smart locks (seed 003 `apps/devices`, security alerts) through the local
//! stack's real entry points: HTTP, and a real MQTT client acting as the lock
//! (it connects with the credentials the API issued, subscribes to its
//! command topic, answers on `response`, publishes status and heartbeat); the
//! connectivity and command-timeout schedules on a manual clock; both stores.

use std::time::Duration;

use premises_local::{Options, Stack};
use reqwest::{Client, StatusCode};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use shared::platform::clock::Clock;
use shared::platform::config::{AdminAccount, Config, StoreBackend};

use crate::helpers::{Backend, data_dir, eventually, unique};

crate::on_both_stores!(
    a_registered_lock_obeys_a_command_and_its_acknowledgement_completes_the_log,
    a_command_without_an_acknowledgement_fails_with_timeout,
    a_battery_dropping_below_twenty_raises_one_alert_per_drop_and_tells_the_owner,
    another_users_lock_is_404_and_bad_input_is_400,
    silence_past_five_minutes_marks_a_lock_offline_with_an_alert,
    a_jam_alerts_and_bad_telemetry_changes_nothing,
    deleting_a_lock_unlocks_it_one_last_time_and_revokes_its_credentials,
    settings_firmware_and_key_rotation_work_as_documented,
    a_firmware_url_over_plain_http_is_refused_naming_firmware_url_and_nothing_reaches_the_lock,
    a_long_access_log_is_paged_in_the_store_with_cursors_and_a_counted_total,
    overlong_alert_and_notification_ids_are_404_and_overlong_notes_are_400,
);

const PASSWORD: &str = "LockOwner123!";
const ADMIN_EMAIL: &str = "locks-admin@example.com";

struct T {
    stack: Stack,
    base: String,
    clock: Clock,
    client: Client,
}

impl T {
    async fn start(backend: &Backend) -> T {
        let mut config = Config::for_tests(data_dir("locks"));
        config.mqtt_allow_anonymous = false;
        config.admin = Some(AdminAccount { email: ADMIN_EMAIL.into(), password: PASSWORD.into() });
        let mut sdk = None;
        if let Backend::Dynamodb(endpoint) = backend {
            config.store = StoreBackend::Dynamodb;
            config.table_name = unique("locks");
            sdk = Some(crate::helpers::dynamodb_sdk(endpoint).await);
        }
        let clock = Clock::manual(Clock::System.now_millis());
        let stack = Stack::start(config, clock.clone(), Options { sdk, ..Options::default() }).await.expect("stack");
        let base = format!("http://{}", stack.http_addr);
        T { stack, base, clock, client: Client::new() }
    }

    /// A new user; their access token.
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

    /// Registers a lock; the create answer (with its credentials).
    async fn register(&self, token: &str, device_id: &str) -> Value {
        let body = json!({"name": "Front Door", "device_id": device_id, "location": "Home - Main Entrance"});
        let (status, out) = self.call("POST", "/api/v1/devices/", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        out
    }

    /// The lock as an MQTT client: connected with its credentials, subscribed to its command topic.
    async fn device(&self, created: &Value) -> Device {
        let addr = self.stack.mqtt_addr.expect("broker");
        let creds = &created["credentials"];
        let id = creds["client_id"].as_str().unwrap();
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_credentials(creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 32);
        client.subscribe(format!("smartlock/{id}/#"), QoS::AtLeastOnce).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.expect("the lock connects") {
                    return;
                }
            }
        })
        .await
        .expect("subscribed");
        Device { id: id.to_string(), client, events }
    }

    async fn status(&self, token: &str, id: &str) -> Value {
        let (status, out) = self.call("GET", &format!("/api/v1/devices/{id}/status/"), Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    async fn alerts(&self, token: &str) -> Vec<Value> {
        let (status, out) = self.call("GET", "/api/v1/security/alerts/", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["results"].as_array().unwrap().clone()
    }

    async fn unread(&self, token: &str) -> i64 {
        let (_, out) = self.call("GET", "/api/v1/notifications/unread-count/", Some(token), None).await;
        out["count"].as_i64().unwrap_or(-1)
    }

    /// Waits until `check` holds of the lock's status.
    async fn until_status(&self, token: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let found = eventually(Duration::from_secs(10), || async {
            let s = self.status(token, id).await;
            check(&s).then_some(s)
        })
        .await;
        match found {
            Some(s) => s,
            None => panic!("the status never matched: {}", self.status(token, id).await),
        }
    }
}

struct Device {
    id: String,
    client: AsyncClient,
    events: EventLoop,
}

impl Device {
    async fn publish(&mut self, kind: &str, body: Value) {
        self.publish_raw(kind, body.to_string().into_bytes()).await;
    }

    /// Publishes and drives the event loop until the broker acknowledged this very message.
    async fn publish_raw(&mut self, kind: &str, payload: Vec<u8>) {
        self.client.publish(format!("smartlock/{}/{kind}", self.id), QoS::AtLeastOnce, false, payload).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut sent = None;
            loop {
                match self.events.poll().await.expect("mqtt") {
                    Event::Outgoing(rumqttc::Outgoing::Publish(pkid)) if sent.is_none() => sent = Some(pkid),
                    Event::Incoming(Packet::PubAck(ack)) if Some(ack.pkid) == sent => return,
                    _ => {}
                }
            }
        })
        .await
        .expect("puback");
    }

    /// The next message on one of the lock's topics.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Event::Incoming(Packet::Publish(p)) = self.events.poll().await.expect("mqtt") {
                    return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                }
            }
        })
        .await
        .expect("a message within 10 s")
    }

    /// The next command (skipping anything else).
    async fn command(&mut self) -> Value {
        loop {
            let (topic, body) = self.next().await;
            if topic.ends_with("/command") {
                return body;
            }
        }
    }
}

async fn a_registered_lock_obeys_a_command_and_its_acknowledgement_completes_the_log(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "ABC123XYZ456").await;
    assert_eq!(created["id"], "ABC123XYZ456");
    assert_eq!((created["is_online"].as_bool(), created["battery_level"].as_i64()), (Some(false), Some(100)));
    assert_eq!(created["owner_name"], "Jan Novak");
    assert!(created["credentials"]["password"].is_string(), "{created}");
    // The credentials are shown once.
    let (_, detail) = t.call("GET", "/api/v1/devices/ABC123XYZ456/", Some(&owner), None).await;
    assert!(detail.get("credentials").is_none(), "{detail}");
    assert_eq!(detail["settings"]["auto_lock_delay"], 30);
    assert_eq!(detail["status_display"], "Locked");
    let (_, list) = t.call("GET", "/api/v1/devices/", Some(&owner), None).await;
    assert_eq!(
        (list["count"].as_i64(), list["total_pages"].as_i64(), list["current_page"].as_i64()),
        (Some(1), Some(1), Some(1))
    );

    let mut lock = t.device(&created).await;
    // Connecting put it online (the broker's lifecycle event).
    t.until_status(&owner, "ABC123XYZ456", |s| s["is_online"] == true).await;

    let (status, sent) =
        t.call("POST", "/api/v1/devices/ABC123XYZ456/unlock/", Some(&owner), Some(json!({"pin_code": "123456"}))).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(
        (sent["status"].as_str(), sent["device_id"].as_str()),
        (Some("unlock command sent"), Some("ABC123XYZ456"))
    );
    assert_eq!(sent["device_online"], true);
    let command = lock.command().await;
    assert_eq!((command["command"].as_str(), command["pin"].as_str()), (Some("unlock"), Some("123456")));
    assert_eq!(command["request_id"], sent["request_id"]);
    lock.publish("response", json!({"request_id": command["request_id"], "success": true, "status": "unlocked", "timestamp": "2026-12-01T12:00:01Z"})).await;
    t.until_status(&owner, "ABC123XYZ456", |s| s["lock_status"] == "unlocked").await;

    let (_, sent) = t.call("POST", "/api/v1/devices/ABC123XYZ456/lock/", Some(&owner), None).await;
    let command = lock.command().await;
    assert_eq!(command["command"], "lock");
    assert!(command.get("pin").is_none());
    lock.publish("response", json!({"request_id": sent["request_id"], "success": true, "status": "locked"})).await;
    let status = t.until_status(&owner, "ABC123XYZ456", |s| s["lock_status"] == "locked").await;
    assert!(status["last_seen"].is_string(), "{status}");

    let (_, logs) = t.call("GET", "/api/v1/devices/ABC123XYZ456/logs/", Some(&owner), None).await;
    let entries = logs["results"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{logs}");
    assert_eq!((entries[0]["action"].as_str(), entries[0]["success"].as_bool()), (Some("lock"), Some(true)));
    assert_eq!((entries[1]["action"].as_str(), entries[1]["status"].as_str()), (Some("unlock"), Some("succeeded")));
    assert_eq!(entries[0]["user"], "Jan Novak");
    // A second response for the same command changes nothing.
    lock.publish("response", json!({"request_id": sent["request_id"], "success": false, "status": "error"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.status(&owner, "ABC123XYZ456").await["lock_status"], "locked");
    // The shadow holds the desired state.
    let shadow = t.stack.app.devices.shadow("ABC123XYZ456").await.unwrap().expect("shadow");
    assert_eq!(shadow.desired["lock_state"], "locked");
}

async fn a_command_without_an_acknowledgement_fails_with_timeout(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    t.register(&owner, "TIMEOUT000001").await;
    // An offline lock still gets the command; the answer says it is offline.
    let (status, sent) = t.call("POST", "/api/v1/devices/TIMEOUT000001/lock/", Some(&owner), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["device_online"], false);
    assert!(sent["detail"].as_str().unwrap().contains("offline"), "{sent}");
    t.stack.run_job("locks-command-timeouts").await.unwrap();
    let (_, logs) = t.call("GET", "/api/v1/devices/TIMEOUT000001/logs/", Some(&owner), None).await;
    assert_eq!(logs["results"][0]["status"], "pending", "not yet: {logs}");
    t.clock.advance_millis(31_000);
    t.stack.run_job("locks-command-timeouts").await.unwrap();
    let (_, logs) = t.call("GET", "/api/v1/devices/TIMEOUT000001/logs/", Some(&owner), None).await;
    let entry = &logs["results"][0];
    assert_eq!(
        (entry["success"].as_bool(), entry["failure_reason"].as_str()),
        (Some(false), Some("timeout")),
        "{logs}"
    );
}

async fn a_battery_dropping_below_twenty_raises_one_alert_per_drop_and_tells_the_owner(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "BATTERY00001").await;
    let mut lock = t.device(&created).await;
    lock.publish("status", json!({"online": true, "battery": 15, "lock_status": "locked", "signal_strength": -45}))
        .await;
    t.until_status(&owner, "BATTERY00001", |s| s["battery_level"] == 15).await;
    lock.publish("status", json!({"online": true, "battery": 14, "lock_status": "locked"})).await;
    t.until_status(&owner, "BATTERY00001", |s| s["battery_level"] == 14).await;
    let alerts = t.alerts(&owner).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["alert_type"].as_str(), alerts[0]["device"]["id"].as_str()),
        (Some("low_battery"), Some("BATTERY00001"))
    );
    let told = eventually(Duration::from_secs(20), || async { (t.unread(&owner).await == 1).then_some(()) }).await;
    assert!(told.is_some(), "one notification for the owner");

    // Recovered, then low again: a second alert.
    lock.publish("status", json!({"battery": 80})).await;
    t.until_status(&owner, "BATTERY00001", |s| s["battery_level"] == 80).await;
    lock.publish("status", json!({"battery": 10})).await;
    t.until_status(&owner, "BATTERY00001", |s| s["battery_level"] == 10).await;
    assert_eq!(t.alerts(&owner).await.len(), 2);
    let (_, battery) = t.call("GET", "/api/v1/devices/BATTERY00001/battery/", Some(&owner), None).await;
    assert_eq!(battery["battery_level"], 10);
    assert_eq!(battery["history"].as_array().unwrap().len(), 4, "{battery}");
    assert_eq!(battery["is_low"], true);
    let told = eventually(Duration::from_secs(20), || async { (t.unread(&owner).await == 2).then_some(()) }).await;
    assert!(told.is_some());

    // Unresolved, then resolved; paged in the store, one a page.
    let walk =
        |path: &'static str, total: usize| crate::helpers::walk_pages(&t.client, &t.base, &owner, path, 1, total);
    let all = walk("/api/v1/security/alerts/", 2).await;
    assert_eq!(walk("/api/v1/security/alerts/unresolved/", 2).await, all);
    let (_, unresolved) = t.call("GET", "/api/v1/security/alerts/unresolved/", Some(&owner), None).await;
    assert_eq!(unresolved["count"], 2);
    let id = unresolved["results"][0]["id"].as_str().unwrap().to_string();
    let (status, out) = t
        .call(
            "POST",
            &format!("/api/v1/security/alerts/{id}/resolve/"),
            Some(&owner),
            Some(json!({"notes": "Batteries replaced"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!((out["status"].as_str(), out["resolved_by"].as_str()), (Some("resolved"), Some("Jan Novak")));
    let (status, _) =
        t.call("POST", &format!("/api/v1/security/alerts/{id}/resolve/"), Some(&owner), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, unresolved) = t.call("GET", "/api/v1/security/alerts/unresolved/", Some(&owner), None).await;
    assert_eq!(unresolved["count"], 1);
    assert_eq!(walk("/api/v1/security/alerts/unresolved/", 1).await[0]["id"], all[1]["id"]);
    assert_eq!(walk("/api/v1/security/alerts/", 2).await[0]["is_resolved"], true);
    let stranger = t.user().await;
    assert!(t.alerts(&stranger).await.is_empty());
    let (status, _) =
        t.call("POST", &format!("/api/v1/security/alerts/{id}/resolve/"), Some(&stranger), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn another_users_lock_is_404_and_bad_input_is_400(backend: Backend) {
    let t = T::start(&backend).await;
    let (owner, stranger) = (t.user().await, t.user().await);
    t.register(&owner, "PRIVATE00001").await;
    for (method, path) in [
        ("GET", "/api/v1/devices/PRIVATE00001/"),
        ("POST", "/api/v1/devices/PRIVATE00001/lock/"),
        ("POST", "/api/v1/devices/PRIVATE00001/unlock/"),
        ("GET", "/api/v1/devices/PRIVATE00001/status/"),
        ("GET", "/api/v1/devices/PRIVATE00001/logs/"),
        ("PUT", "/api/v1/devices/PRIVATE00001/settings/"),
        ("DELETE", "/api/v1/devices/PRIVATE00001/"),
    ] {
        let (status, _) = t.call(method, path, Some(&stranger), Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, list) = t.call("GET", "/api/v1/devices/", Some(&stranger), None).await;
    assert_eq!(list["count"], 0);
    // An admin sees every lock.
    let (status, login) =
        t.call("POST", "/api/v1/auth/login/", None, Some(json!({"email": ADMIN_EMAIL, "password": PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let admin = login["tokens"]["access"].as_str().unwrap().to_string();
    t.register(&stranger, "STRANGER0001").await;
    let (status, list) = t.call("GET", "/api/v1/devices/", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut ids: Vec<&str> = list["results"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["PRIVATE00001", "STRANGER0001"]);
    assert_eq!(t.call("GET", "/api/v1/devices/PRIVATE00001/status/", Some(&admin), None).await.0, StatusCode::OK);
    let (status, _) = t.call("GET", "/api/v1/devices/", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for (device_id, why) in
        [("SHORT", "too short"), ("ABCDEFGHIJKLMNOPQRSTU", "too long"), ("ABC-123-XYZ-456", "not alphanumeric")]
    {
        let (status, out) =
            t.call("POST", "/api/v1/devices/", Some(&owner), Some(json!({"name": "x", "device_id": device_id}))).await;
        assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("device_id")), "{why}: {out}");
    }
    let (status, out) = t
        .call("POST", "/api/v1/devices/", Some(&stranger), Some(json!({"name": "x", "device_id": "PRIVATE00001"})))
        .await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("device_id")), "duplicate: {out}");
    let (status, out) =
        t.call("POST", "/api/v1/devices/", Some(&owner), Some(json!({"device_id": "NONAME000001"}))).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("name")), "{out}");
    let (status, out) =
        t.call("POST", "/api/v1/devices/PRIVATE00001/lock/", Some(&owner), Some(json!({"pin_code": "12"}))).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("pin_code")), "{out}");
    let (status, out) = t
        .call("PUT", "/api/v1/devices/PRIVATE00001/settings/", Some(&owner), Some(json!({"auto_lock_delay": 0})))
        .await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("auto_lock_delay")), "{out}");
    let (_, logs) = t.call("GET", "/api/v1/devices/PRIVATE00001/logs/", Some(&owner), None).await;
    assert_eq!(logs["count"], 0, "a refused command logs nothing: {logs}");
}

async fn silence_past_five_minutes_marks_a_lock_offline_with_an_alert(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "SILENT000001").await;
    let mut lock = t.device(&created).await;
    lock.publish("heartbeat", json!({"timestamp": "2026-12-01T12:00:00Z", "uptime": 86400})).await;
    t.until_status(&owner, "SILENT000001", |s| s["is_online"] == true).await;
    t.clock.advance_millis(4 * 60_000);
    t.stack.run_job("locks-connectivity").await.unwrap();
    assert_eq!(t.status(&owner, "SILENT000001").await["is_online"], true, "4 minutes is not silence");
    lock.publish("heartbeat", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.clock.advance_millis(5 * 60_000 + 1_000);
    t.stack.run_job("locks-connectivity").await.unwrap();
    assert_eq!(t.status(&owner, "SILENT000001").await["is_online"], false);
    let alerts = t.alerts(&owner).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["alert_type"], "offline");
    // Running again changes nothing; a heartbeat brings it back.
    t.stack.run_job("locks-connectivity").await.unwrap();
    assert_eq!(t.alerts(&owner).await.len(), 1);
    lock.publish("heartbeat", json!({})).await;
    t.until_status(&owner, "SILENT000001", |s| s["is_online"] == true).await;
    // Disconnecting is noticed at once (the broker's lifecycle event).
    lock.client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while lock.events.poll().await.is_ok() {} }).await;
    t.until_status(&owner, "SILENT000001", |s| s["is_online"] == false).await;
    assert_eq!(t.alerts(&owner).await.len(), 2);
}

async fn a_jam_alerts_and_bad_telemetry_changes_nothing(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "JAMMED000001").await;
    let mut lock = t.device(&created).await;
    lock.publish("status", json!({"online": true, "battery": 90, "lock_status": "unlocked"})).await;
    t.until_status(&owner, "JAMMED000001", |s| s["lock_status"] == "unlocked").await;
    // Out of range, unknown, malformed: rejected and logged, nothing changes.
    lock.publish("status", json!({"battery": 150})).await;
    lock.publish("status", json!({"battery": 50, "lock_status": "ajar"})).await;
    lock.publish("status", json!({"battery": "full"})).await;
    lock.publish_raw("status", b"not json {".to_vec()).await;
    lock.publish("response", json!({"request_id": "nope", "success": "yes"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = t.status(&owner, "JAMMED000001").await;
    assert_eq!(
        (status["battery_level"].as_i64(), status["lock_status"].as_str()),
        (Some(90), Some("unlocked")),
        "{status}"
    );
    // A status for a device nobody registered is dropped. (The broker's device
    // policy also disconnects the stray lock for it, which alerts the stray's
    // owner: another user here, so that the count below is this owner's alone.)
    let (stray, mut stray_events) = {
        let addr = t.stack.mqtt_addr.unwrap();
        let stray_owner = t.user().await;
        let created = t.register(&stray_owner, "STRAY0000001").await;
        let creds = &created["credentials"];
        let mut o = MqttOptions::new("STRAY0000001", addr.ip().to_string(), addr.port());
        o.set_credentials(creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
        AsyncClient::new(o, 8)
    };
    stray
        .publish("smartlock/UNKNOWN000001/status", QoS::AtLeastOnce, false, json!({"battery": 5}).to_string())
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let _ = stray_events.poll().await;
        }
    })
    .await;

    lock.publish("status", json!({"lock_status": "jammed"})).await;
    t.until_status(&owner, "JAMMED000001", |s| s["lock_status"] == "jammed").await;
    lock.publish("status", json!({"lock_status": "jammed"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alerts = t.alerts(&owner).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0]["alert_type"].as_str(), alerts[0]["severity"].as_str()),
        (Some("device_jammed"), Some("high"))
    );
}

async fn deleting_a_lock_unlocks_it_one_last_time_and_revokes_its_credentials(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "DELETE000001").await;
    let mut lock = t.device(&created).await;
    let (status, _) = t.call("DELETE", "/api/v1/devices/DELETE000001/", Some(&owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let command = lock.command().await;
    assert_eq!((command["command"].as_str(), command["reason"].as_str()), (Some("unlock"), Some("device_removed")));
    let (status, _) = t.call("GET", "/api/v1/devices/DELETE000001/", Some(&owner), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = t.call("GET", "/api/v1/devices/", Some(&owner), None).await;
    assert_eq!(list["count"], 0);
    // Its credentials no longer connect.
    let addr = t.stack.mqtt_addr.unwrap();
    let creds = &created["credentials"];
    let mut o = MqttOptions::new("DELETE000001", addr.ip().to_string(), addr.port());
    o.set_credentials(creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
    let (_c, mut events) = AsyncClient::new(o, 8);
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code != rumqttc::ConnectReturnCode::Success,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(refused, "a deleted lock's credentials must not connect");
    // The id is free again.
    t.register(&owner, "DELETE000001").await;
}

async fn settings_firmware_and_key_rotation_work_as_documented(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "SETTINGS0001").await;
    let (status, out) = t
        .call(
            "PUT",
            "/api/v1/devices/SETTINGS0001/settings/",
            Some(&owner),
            Some(json!({"auto_lock_enabled": true, "auto_lock_delay": 60, "notifications_enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out,
        json!({"id": "SETTINGS0001", "device": "SETTINGS0001", "auto_lock_enabled": true, "auto_lock_delay": 60, "silent_mode": false, "led_enabled": true, "notifications_enabled": false})
    );
    let (_, out) = t.call("GET", "/api/v1/devices/SETTINGS0001/settings/", Some(&owner), None).await;
    assert_eq!(out["auto_lock_delay"], 60);
    let (status, out) =
        t.call("PATCH", "/api/v1/devices/SETTINGS0001/", Some(&owner), Some(json!({"name": "Back Door"}))).await;
    assert_eq!(
        (status, out["name"].as_str(), out["location"].as_str()),
        (StatusCode::OK, Some("Back Door"), Some("Home - Main Entrance")),
        "{out}"
    );

    let mut lock = t.device(&created).await;
    let (status, out) = t
        .call(
            "POST",
            "/api/v1/devices/SETTINGS0001/firmware/",
            Some(&owner),
            Some(json!({"firmware_url": "https://fw.example.com/1.3.0.bin", "version": "1.3.0"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (topic, ota) = lock.next().await;
    assert_eq!(topic, "smartlock/SETTINGS0001/ota");
    assert_eq!(
        (ota["firmware_url"].as_str(), ota["version"].as_str()),
        (Some("https://fw.example.com/1.3.0.bin"), Some("1.3.0"))
    );
    let (status, out) = t
        .call(
            "POST",
            "/api/v1/devices/SETTINGS0001/firmware/",
            Some(&owner),
            Some(json!({"firmware_url": "ftp://x", "version": "1"})),
        )
        .await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("firmware_url")));

    t.stack.run_job("locks-time-sync").await.unwrap();
    let command = lock.command().await;
    assert_eq!(command["command"], "sync_time");

    let (status, rotated) = t.call("POST", "/api/v1/devices/SETTINGS0001/rotate-keys/", Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["credentials"]["password"], created["credentials"]["password"]);
    // The new credentials connect.
    let renewed = json!({"credentials": rotated["credentials"]});
    t.device(&renewed).await;
}

async fn a_firmware_url_over_plain_http_is_refused_naming_firmware_url_and_nothing_reaches_the_lock(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "FIRMWARE0001").await;
    let mut lock = t.device(&created).await;
    let path = "/api/v1/devices/FIRMWARE0001/firmware/";
    for url in [
        "http://fw.example.com/evil.bin",
        "HTTP://fw.example.com/evil.bin",
        "https://",
        "https:///evil.bin",
        "https://user@fw.example.com/evil.bin",
        "https://fw.example.com/evil bin",
    ] {
        let (status, out) =
            t.call("POST", path, Some(&owner), Some(json!({"firmware_url": url, "version": "6.6.6"}))).await;
        assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("firmware_url")), "{url}: {out}");
    }
    let long = format!("https://fw.example.com/{}", "a".repeat(2048));
    let (status, out) = t.call("POST", path, Some(&owner), Some(json!({"firmware_url": long, "version": "1"}))).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("firmware_url")), "{out}");
    // The first update the lock hears of is the https one sent next.
    let good = json!({"firmware_url": "https://fw.example.com/1.4.0.bin", "version": "1.4.0"});
    assert_eq!(t.call("POST", path, Some(&owner), Some(good)).await.0, StatusCode::OK);
    let (topic, ota) = lock.next().await;
    assert_eq!((topic.as_str(), ota["version"].as_str()), ("smartlock/FIRMWARE0001/ota", Some("1.4.0")), "{ota}");
}

/// Sends `n` lock commands to a lock (offline: they stay pending, and log all the same).
async fn commands(t: &T, token: &str, id: &str, n: usize) {
    let path = format!("/api/v1/devices/{id}/lock/");
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let sent = futures::future::join_all(chunk.iter().map(|_| t.call("POST", &path, Some(token), None))).await;
        assert!(sent.iter().all(|(s, _)| *s == StatusCode::OK), "{sent:?}");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["results"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

async fn a_long_access_log_is_paged_in_the_store_with_cursors_and_a_counted_total(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    t.register(&owner, "PAGEDLOG0001").await;
    commands(&t, &owner, "PAGEDLOG0001", 45).await;
    let base = "/api/v1/devices/PAGEDLOG0001/logs/";
    let (t, owner) = (&t, &owner);
    let get = |path: String| async move {
        let (status, out) = t.call("GET", &path, Some(owner), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {out}");
        out
    };
    let first = get(format!("{base}?page_size=20")).await;
    assert_eq!((first["count"].as_u64(), first["previous"].as_str()), (Some(45), None), "{first}");
    let next = first["next"].as_str().expect("a next page").to_string();
    assert!(next.starts_with(base) && next.contains("cursor=") && next.contains("page=2"), "{next}");
    let second = get(next).await;
    let third = get(second["next"].as_str().unwrap().to_string()).await;
    assert_eq!((third["count"].as_u64(), third["next"].as_str()), (Some(45), None), "{third}");
    let (p1, p2, p3) = (ids(&first), ids(&second), ids(&third));
    assert_eq!((p1.len(), p2.len(), p3.len()), (20, 20, 5));
    let all: Vec<String> = [p1.clone(), p2.clone(), p3.clone()].concat();
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), 45, "every entry once");
    // Newest first: request ids are time-ordered.
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted);
    // previous goes back page by page.
    let back = get(third["previous"].as_str().expect("a previous page").to_string()).await;
    assert_eq!(ids(&back), p2);
    let back = get(back["previous"].as_str().unwrap().to_string()).await;
    assert_eq!((ids(&back), back["previous"].as_str()), (p1.clone(), None), "{back}");
    // ?page=N still works near the start, and agrees with the cursors.
    assert_eq!(ids(&get(format!("{base}?page=2&page_size=20")).await), p2);
    let (status, _) = t.call("GET", &format!("{base}?page=4&page_size=20"), Some(owner), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a page past the end");
    // Deep page numbers and forged cursors are 400 naming the parameter, not a store error.
    for (query, field) in [
        ("?page=60&page_size=20", "page"),
        ("?cursor=not-a-cursor", "cursor"),
        ("?before=eyJQSyI6eyJTIjoiTE9DSyNPVEhFUiJ9fQ", "before"),
        ("?cursor=a&before=b", "before"),
    ] {
        let (status, out) = t.call("GET", &format!("{base}{query}"), Some(owner), None).await;
        assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{query}: {out}");
    }
    // A cursor of one lock does not read another's log.
    let stranger = t.user().await;
    t.register(&stranger, "PAGEDLOG0002").await;
    let cursor = first["next"].as_str().unwrap().split("cursor=").nth(1).unwrap().to_string();
    let (status, out) =
        t.call("GET", &format!("/api/v1/devices/PAGEDLOG0002/logs/?cursor={cursor}"), Some(&stranger), None).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("cursor")), "{out}");
}

async fn overlong_alert_and_notification_ids_are_404_and_overlong_notes_are_400(backend: Backend) {
    let t = T::start(&backend).await;
    let owner = t.user().await;
    let created = t.register(&owner, "LONGIDS00001").await;
    let mut lock = t.device(&created).await;
    lock.publish("status", json!({"online": true, "battery": 5, "lock_status": "locked"})).await;
    t.until_status(&owner, "LONGIDS00001", |s| s["battery_level"] == 5).await;
    let alert = t.alerts(&owner).await[0]["id"].as_str().unwrap().to_string();
    for id in ["a".repeat(3000), "a".repeat(100), "bad.id".to_string()] {
        for path in [
            format!("/api/v1/security/alerts/{id}/resolve/"),
            format!("/api/v1/notifications/{id}/read/"),
            format!("/api/v1/devices/{id}/"),
            format!("/api/v1/devices/{id}/logs/"),
        ] {
            let method = if path.ends_with("/resolve/") || path.ends_with("/read/") { "POST" } else { "GET" };
            let (status, out) = t.call(method, &path, Some(&owner), Some(json!({}))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {out}");
        }
    }
    let resolve = format!("/api/v1/security/alerts/{alert}/resolve/");
    let (status, out) = t.call("POST", &resolve, Some(&owner), Some(json!({"notes": "n".repeat(2001)}))).await;
    assert_eq!(
        (status, out["field"].as_str(), out["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("notes"), Some("too_long")),
        "{out}"
    );
    assert_eq!(t.alerts(&owner).await[0]["is_resolved"], false, "nothing changed");
    let (status, out) = t.call("POST", &resolve, Some(&owner), Some(json!({"notes": "n".repeat(2000)}))).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    // Lock names and locations have bounds too.
    for (field, body) in [
        ("name", json!({"name": "n".repeat(201)})),
        ("location", json!({"location": "l".repeat(501)})),
        ("firmware_version", json!({"firmware_version": "v".repeat(33)})),
    ] {
        let (status, out) = t.call("PATCH", "/api/v1/devices/LONGIDS00001/", Some(&owner), Some(body)).await;
        assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{out}");
    }
}

/// A measurement, not a check (docs/perf.md): the `logs/` page of a lock with 1,500 logged
/// commands, through HTTP, and the store reads behind it, on each store available. Run with
/// `cargo test -p premises-local --test e2e -- --ignored --nocapture logs_page_timing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/perf.md"]
async fn logs_page_timing_with_1500_commands() {
    use crate::helpers::{measured_backends, median};
    use shared::platform::store::{Query, SkCond};
    use std::time::Instant;
    for (name, backend) in measured_backends() {
        let t = T::start(&backend).await;
        let owner = t.user().await;
        t.register(&owner, "TIMING000001").await;
        let base = "/api/v1/devices/TIMING000001/logs/";
        let time_page = |path: String| {
            let (t, owner) = (&t, &owner);
            async move {
                let mut runs = Vec::new();
                for _ in 0..21 {
                    let start = Instant::now();
                    let (status, _) = t.call("GET", &path, Some(owner), None).await;
                    runs.push(start.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(status, StatusCode::OK);
                }
                runs
            }
        };
        let empty = median(time_page(base.to_string()).await);
        commands(&t, &owner, "TIMING000001", 1500).await;
        let first = median(time_page(base.to_string()).await);
        let (_, page) = t.call("GET", base, Some(&owner), None).await;
        assert_eq!(page["count"], 1500);
        let next = median(time_page(page["next"].as_str().unwrap().to_string()).await);
        let deep = median(time_page(format!("{base}?page=50")).await);
        // The store reads: the whole log (what logs/ read before it paged in the store) and one page.
        let query = Query::partition("LOCK#TIMING000001").sk(SkCond::BeginsWith("LOG#".into())).descending();
        let store = &t.stack.app.store;
        let mut whole = Vec::new();
        let mut one = Vec::new();
        for _ in 0..21 {
            let start = Instant::now();
            let all: Vec<serde_json::Value> = store.query_all(query.clone()).await.unwrap();
            whole.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(all.len(), 1500);
            let start = Instant::now();
            store.query(query.clone().limit(21)).await.unwrap();
            one.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "| {name} | {empty:.1} | {first:.1} | {next:.1} | {deep:.1} | {:.1} | {:.1} |",
            median(whole),
            median(one)
        );
    }
}
