//! The local stack in-process, with a test catalog that has one function of
//! every trigger kind: HTTP (public, bearer, slow), a queue consumer, an IoT
//! rule and a schedule. Each reaches its handler through its real entry point:
//! a socket, the embedded queue, the MQTT broker, the scheduler.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::future::BoxFuture;
use premises_local::{Options, Stack};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::App;
use shared::platform::clock::Clock;
use shared::platform::config::{Config, StoreBackend};
use shared::platform::function::{Auth, Function};
use shared::platform::http::auth::{Principal, TokenVerifier, principal};
use shared::platform::http::{self, ApiError, json_body, path_param, query_param};
use shared::platform::queue::batch::{MessageError, for_each_message};
use shared::platform::queue::{OutMessage, Queue, QueueDef};
use shared::platform::store::{Key, Query, Update, n, s};

use crate::helpers::{Backend, eventually, unique};

static TEST_QUEUES: &[QueueDef] = &[QueueDef {
    name: "test-events",
    visibility_timeout_secs: 30,
    max_receive_count: 3,
    fifo: false,
    retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
}];

fn test_catalog() -> &'static [Function] {
    static FUNCTIONS: LazyLock<Vec<Function>> = LazyLock::new(|| {
        vec![
            Function::http("health", "GET", "/health/", "health", |app, req| {
                Box::pin(shared::health::health(app, req))
            }),
            Function::http("echo", "POST", "/echo/{id}/", "echo", |app, req| Box::pin(echo(app, req))),
            Function::http("admin-ping", "GET", "/admin/ping/", "admin only", |_, req| {
                Box::pin(async move { http::ok(&json!({"user": principal(&req)?.user_id})) })
            })
            .auth(Auth::ADMIN),
            Function::http("slow", "GET", "/slow/", "slow", |_, _| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    http::ok(&json!({"done": true}))
                })
            }),
            Function::queue("record", "records test events", &TEST_QUEUES[0], 10, |app, event| {
                Box::pin(for_each_message(event, move |e: TestEvent, _| record(app, e)))
            }),
            Function::iot(
                "on-low-battery",
                "low battery alert",
                "SELECT *, topic(2) AS device_id FROM 'test/+/status' WHERE battery < 20",
                |app, event| Box::pin(low_battery(app, event)),
            ),
            Function::schedule("tick", "counts ticks", "rate(1 minute)", |app, _| Box::pin(tick(app))),
        ]
    });
    &FUNCTIONS
}

#[derive(Deserialize)]
struct EchoBody {
    name: String,
    count: u32,
}

async fn echo(_app: &'static App, req: http::Request) -> http::Result {
    let body: EchoBody = json_body(&req)?;
    http::ok(&json!({
        "id": path_param(&req, "id")?,
        "page": query_param(&req, "page"),
        "name": body.name,
        "count": body.count,
        "request_id": http::request_id(&req),
    }))
}

#[derive(Deserialize)]
struct TestEvent {
    id: String,
    #[serde(default)]
    fail: bool,
}

async fn record(app: &'static App, e: TestEvent) -> Result<(), MessageError> {
    if e.fail {
        return Err(MessageError::Retry(anyhow::anyhow!("asked to fail")));
    }
    let item = Key::new("EVENT", e.id).to_item();
    app.store.put(item, None).await.map_err(|err| MessageError::Retry(err.into()))
}

async fn low_battery(app: &'static App, event: Value) -> anyhow::Result<()> {
    let device = event["device_id"].as_str().unwrap_or_default().to_string();
    let mut item = Key::new("ALERT", device).to_item();
    item.insert("battery".into(), n(event["battery"].as_i64().unwrap_or(-1)));
    item.insert("event".into(), s(event.to_string()));
    app.store.put(item, None).await?;
    Ok(())
}

async fn tick(app: &'static App) -> anyhow::Result<()> {
    app.store.update(&Key::new("COUNTER", "ticks"), Update::new().add("n", 1), None).await?;
    Ok(())
}

/// Tokens for tests: `admin-token` and `member-token`.
struct TestTokens;

impl TokenVerifier for TestTokens {
    fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        match token {
            "admin-token" => Ok(Principal { user_id: "u-admin".into(), role: "admin".into(), generation: None }),
            "member-token" => Ok(Principal { user_id: "u-member".into(), role: "member".into(), generation: None }),
            _ => Err(ApiError::unauthorized("token_not_valid", "Given token not valid for any token type")),
        }
    }

    /// The test catalog has no user items: the token is the truth.
    fn current<'a>(&'a self, _app: &'a App, principal: Principal) -> BoxFuture<'a, Result<Principal, ApiError>> {
        Box::pin(async move { Ok(principal) })
    }
}

struct TestStack {
    stack: Stack,
    base: String,
    clock: Clock,
}

async fn start(backend: &Backend, dir: std::path::PathBuf, table: &str) -> TestStack {
    let mut config = Config::for_tests(dir);
    // The test clients publish on the test catalog's topics without credentials: the dev switch.
    config.mqtt_allow_anonymous = true;
    let mut sdk = None;
    if let Backend::Dynamodb(endpoint) = backend {
        config.store = StoreBackend::Dynamodb;
        config.table_name = table.to_string();
        sdk = Some(crate::helpers::dynamodb_sdk(endpoint).await);
    }
    let clock = Clock::manual(Clock::System.now_millis());
    let options = Options {
        functions: test_catalog(),
        queues: TEST_QUEUES,
        sdk,
        configure: Some(Box::new(|app: &mut App| app.auth = Arc::new(TestTokens))),
    };
    let stack = Stack::start(config, clock.clone(), options).await.expect("stack starts");
    let base = format!("http://{}", stack.http_addr);
    TestStack { stack, base, clock }
}

async fn fresh(backend: &Backend) -> TestStack {
    start(backend, crate::helpers::data_dir("stack"), &unique("stack")).await
}

crate::on_both_stores!(
    http_requests_reach_handlers_as_api_gateway_delivers_them,
    bad_json_is_a_400_naming_the_field,
    bearer_routes_need_a_valid_token_with_the_right_role,
    queue_messages_are_consumed_and_a_failing_one_alone_is_retried_then_dead_lettered,
    iot_rules_deliver_what_their_select_produces_to_their_function,
    devices_report_their_shadow_over_mqtt,
    scheduled_jobs_run_on_demand,
    stopping_lets_in_flight_requests_finish,
    a_restart_on_the_same_data_picks_up_where_the_last_run_stopped,
);

async fn http_requests_reach_handlers_as_api_gateway_delivers_them(backend: Backend) {
    let t = fresh(&backend).await;
    let r = reqwest::Client::new()
        .post(format!("{}/echo/a%20b/?page=2", t.base))
        .json(&json!({"name": "Ada", "count": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], "a b");
    assert_eq!(body["page"], "2");
    assert_eq!((body["name"].as_str(), body["count"].as_u64()), (Some("Ada"), Some(3)));
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    t.stack.stop().await;
}

async fn bad_json_is_a_400_naming_the_field(backend: Backend) {
    let t = fresh(&backend).await;
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client.post(format!("{}/echo/1/", t.base)).header("content-type", "application/json").body(body).send()
    };
    let cases = [
        (r#"{"name": "Ada"}"#, "required", Some("count")),
        (r#"{"name": "Ada", "count": "three"}"#, "invalid", Some("count")),
        (r#"{"name": "Ada", "count": -1}"#, "invalid", Some("count")),
        (r#"{"name": "#, "malformed_json", None),
        ("", "empty_body", None),
    ];
    for (body, code, field) in cases {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let got: Value = r.json().await.unwrap();
        assert_eq!(got["code"], code, "{body}: {got}");
        assert_eq!(got["field"].as_str(), field, "{body}: {got}");
        assert!(got["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    t.stack.stop().await;
}

async fn bearer_routes_need_a_valid_token_with_the_right_role(backend: Backend) {
    let t = fresh(&backend).await;
    let client = reqwest::Client::new();
    let url = format!("{}/admin/ping/", t.base);

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_authenticated");

    let r = client.get(&url).bearer_auth("forged").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "token_not_valid");

    let r = client.get(&url).bearer_auth("member-token").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "permission_denied");

    let r = client.get(&url).bearer_auth("admin-token").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["user"], "u-admin");
    t.stack.stop().await;
}

async fn has_item(app: &'static App, pk: &str, sk: &str) -> bool {
    app.store.get(&Key::new(pk, sk)).await.unwrap().is_some()
}

async fn queue_messages_are_consumed_and_a_failing_one_alone_is_retried_then_dead_lettered(backend: Backend) {
    let t = fresh(&backend).await;
    let app = t.stack.app;
    let messages = vec![
        OutMessage::new(r#"{"id": "a"}"#),
        OutMessage::new(r#"{"id": "b", "fail": true}"#),
        OutMessage::new("not json"),
        OutMessage::new(r#"{"id": "c"}"#),
    ];
    app.queue.send_batch("test-events", messages).await.unwrap();

    let both = eventually(Duration::from_secs(10), || async {
        (has_item(app, "EVENT", "a").await && has_item(app, "EVENT", "c").await).then_some(())
    })
    .await;
    assert!(both.is_some(), "the good messages were applied");

    let Queue::Embedded(q) = &app.queue else { panic!("embedded queue expected") };
    // The two bad messages come back after each visibility timeout until they
    // have been received max_receive_count (3) times, then move to the DLQ.
    let dead = eventually(Duration::from_secs(20), || {
        t.clock.advance_millis(31_000);
        async { (q.depth("test-events-dlq").await.unwrap() == 2).then_some(()) }
    })
    .await;
    assert!(dead.is_some(), "the failing messages were dead-lettered");
    assert_eq!(q.depth("test-events").await.unwrap(), 0);
    assert!(!has_item(app, "EVENT", "b").await);
    t.stack.stop().await;
}

/// An MQTT client connected to the stack's broker, with its subscription acknowledged.
async fn mqtt_client(t: &TestStack, subscribe: Option<&str>) -> (AsyncClient, rumqttc::EventLoop) {
    let addr = t.stack.mqtt_addr.expect("local broker");
    let (client, mut events) = AsyncClient::new(MqttOptions::new(unique("dev"), "127.0.0.1", addr.port()), 16);
    if let Some(filter) = subscribe {
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await.expect("mqtt") {
                Event::Incoming(Packet::ConnAck(_)) if subscribe.is_none() => break,
                Event::Incoming(Packet::SubAck(_)) => break,
                _ => {}
            }
        }
    })
    .await
    .expect("connected");
    (client, events)
}

/// Publishes with QoS 1 and drives the connection until the broker acknowledges.
async fn publish(client: &AsyncClient, events: &mut rumqttc::EventLoop, topic: &str, payload: &str) {
    client.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.expect("mqtt") {
                break;
            }
        }
    })
    .await
    .expect("puback");
}

async fn iot_rules_deliver_what_their_select_produces_to_their_function(backend: Backend) {
    let t = fresh(&backend).await;
    let app = t.stack.app;
    let (client, mut events) = mqtt_client(&t, None).await;
    publish(&client, &mut events, "test/dev-full/status", r#"{"battery": 90}"#).await;
    publish(&client, &mut events, "test/dev-low/status", r#"{"battery": 12, "rssi": -70}"#).await;
    publish(&client, &mut events, "other/dev-x/status", r#"{"battery": 1}"#).await;

    let alert =
        eventually(Duration::from_secs(10), || async { app.store.get(&Key::new("ALERT", "dev-low")).await.unwrap() })
            .await
            .expect("the low-battery rule fired");
    let shared::platform::store::Value::S(event) = &alert["event"] else { panic!("event stored") };
    let event: Value = serde_json::from_str(event).unwrap();
    assert_eq!(event, json!({"battery": 12, "rssi": -70, "device_id": "dev-low"}));

    // The WHERE clause and the topic filter keep the others out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alerts = app.store.query(Query::partition("ALERT")).await.unwrap();
    assert_eq!(alerts.items.len(), 1);
    t.stack.stop().await;
}

async fn devices_report_their_shadow_over_mqtt(backend: Backend) {
    let t = fresh(&backend).await;
    let app = t.stack.app;
    let (client, mut events) = mqtt_client(&t, None).await;
    publish(&client, &mut events, "$aws/things/lock-1/shadow/update", r#"{"state":{"reported":{"lock":"locked"}}}"#)
        .await;
    let shadow = eventually(Duration::from_secs(10), || async {
        app.devices.shadow("lock-1").await.ok().flatten().filter(|s| s.reported["lock"] == "locked")
    })
    .await;
    assert!(shadow.is_some(), "the reported state reached the shadow");
    t.stack.stop().await;
}

async fn scheduled_jobs_run_on_demand(backend: Backend) {
    let t = fresh(&backend).await;
    t.stack.run_job("tick").await.unwrap();
    t.stack.run_job("tick").await.unwrap();
    let counter = t.stack.app.store.get(&Key::new("COUNTER", "ticks")).await.unwrap().unwrap();
    assert_eq!(counter["n"], n(2));
    let err = t.stack.run_job("echo").await.unwrap_err().to_string();
    assert!(err.contains("not a scheduled job"), "{err}");
    assert!(t.stack.run_job("nope").await.is_err());
    t.stack.stop().await;
}

async fn stopping_lets_in_flight_requests_finish(backend: Backend) {
    let t = fresh(&backend).await;
    let slow = tokio::spawn(reqwest::get(format!("{}/slow/", t.base)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.stack.stop().await;
    let r = slow.await.unwrap().expect("the in-flight request completed");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"done": true}));
}

async fn a_restart_on_the_same_data_picks_up_where_the_last_run_stopped(backend: Backend) {
    let dir = crate::helpers::data_dir("restart");
    let table = unique("restart");
    let first = start(&backend, dir.clone(), &table).await;
    let app = first.stack.app;
    app.store.put(Key::new("EVENT", "before").to_item(), None).await.unwrap();
    first.stack.stop().await;
    // Accepted while nothing consumes: it must wait durably for the next run.
    app.queue.send("test-events", OutMessage::new(r#"{"id": "queued"}"#)).await.unwrap();

    let second = start(&backend, dir, &table).await;
    let app = second.stack.app;
    assert!(has_item(app, "EVENT", "before").await);
    let consumed =
        eventually(Duration::from_secs(10), || async { has_item(app, "EVENT", "queued").await.then_some(()) });
    assert!(consumed.await.is_some(), "the message queued between runs was consumed");
    second.stack.stop().await;
}
