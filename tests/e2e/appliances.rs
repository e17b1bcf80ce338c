//! Appliances (seed 000) through the local stack's real entry points: HTTP,
//! MQTT on the embedded broker, and the stuck-run schedule; on a manual clock
//! so that TOTP steps and run ages are under the test's control. After every
//! test, each room's balance equals the sum of its ledger.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;

use premises_local::{Options, Stack};
use reqwest::{Client, StatusCode};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use shared::platform::clock::Clock;
use shared::platform::config::{AdminAccount, Config, StoreBackend};

use crate::helpers::{Backend, data_dir, unique};

crate::on_both_stores!(
    the_seed_runtime_flow_reserves_then_refunds_the_difference,
    a_start_the_balance_does_not_cover_is_402_and_changes_nothing,
    a_busy_appliance_is_409_and_unknown_or_unserved_appliances_are_refused,
    finishing_twice_never_refunds_twice_and_an_aborted_finish_says_aborted,
    a_replayed_code_is_refused_and_a_code_with_a_leading_zero_may_come_as_a_number,
    revoke_tokens_invalidates_every_outstanding_token_of_the_endpoint,
    the_stuck_run_job_aborts_old_runs_with_a_full_refund_and_tells_the_endpoint,
    twenty_concurrent_starts_on_a_room_that_can_afford_three_let_exactly_three_through,
    endpoints_do_the_same_over_mqtt_and_report_status,
    admin_endpoints_are_for_admins_and_check_their_input,
    a_wrong_totp_code_a_fourth_time_locks_the_room_at_that_endpoint_for_five_minutes,
    a_right_code_before_the_lock_starts_the_count_again,
    twelve_concurrent_wrong_codes_get_only_three_401s_before_the_lock,
    a_challenge_does_not_tell_whether_the_room_exists,
    appliance_requests_without_the_endpoint_key_are_refused_and_change_nothing,
    a_rotated_key_replaces_the_old_one_and_a_legacy_keyless_endpoint_needs_none,
    units_and_price_over_the_appliance_caps_are_400_and_finish_never_charges_more_than_reserved,
    an_admin_credit_above_ten_to_the_ten_cents_is_amount_out_of_range,
    three_thousand_character_ids_are_400_or_404_never_500,
    a_long_ledger_and_runs_of_every_status_are_paged_in_the_store,
);

const ADMIN_EMAIL: &str = "appliance-admin@example.com";
const ADMIN_PASSWORD: &str = "AdminPass123!";

struct T {
    stack: Stack,
    base: String,
    clock: Clock,
    client: Client,
    admin: String,
    rooms: BTreeSet<String>,
    /// Each endpoint's device key, from its creation (or rotation).
    keys: Mutex<HashMap<String, String>>,
}

/// The paths an endpoint drives, which need its device key.
const DEVICE_PATHS: [&str; 4] =
    ["/api/auth/challenge/", "/api/auth/verify/", "/api/appliance/start/", "/api/appliance/finish/"];

/// The endpoint an appliance request is for: the body's `endpoint_id`, or the one its token names.
fn endpoint_of(body: &Value) -> Option<String> {
    match &body["endpoint_id"] {
        Value::String(s) => return Some(s.clone()),
        Value::Number(n) => return Some(n.to_string()),
        _ => {}
    }
    let payload = body["token"].as_str()?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["ep"].as_str().map(str::to_string)
}

impl T {
    async fn start(backend: &Backend) -> T {
        let mut config = Config::for_tests(data_dir("appliances"));
        // The endpoints and watchers of these tests connect without credentials
        // (endpoints have none on the local broker): the documented dev switch.
        config.mqtt_allow_anonymous = true;
        config.admin = Some(AdminAccount { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() });
        let mut sdk = None;
        if let Backend::Dynamodb(endpoint) = backend {
            config.store = StoreBackend::Dynamodb;
            config.table_name = unique("appliances");
            sdk = Some(crate::helpers::dynamodb_sdk(endpoint).await);
        }
        // A whole 30 s TOTP step ahead of real time, at its start.
        let now = Clock::System.now_millis();
        let clock = Clock::manual((now / 30_000 + 2) * 30_000);
        let options = Options { sdk, ..Options::default() };
        let stack = Stack::start(config, clock.clone(), options).await.expect("stack starts");
        let base = format!("http://{}", stack.http_addr);
        let client = Client::new();
        let r = client
            .post(format!("{base}/api/v1/auth/login/"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        let login: Value = r.json().await.unwrap();
        let admin = login["tokens"]["access"].as_str().expect("admin token").to_string();
        T { stack, base, clock, client, admin, rooms: BTreeSet::new(), keys: Mutex::new(HashMap::new()) }
    }

    /// A POST as the endpoint sends it: appliance requests carry the endpoint's device key.
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let key = if DEVICE_PATHS.contains(&path) {
            endpoint_of(&body).and_then(|e| self.keys.lock().unwrap().get(&e).cloned())
        } else {
            None
        };
        self.post_with_key(path, body, key.as_deref()).await
    }

    /// A POST with exactly this `X-Endpoint-Key` (or none).
    async fn post_with_key(&self, path: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
        let (status, out, _) = self.post_full(path, body, key).await;
        (status, out)
    }

    /// A POST with exactly this `X-Endpoint-Key` (or none): status, body and `Retry-After`.
    async fn post_full(&self, path: &str, body: Value, key: Option<&str>) -> (StatusCode, Value, Option<i64>) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(key) = key {
            req = req.header("X-Endpoint-Key", key);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
        (status, r.json().await.unwrap_or(Value::Null), retry_after)
    }

    fn key(&self, endpoint: &str) -> String {
        self.keys.lock().unwrap()[endpoint].clone()
    }

    async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r =
            self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.admin).json(&body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.admin).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn appliance(&self, name: &str, price_per_unit: i64) {
        let (status, out) =
            self.admin_post("/api/admin/appliances/", json!({"name": name, "price_per_unit": price_per_unit})).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
    }

    async fn endpoint(&self, id: Value, appliances: &[&str]) {
        let body = json!({"endpoint_id": id, "name": "laundry", "appliances": appliances});
        let (status, out) = self.admin_post("/api/admin/endpoints/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        let key = out["endpoint_key"].as_str().expect("the device key, shown once").to_string();
        self.keys.lock().unwrap().insert(out["endpoint_id"].as_str().unwrap().to_string(), key);
    }

    /// A room with `balance` cents (credited by an admin) and a TOTP secret.
    async fn room(&mut self, key: &str, balance: i64) -> totp_rs::TOTP {
        let (status, out) = self.admin_post("/api/admin/rooms/", json!({"key": key})).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        assert_eq!(out["balance"], 0);
        self.rooms.insert(key.to_string());
        if balance > 0 {
            let (status, out) = self
                .admin_post(&format!("/api/admin/rooms/{key}/credit/"), json!({"amount": balance, "note": "t"}))
                .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            assert_eq!(out["balance"], balance);
        }
        self.new_secret(key).await
    }

    async fn new_secret(&self, key: &str) -> totp_rs::TOTP {
        let (status, out) = self.admin_post(&format!("/api/admin/rooms/{key}/totp/"), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        assert!(out["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
        let bytes = totp_rs::Secret::Encoded(out["secret"].as_str().unwrap().to_string()).to_bytes().unwrap();
        totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap()
    }

    /// Moves the clock on and logs the admin in again (their access token lasts 15 minutes).
    async fn advance_minutes(&mut self, minutes: i64) {
        self.clock.advance_millis(minutes * 60_000);
        let (status, login) =
            self.post("/api/v1/auth/login/", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        self.admin = login["tokens"]["access"].as_str().unwrap().to_string();
    }

    /// The code of the current step and moves the clock to the next step, so that the next code is fresh.
    fn code(&self, totp: &totp_rs::TOTP) -> String {
        let code = totp.generate((self.clock.now_millis() / 1000) as u64);
        self.clock.advance_millis(30_000);
        code
    }

    async fn challenge(&self, room: &str, endpoint: Value) -> String {
        let (status, out) = self.post("/api/auth/challenge/", json!({"room_num": room, "endpoint_id": endpoint})).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["token"].as_str().unwrap().to_string()
    }

    /// challenge + verify: the verify answer.
    async fn login(&self, room: &str, endpoint: Value, totp: &totp_rs::TOTP) -> Value {
        let challenge = self.challenge(room, endpoint).await;
        let (status, out) =
            self.post("/api/auth/verify/", json!({"token": challenge, "auth_code": self.code(totp)})).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    async fn balance(&self, room: &str) -> i64 {
        let (status, out) = self.admin_get(&format!("/api/admin/rooms/{room}/")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["balance"].as_i64().unwrap()
    }

    /// Every room's balance is the sum of its ledger, and each entry's balance_after adds up.
    async fn check_ledgers(&self) {
        crate::helpers::check_ledgers(&self.client, &self.base, &self.admin, &self.rooms).await;
    }
}

async fn the_seed_runtime_flow_reserves_then_refunds_the_difference(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.appliance("dryer", 30).await;
    t.endpoint(json!(1), &["washer", "dryer"]).await;
    let totp = t.room("12345", 100_000).await;

    // The seed's bodies: room_num and endpoint_id as numbers.
    let (status, challenge) = t.post("/api/auth/challenge/", json!({"room_num": 12345, "endpoint_id": 1})).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    let (status, verified) =
        t.post("/api/auth/verify/", json!({"token": challenge["token"], "auth_code": t.code(&totp)})).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["balance"], 100_000);
    assert_eq!(verified["appliances"], json!([{"name": "dryer", "value": 30}, {"name": "washer", "value": 25}]));

    let start = json!({"token": verified["token"], "appliance_name": "washer", "units": 300, "price": 20});
    let (status, started) = t.post("/api/appliance/start/", start).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["newbalance"], 98_000);
    assert_eq!(t.balance("12345").await, 98_000);

    let finish = json!({"token": started["token"], "units": 250, "price": 15, "aborted": false});
    let (status, finished) = t.post("/api/appliance/finish/", finish).await;
    assert_eq!(status, StatusCode::OK, "{finished}");
    assert_eq!(finished, json!({"status": "finished"}));
    assert_eq!(t.balance("12345").await, 98_500);

    let (status, runs) = t.admin_get("/api/admin/runs/?room=12345").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runs["count"], 1);
    let run = &runs["results"][0];
    assert_eq!(run["status"], "finished");
    assert_eq!((run["initial_units"].clone(), run["final_units"].clone()), (json!(300), json!(250)));
    assert_eq!((run["reserved_cents"].clone(), run["refund_cents"].clone()), (json!(2000), json!(500)));
    t.check_ledgers().await;
}

async fn a_start_the_balance_does_not_cover_is_402_and_changes_nothing(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("101", 1_000).await;
    let access = t.login("101", json!("e1"), &totp).await["token"].clone();
    let (status, out) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 20}))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{out}");
    assert_eq!(out["code"], "insufficient_funds");
    assert_eq!(t.balance("101").await, 1_000);
    assert_eq!(crate::helpers::all_pages(&t.client, &t.base, &t.admin, "/api/admin/rooms/101/ledger/").await.len(), 1);
    assert_eq!(t.admin_get("/api/admin/runs/?room=101").await.1["count"], 0);
    // The appliance is not occupied: an affordable start goes through.
    let (status, out) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 10}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    assert_eq!(out["newbalance"], 0);
    t.check_ledgers().await;
}

async fn a_busy_appliance_is_409_and_unknown_or_unserved_appliances_are_refused(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.appliance("iron", 5).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("102", 10_000).await;
    let access = t.login("102", json!("e1"), &totp).await["token"].clone();
    let start = |name: &str, units: i64, price: i64| json!({"token": access, "appliance_name": name, "units": units, "price": price});
    assert_eq!(t.post("/api/appliance/start/", start("washer", 1, 10)).await.0, StatusCode::CREATED);
    let (status, out) = t.post("/api/appliance/start/", start("washer", 1, 10)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["code"], "appliance_busy");
    let (status, out) = t.post("/api/appliance/start/", start("iron", 1, 1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["code"], "appliance_not_served");
    let (status, out) = t.post("/api/appliance/start/", start("ghost", 1, 1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{out}");
    assert_eq!(out["code"], "appliance_not_found");
    for (units, price, field) in [(0, 1, "units"), (1, 0, "price"), (-3, 1, "units")] {
        let (status, out) = t.post("/api/appliance/start/", start("washer", units, price)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["field"], field);
    }
    assert_eq!(t.balance("102").await, 9_000);
    // Unknown room (not told: see a_challenge_does_not_tell_whether_the_room_exists) and endpoint; a bad token.
    let (status, out) = t.post("/api/auth/challenge/", json!({"room_num": 999, "endpoint_id": "e1"})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, out) = t.post("/api/auth/challenge/", json!({"room_num": 102, "endpoint_id": "e9"})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::NOT_FOUND, json!("endpoint_not_found")));
    let (status, out) = t
        .post("/api/appliance/start/", json!({"token": "x.y.z", "appliance_name": "washer", "units": 1, "price": 1}))
        .await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("token_invalid")));
    // A challenge token is not an access token.
    let challenge = t.challenge("102", json!("e1")).await;
    let (status, _) = t
        .post("/api/appliance/start/", json!({"token": challenge, "appliance_name": "washer", "units": 1, "price": 1}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A wrong code.
    let (status, out) = t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": "000000"})).await;
    let wrong = totp.generate((t.clock.now_millis() / 1000) as u64) != "000000";
    if wrong {
        assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("invalid_auth_code")));
    }
    // An expired challenge.
    let challenge = t.challenge("102", json!("e1")).await;
    t.clock.advance_millis(61_000);
    let (status, out) = t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": t.code(&totp)})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("token_invalid")));
    t.check_ledgers().await;
}

async fn finishing_twice_never_refunds_twice_and_an_aborted_finish_says_aborted(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.appliance("dryer", 25).await;
    t.endpoint(json!("e1"), &["washer", "dryer"]).await;
    let totp = t.room("103", 10_000).await;
    let access = t.login("103", json!("e1"), &totp).await["token"].clone();
    let (_, started) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 10, "price": 30}))
        .await;
    let finish = json!({"token": started["token"], "units": 5, "price": 10, "aborted": false});
    let results = futures::future::join_all((0..5).map(|_| t.post("/api/appliance/finish/", finish.clone()))).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == StatusCode::OK).count(), 1, "{results:?}");
    for (status, out) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(*status, StatusCode::CONFLICT, "{out}");
        assert_eq!(out["code"], "run_not_running");
    }
    assert_eq!(t.balance("103").await, 10_000 - 1_000);

    let (_, started) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "dryer", "units": 10, "price": 20}))
        .await;
    let (status, out) = t
        .post("/api/appliance/finish/", json!({"token": started["token"], "units": 0, "price": 0, "aborted": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out, json!({"status": "aborted"}));
    assert_eq!(t.balance("103").await, 9_000);
    // A final price above the reservation charges nothing extra.
    let (_, started) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "dryer", "units": 10, "price": 20}))
        .await;
    let (status, _) =
        t.post("/api/appliance/finish/", json!({"token": started["token"], "units": 12, "price": 25})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.balance("103").await, 7_000);
    t.check_ledgers().await;
}

async fn a_replayed_code_is_refused_and_a_code_with_a_leading_zero_may_come_as_a_number(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let mut totp = t.room("104", 500).await;
    let now = || (t.clock.now_millis() / 1000) as u64;
    let code = totp.generate(now());
    let first = t.challenge("104", json!("e1")).await;
    let (status, out) = t.post("/api/auth/verify/", json!({"token": first, "auth_code": code})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let again = t.challenge("104", json!("e1")).await;
    let (status, out) = t.post("/api/auth/verify/", json!({"token": again, "auth_code": code})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");
    assert_eq!(out["code"], "auth_code_replayed");
    // The previous step's code is older than the accepted one: refused too.
    let older = totp.generate(now() - 30);
    let (status, out) = t.post("/api/auth/verify/", json!({"token": again, "auth_code": older})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");

    // New secrets until the next step's code starts with 0; then send it as a JSON number.
    t.clock.advance_millis(30_000);
    let mut tries = 0;
    while !totp.generate(now()).starts_with('0') {
        totp = t.new_secret("104").await;
        tries += 1;
        assert!(tries < 200, "no code with a leading zero in 200 secrets");
    }
    let code = totp.generate(now());
    let number: u64 = code.parse().unwrap();
    let challenge = t.challenge("104", json!("e1")).await;
    let (status, out) = t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": number})).await;
    assert_eq!(status, StatusCode::OK, "{code} as {number}: {out}");
    assert_eq!(out["balance"], 500);
    t.check_ledgers().await;
}

async fn revoke_tokens_invalidates_every_outstanding_token_of_the_endpoint(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.appliance("dryer", 25).await;
    t.endpoint(json!("e1"), &["washer", "dryer"]).await;
    let totp = t.room("105", 10_000).await;
    let access = t.login("105", json!("e1"), &totp).await["token"].clone();
    let (_, started) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 10}))
        .await;
    let challenge = t.challenge("105", json!("e1")).await;

    let (status, out) = t.admin_post("/api/admin/endpoints/e1/revoke-tokens/", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["token_version"], 2);

    let (status, out) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "dryer", "units": 1, "price": 10}))
        .await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("token_invalid")));
    let (status, _) =
        t.post("/api/appliance/finish/", json!({"token": started["token"], "units": 1, "price": 1})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": t.code(&totp)})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.balance("105").await, 9_000);
    // New tokens work; the admin can still abort the old run (full refund).
    let access = t.login("105", json!("e1"), &totp).await["token"].clone();
    let (status, _) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "dryer", "units": 1, "price": 10}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, runs) = t.admin_get("/api/admin/runs/?room=105&status=running").await;
    let old = runs["results"].as_array().unwrap().iter().find(|r| r["appliance"] == "washer").unwrap().clone();
    let (status, run) =
        t.admin_post(&format!("/api/admin/runs/{}/abort/", old["run_id"].as_str().unwrap()), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "aborted");
    assert_eq!(t.balance("105").await, 9_000);
    t.check_ledgers().await;
}

/// An MQTT client of the stack's broker subscribed to `filter`.
async fn subscriber(t: &T, id: &str, filter: &str) -> (AsyncClient, EventLoop) {
    let addr = t.stack.mqtt_addr.expect("broker");
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.expect("mqtt") {
                return;
            }
        }
    })
    .await
    .expect("subscribed");
    (client, events)
}

/// The next message published on a subscribed topic.
async fn next_message(events: &mut EventLoop) -> (String, Value) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.expect("mqtt") {
                return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap());
            }
        }
    })
    .await
    .expect("a message within 10 s")
}

async fn the_stuck_run_job_aborts_old_runs_with_a_full_refund_and_tells_the_endpoint(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.appliance("dryer", 25).await;
    t.endpoint(json!("e7"), &["washer", "dryer"]).await;
    let totp = t.room("106", 10_000).await;
    let (_client, mut events) = subscriber(&t, "stuck-watcher", "appliance/e7/command").await;
    let access = t.login("106", json!("e7"), &totp).await["token"].clone();
    let (_, old) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 30}))
        .await;
    t.advance_minutes(200).await;
    let access = t.login("106", json!("e7"), &totp).await["token"].clone();
    let (status, _) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "dryer", "units": 1, "price": 20}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(t.balance("106").await, 5_000);
    t.advance_minutes(41).await;

    t.stack.run_job("appliance-stuck-runs").await.expect("job");
    let (topic, command) = next_message(&mut events).await;
    assert_eq!(topic, "appliance/e7/command");
    assert_eq!(command["command"], "abort");
    let (_, runs) = t.admin_get("/api/admin/runs/?room=106").await;
    let by_appliance =
        |name: &str| runs["results"].as_array().unwrap().iter().find(|r| r["appliance"] == name).unwrap().clone();
    assert_eq!(by_appliance("washer")["status"], "aborted");
    assert_eq!(by_appliance("washer")["ended_by"], "stuck_run_job");
    assert_eq!(by_appliance("washer")["run_id"], command["run_id"]);
    assert_eq!(by_appliance("dryer")["status"], "running");
    assert_eq!(t.balance("106").await, 8_000);
    // The device's late finish is refused; a second job run changes nothing.
    let (status, _) = t.post("/api/appliance/finish/", json!({"token": old["token"], "units": 1, "price": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    t.stack.run_job("appliance-stuck-runs").await.expect("job");
    assert_eq!(t.balance("106").await, 8_000);
    // The washer is free again.
    let access = t.login("106", json!("e7"), &totp).await["token"].clone();
    let (status, _) = t
        .post("/api/appliance/start/", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 10}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    t.check_ledgers().await;
}

async fn twenty_concurrent_starts_on_a_room_that_can_afford_three_let_exactly_three_through(backend: Backend) {
    let mut t = T::start(&backend).await;
    let names: Vec<String> = (0..20).map(|i| format!("machine{i:02}")).collect();
    for name in &names {
        t.appliance(name, 10).await;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    t.endpoint(json!("hall"), &refs).await;
    let totp = t.room("107", 3 * 1_000).await;
    let access = t.login("107", json!("hall"), &totp).await["token"].clone();
    let starts = names.iter().map(|name| {
        t.post("/api/appliance/start/", json!({"token": access, "appliance_name": name, "units": 1, "price": 10}))
    });
    let results = futures::future::join_all(starts).await;
    let created = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 3, "{results:?}");
    for (status, out) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::PAYMENT_REQUIRED, "{out}");
    }
    assert_eq!(t.balance("107").await, 0);
    assert_eq!(t.admin_get("/api/admin/runs/?room=107").await.1["count"], 3);
    t.check_ledgers().await;
}

async fn endpoints_do_the_same_over_mqtt_and_report_status(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("42"), &["washer"]).await;
    t.endpoint(json!("43"), &["washer"]).await;
    let totp = t.room("108", 5_000).await;
    let (device, mut events) = subscriber(&t, "endpoint-42", "appliance/42/reply").await;
    let mut request = async |request_id: &str, op: &str, body: Value| -> Value {
        let payload = json!({"request_id": request_id, "op": op, "body": body});
        device.publish("appliance/42/request", QoS::AtLeastOnce, false, payload.to_string()).await.unwrap();
        let (topic, reply) = next_message(&mut events).await;
        assert_eq!(topic, "appliance/42/reply");
        assert_eq!(reply["request_id"], request_id);
        reply
    };
    let reply = request("r1", "challenge", json!({"room_num": 108, "endpoint_id": 42})).await;
    assert_eq!(reply["status"], 200, "{reply}");
    let reply = request("r2", "verify", json!({"token": reply["body"]["token"], "auth_code": t.code(&totp)})).await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["body"]["balance"], 5_000);
    let access = reply["body"]["token"].clone();
    let reply =
        request("r3", "start", json!({"token": access, "appliance_name": "washer", "units": 10, "price": 20})).await;
    assert_eq!(reply["status"], 201, "{reply}");
    assert_eq!(reply["body"]["newbalance"], 3_000);
    let reply = request("r4", "finish", json!({"token": reply["body"]["token"], "units": 5, "price": 5})).await;
    assert_eq!((reply["status"].clone(), reply["body"].clone()), (json!(200), json!({"status": "finished"})));
    assert_eq!(t.balance("108").await, 4_500);
    // Errors come back with HTTP's status and body.
    let reply =
        request("r5", "start", json!({"token": access, "appliance_name": "washer", "units": 1, "price": 100})).await;
    assert_eq!((reply["status"].clone(), reply["body"]["code"].clone()), (json!(402), json!("insufficient_funds")));
    let reply = request("r6", "dance", json!({})).await;
    assert_eq!(reply["status"], 400);
    // Another endpoint's challenge or token is refused on this topic.
    let reply = request("r7", "challenge", json!({"room_num": 108, "endpoint_id": 43})).await;
    assert_eq!((reply["status"].clone(), reply["body"]["code"].clone()), (json!(400), json!("endpoint_mismatch")));
    let other = t.login("108", json!("43"), &totp).await["token"].clone();
    let reply =
        request("r8", "start", json!({"token": other, "appliance_name": "washer", "units": 1, "price": 1})).await;
    assert_eq!(reply["status"], 401);

    // Status telemetry sets last_seen.
    device.publish("appliance/42/status", QoS::AtLeastOnce, false, r#"{"uptime": 5}"#).await.unwrap();
    // The client sends only while its event loop is polled: until the broker acknowledges.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.expect("mqtt") {
                return;
            }
        }
    })
    .await
    .expect("status acknowledged");
    let seen = crate::helpers::eventually(Duration::from_secs(10), || async {
        let (_, list) = t.admin_get("/api/admin/endpoints/").await;
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["endpoint_id"] == "42")
            .and_then(|e| e["last_seen"].as_i64())
    })
    .await;
    assert_eq!(seen, Some(t.clock.now_secs()));
    t.check_ledgers().await;
}

async fn admin_endpoints_are_for_admins_and_check_their_input(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.room("109", 0).await;
    let (status, out) = t.admin_post("/api/admin/rooms/", json!({"key": "109"})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::CONFLICT, json!("room_exists")));
    let (status, out) = t.admin_post("/api/admin/rooms/", json!({"key": "bad key!"})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("key")));
    let (status, out) = t.admin_post("/api/admin/rooms/109/credit/", json!({"amount": -1, "note": "x"})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::PAYMENT_REQUIRED, json!("insufficient_funds")));
    let (status, _) = t.admin_post("/api/admin/rooms/nope/credit/", json!({"amount": 5})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The most negative i64 has no i64 absolute value; it is out of range, not a panic (found by schemathesis).
    let (status, out) = t.admin_post("/api/admin/rooms/109/credit/", json!({"amount": i64::MIN})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("amount")));
    let (status, _) = t.admin_post("/api/admin/rooms/nope/totp/", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, out) = t
        .admin_post(
            "/api/admin/endpoints/",
            json!({"endpoint_id": "e1", "name": "x", "appliances": ["washer", "ghost"]}),
        )
        .await;
    assert_eq!((status, out["code"].clone()), (StatusCode::BAD_REQUEST, json!("appliance_not_found")));
    let (status, out) = t.admin_post("/api/admin/appliances/", json!({"name": "washer", "price_per_unit": 3})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::CONFLICT, json!("appliance_exists")));
    let (status, _) = t.admin_post("/api/admin/appliances/", json!({"name": "kettle", "price_per_unit": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, out) = t.admin_get("/api/admin/runs/?status=flying").await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("status")));
    let (status, _) = t.admin_post("/api/admin/endpoints/nope/revoke-tokens/", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listing pages.
    for i in 0..25 {
        t.admin_post("/api/admin/rooms/", json!({"key": format!("p{i:02}")})).await;
    }
    let (_, page1) = t.admin_get("/api/admin/rooms/").await;
    assert_eq!(page1["count"], 26);
    assert_eq!(page1["results"].as_array().unwrap().len(), 20);
    assert!(page1["next"].as_str().unwrap().ends_with("page=2"), "{page1}");
    let (_, page2) = t.admin_get(page1["next"].as_str().unwrap()).await;
    assert_eq!(page2["results"].as_array().unwrap().len(), 6);

    // A member is refused.
    let member = json!({"email": "m@example.com", "password": "SecurePass123!", "password_confirm": "SecurePass123!"});
    let (_, registered) = t.post("/api/v1/auth/register/", member).await;
    let token = registered["tokens"]["access"].as_str().unwrap().to_string();
    let r = t.client.get(format!("{}/api/admin/rooms/", t.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = t
        .client
        .post(format!("{}/api/admin/rooms/109/credit/", t.base))
        .bearer_auth(&token)
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(t.balance("109").await, 0);
    t.check_ledgers().await;
}

/// A code that is none of the codes verify accepts now (previous, current and next step).
fn wrong_code(t: &T, totp: &totp_rs::TOTP) -> String {
    let now = (t.clock.now_millis() / 1000) as u64;
    let valid: Vec<String> = [now - 30, now, now + 30].iter().map(|s| totp.generate(*s)).collect();
    (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap()
}

/// A resident (a registered user) of a new room with `balance` cents: the room's TOTP and the resident's token.
async fn room_with_resident(t: &mut T, key: &str, email: &str) -> (totp_rs::TOTP, String) {
    let reg = json!({"email": email, "password": "SecurePass123!", "password_confirm": "SecurePass123!"});
    let (status, out) = t.post("/api/v1/auth/register/", reg).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let token = out["tokens"]["access"].as_str().unwrap().to_string();
    let (status, room) = t.admin_post("/api/admin/rooms/", json!({"key": key, "resident_id": out["user"]["id"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    t.rooms.insert(key.to_string());
    (t.new_secret(key).await, token)
}

async fn a_wrong_totp_code_a_fourth_time_locks_the_room_at_that_endpoint_for_five_minutes(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    t.endpoint(json!("e2"), &["washer"]).await;
    let (totp, resident) = room_with_resident(&mut t, "201", "resident201@example.com").await;
    let verify = async |t: &T, code: String| {
        let challenge = t.challenge("201", json!("e1")).await;
        t.post_full("/api/auth/verify/", json!({"token": challenge, "auth_code": code}), Some(&t.key("e1"))).await
    };
    for _ in 0..3 {
        let (status, out, _) = verify(&t, wrong_code(&t, &totp)).await;
        assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("invalid_auth_code")), "{out}");
    }
    let (status, out, retry_after) = verify(&t, wrong_code(&t, &totp)).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::TOO_MANY_REQUESTS, json!("totp_locked")), "{out}");
    assert_eq!(retry_after, Some(300));
    assert_eq!(out["retry_after"], 300);
    // The right code during the lock is refused too, and says how long is left.
    t.clock.advance_millis(60_000);
    let right = totp.generate((t.clock.now_millis() / 1000) as u64);
    let (status, out, retry_after) = verify(&t, right).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::TOO_MANY_REQUESTS, json!("totp_locked")), "{out}");
    assert_eq!(retry_after, Some(240));
    // The admin sees the lock; another endpoint of the same room is not locked.
    let (_, detail) = t.admin_get("/api/admin/rooms/201/").await;
    assert_eq!(detail["totp_locks"], json!([{"endpoint_id": "e1", "locked_until": t.clock.now_secs() + 240}]));
    t.login("201", json!("e2"), &totp).await;

    // Five minutes after the lock, the right code works again.
    t.advance_minutes(4).await;
    let (status, _, _) = verify(&t, t.code(&totp)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) = t.admin_get("/api/admin/rooms/201/").await;
    assert_eq!(detail["totp_locks"], json!([]));

    // The resident was told once.
    let told = crate::helpers::eventually(Duration::from_secs(20), || async {
        let (_, out) =
            crate::helpers::call(&t.client, &t.base, "GET", "/api/v1/notifications/", Some(&resident), None).await;
        let kinds: Vec<Value> = out["results"].as_array()?.iter().map(|n| n["kind"].clone()).collect();
        (!kinds.is_empty()).then_some(kinds)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, out) =
        crate::helpers::call(&t.client, &t.base, "GET", "/api/v1/notifications/", Some(&resident), None).await;
    assert_eq!(told, Some(vec![json!("totp_locked")]));
    assert_eq!(out["count"], 1, "{out}");
    t.check_ledgers().await;
}

async fn a_right_code_before_the_lock_starts_the_count_again(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("202", 0).await;
    let wrong = async |t: &T| {
        let challenge = t.challenge("202", json!("e1")).await;
        t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": wrong_code(t, &totp)})).await.0
    };
    for _ in 0..3 {
        assert_eq!(wrong(&t).await, StatusCode::UNAUTHORIZED);
    }
    // The 4th code is still compared: a right one gets in and clears the count.
    t.login("202", json!("e1"), &totp).await;
    for _ in 0..3 {
        assert_eq!(wrong(&t).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(wrong(&t).await, StatusCode::TOO_MANY_REQUESTS);
}

async fn twelve_concurrent_wrong_codes_get_only_three_401s_before_the_lock(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("203", 0).await;
    let challenge = t.challenge("203", json!("e1")).await;
    let code = wrong_code(&t, &totp);
    let attempts = (0..12).map(|_| t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": code})));
    let results = futures::future::join_all(attempts).await;
    let count = |s: StatusCode| results.iter().filter(|(status, _)| *status == s).count();
    assert_eq!((count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS)), (3, 9), "{results:?}");
    // The right code is locked out too.
    let challenge = t.challenge("203", json!("e1")).await;
    let (status, _) = t.post("/api/auth/verify/", json!({"token": challenge, "auth_code": t.code(&totp)})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn a_challenge_does_not_tell_whether_the_room_exists(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("204", 0).await;
    let (known, known_out) = t.post("/api/auth/challenge/", json!({"room_num": 204, "endpoint_id": "e1"})).await;
    let (unknown, unknown_out) = t.post("/api/auth/challenge/", json!({"room_num": 9999, "endpoint_id": "e1"})).await;
    assert_eq!((known, unknown), (StatusCode::OK, StatusCode::OK), "{known_out} {unknown_out}");
    let shape = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(shape(&known_out), shape(&unknown_out));
    // The unknown room's token never verifies; it answers as a wrong code for a real room does.
    let (status, wrong) =
        t.post("/api/auth/verify/", json!({"token": known_out["token"], "auth_code": wrong_code(&t, &totp)})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, ghost) =
        t.post("/api/auth/verify/", json!({"token": unknown_out["token"], "auth_code": "123456"})).await;
    assert_eq!((status, ghost), (StatusCode::UNAUTHORIZED, wrong));
    // An unknown endpoint is the one thing challenge refuses.
    let (status, out) = t.post("/api/auth/challenge/", json!({"room_num": 204, "endpoint_id": "e9"})).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::NOT_FOUND, json!("endpoint_not_found")));
}

async fn appliance_requests_without_the_endpoint_key_are_refused_and_change_nothing(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    t.endpoint(json!("e2"), &["washer"]).await;
    let totp = t.room("205", 10_000).await;
    let other = t.key("e2");
    let challenge_body = json!({"room_num": 205, "endpoint_id": "e1"});
    for (key, code) in [
        (None, "endpoint_key_required"),
        (Some("nope"), "endpoint_key_invalid"),
        (Some(other.as_str()), "endpoint_key_invalid"),
    ] {
        let (status, out) = t.post_with_key("/api/auth/challenge/", challenge_body.clone(), key).await;
        assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!(code)), "{out}");
    }
    // Verify without the key: refused before any attempt is counted (ten wrong codes do not lock the room).
    let challenge = t.challenge("205", json!("e1")).await;
    for _ in 0..10 {
        let body = json!({"token": challenge, "auth_code": wrong_code(&t, &totp)});
        let (status, out) = t.post_with_key("/api/auth/verify/", body, None).await;
        assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("endpoint_key_required")));
    }
    let (status, out) = t
        .post_with_key("/api/auth/verify/", json!({"token": challenge, "auth_code": t.code(&totp)}), Some(&other))
        .await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("endpoint_key_invalid")));
    let access = t.login("205", json!("e1"), &totp).await["token"].clone();

    // Start without the key: no run, no money.
    let start = json!({"token": access, "appliance_name": "washer", "units": 10, "price": 20});
    let (status, out) = t.post_with_key("/api/appliance/start/", start.clone(), None).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("endpoint_key_required")));
    let (status, _) = t.post_with_key("/api/appliance/start/", start.clone(), Some(&other)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.balance("205").await, 10_000);
    assert_eq!(t.admin_get("/api/admin/runs/?room=205").await.1["count"], 0);

    // Finish without the key: the run keeps running, nothing is refunded.
    let (status, started) = t.post("/api/appliance/start/", start).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let finish = json!({"token": started["token"], "units": 0, "price": 0, "aborted": true});
    let (status, out) = t.post_with_key("/api/appliance/finish/", finish.clone(), None).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("endpoint_key_required")));
    assert_eq!(t.balance("205").await, 8_000);
    assert_eq!(t.admin_get("/api/admin/runs/?room=205&status=running").await.1["count"], 1);
    let (status, _) = t.post("/api/appliance/finish/", finish).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.balance("205").await, 10_000);
    t.check_ledgers().await;
}

async fn a_rotated_key_replaces_the_old_one_and_a_legacy_keyless_endpoint_needs_none(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("206", 5_000).await;
    let old = t.key("e1");
    let (status, rotated) = t.admin_post("/api/admin/endpoints/e1/rotate-key/", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["endpoint_key"].as_str().unwrap().to_string();
    assert!(new.len() >= 43 && new != old, "{rotated}");
    assert!(new.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{new}");
    let body = json!({"room_num": 206, "endpoint_id": "e1"});
    let (status, out) = t.post_with_key("/api/auth/challenge/", body.clone(), Some(&old)).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::UNAUTHORIZED, json!("endpoint_key_invalid")));
    assert_eq!(t.post_with_key("/api/auth/challenge/", body, Some(&new)).await.0, StatusCode::OK);
    let (status, _) = t.admin_post("/api/admin/endpoints/nope/rotate-key/", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A legacy terminal works without the header; the admin list says which endpoints are keyless.
    let body = json!({"endpoint_id": "old", "name": "old terminal", "appliances": ["washer"], "legacy_keyless": true});
    let (status, out) = t.admin_post("/api/admin/endpoints/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let (status, challenge) =
        t.post_with_key("/api/auth/challenge/", json!({"room_num": 206, "endpoint_id": "old"}), None).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    let body = json!({"token": challenge["token"], "auth_code": t.code(&totp)});
    let (status, verified) = t.post_with_key("/api/auth/verify/", body, None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    let start = json!({"token": verified["token"], "appliance_name": "washer", "units": 1, "price": 10});
    let (status, started) = t.post_with_key("/api/appliance/start/", start, None).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let finish = json!({"token": started["token"], "units": 1, "price": 5});
    assert_eq!(t.post_with_key("/api/appliance/finish/", finish, None).await.0, StatusCode::OK);
    assert_eq!(t.balance("206").await, 4_500);
    let (_, list) = t.admin_get("/api/admin/endpoints/").await;
    let flags: Vec<(Value, Value)> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["endpoint_id"].clone(), e["legacy_keyless"].clone()))
        .collect();
    assert_eq!(flags, vec![(json!("e1"), json!(false)), (json!("old"), json!(true))]);
    // Neither the key nor its hash is ever listed.
    assert!(!list.to_string().contains(&new) && !list.to_string().contains("key_hash"), "{list}");
    // Clearing the flag makes the terminal need its key.
    let (status, out) = t.admin_post("/api/admin/endpoints/old/rotate-key/", json!({"legacy_keyless": false})).await;
    assert_eq!((status, out["legacy_keyless"].clone()), (StatusCode::OK, json!(false)));
    let (status, _) =
        t.post_with_key("/api/auth/challenge/", json!({"room_num": 206, "endpoint_id": "old"}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    t.check_ledgers().await;
}

async fn units_and_price_over_the_appliance_caps_are_400_and_finish_never_charges_more_than_reserved(backend: Backend) {
    let mut t = T::start(&backend).await;
    let body = json!({"name": "dryer", "price_per_unit": 50, "max_units": 10, "max_price": 500});
    let (status, out) = t.admin_post("/api/admin/appliances/", body).await;
    assert_eq!(
        (status, out["max_units"].clone(), out["max_price"].clone()),
        (StatusCode::CREATED, json!(10), json!(500))
    );
    t.appliance("washer", 25).await;
    let (_, list) = t.admin_get("/api/admin/appliances/").await;
    let washer = list["results"].as_array().unwrap().iter().find(|a| a["name"] == "washer").unwrap().clone();
    assert_eq!((washer["max_units"].clone(), washer["max_price"].clone()), (json!(1000), json!(1000)));
    for bad in [json!({"max_units": 0}), json!({"max_price": -1}), json!({"max_price": 2_000_000})] {
        let mut body = json!({"name": "kettle", "price_per_unit": 1});
        body.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        let (status, out) = t.admin_post("/api/admin/appliances/", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert!(out["field"].as_str().unwrap().starts_with("max_"), "{out}");
    }
    t.endpoint(json!("e1"), &["dryer", "washer"]).await;
    let totp = t.room("207", 500_000).await;
    let access = t.login("207", json!("e1"), &totp).await["token"].clone();
    let start = |name: &str, units: i64, price: i64| json!({"token": access, "appliance_name": name, "units": units, "price": price});
    for (name, units, price, field) in [
        ("dryer", 11, 10, "units"),
        ("dryer", 10, 501, "price"),
        ("washer", 1, 1001, "price"),
        ("washer", 1001, 1, "units"),
    ] {
        let (status, out) = t.post("/api/appliance/start/", start(name, units, price)).await;
        assert_eq!(
            (status, out["field"].clone(), out["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(field), json!("over_appliance_cap")),
            "{out}"
        );
    }
    assert_eq!(t.balance("207").await, 500_000);
    assert_eq!(t.admin_get("/api/admin/runs/?room=207").await.1["count"], 0);

    // At the caps it goes; a finish price far above the reservation is clamped: never charged more.
    let (status, started) = t.post("/api/appliance/start/", start("dryer", 10, 500)).await;
    assert_eq!((status, started["newbalance"].clone()), (StatusCode::CREATED, json!(450_000)), "{started}");
    let finish = json!({"token": started["token"], "units": 10, "price": 1_000_000});
    let (status, out) = t.post("/api/appliance/finish/", finish).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(t.balance("207").await, 450_000);
    let (_, runs) = t.admin_get("/api/admin/runs/?room=207").await;
    assert_eq!(
        (runs["results"][0]["reserved_cents"].clone(), runs["results"][0]["refund_cents"].clone()),
        (json!(50_000), json!(0))
    );
    t.check_ledgers().await;
}

async fn an_admin_credit_above_ten_to_the_ten_cents_is_amount_out_of_range(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.room("208", 0).await;
    for amount in [10_000_000_001_i64, -10_000_000_001, i64::MAX, i64::MIN] {
        let (status, out) = t.admin_post("/api/admin/rooms/208/credit/", json!({"amount": amount})).await;
        assert_eq!(
            (status, out["code"].clone(), out["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("amount_out_of_range"), json!("amount")),
            "{amount}: {out}"
        );
    }
    assert_eq!(t.balance("208").await, 0);
    let (status, out) = t.admin_post("/api/admin/rooms/208/credit/", json!({"amount": 10_000_000_000_i64})).await;
    assert_eq!((status, out["balance"].clone()), (StatusCode::OK, json!(10_000_000_000_i64)));
    t.check_ledgers().await;
}

async fn three_thousand_character_ids_are_400_or_404_never_500(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 25).await;
    t.endpoint(json!("e1"), &["washer"]).await;
    let totp = t.room("209", 10_000).await;
    let long = "a".repeat(3_000);
    let medium = "b".repeat(100);
    let access = t.login("209", json!("e1"), &totp).await["token"].clone();
    let (status, out) =
        t.post("/api/appliance/start/", json!({"token": access, "appliance_name": long, "units": 1, "price": 1})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("appliance_name")), "{out}");
    for field in ["room_num", "endpoint_id"] {
        let mut body = json!({"room_num": 209, "endpoint_id": "e1"});
        body[field] = json!(long);
        let (status, out) = t.post("/api/auth/challenge/", body).await;
        assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!(field)), "{out}");
    }
    let (status, out) = t.admin_get(&format!("/api/admin/runs/?room={long}")).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("room")), "{out}");
    for id in [&long, &medium] {
        for path in [format!("/api/admin/rooms/{id}/"), format!("/api/admin/rooms/{id}/ledger/")] {
            assert_eq!(t.admin_get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        for path in [
            format!("/api/admin/rooms/{id}/credit/"),
            format!("/api/admin/rooms/{id}/totp/"),
            format!("/api/admin/endpoints/{id}/revoke-tokens/"),
            format!("/api/admin/endpoints/{id}/rotate-key/"),
            format!("/api/admin/runs/{id}/abort/"),
        ] {
            let (status, out) = t.admin_post(&path, json!({"amount": 5})).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {out}");
        }
    }
    let (status, out) = t.admin_post("/api/admin/rooms/", json!({"key": long})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("key")));
    let (status, out) =
        t.admin_post("/api/admin/endpoints/", json!({"endpoint_id": "e2", "name": "x", "appliances": [long]})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("appliances")));
    assert_eq!(t.balance("209").await, 10_000);
    t.check_ledgers().await;
}

async fn a_long_ledger_and_runs_of_every_status_are_paged_in_the_store(backend: Backend) {
    let mut t = T::start(&backend).await;
    t.appliance("washer", 1).await;
    t.endpoint(json!("paged"), &["washer"]).await;
    let totp = t.room("301", 1_000).await;
    for _ in 0..44 {
        let (status, out) = t.admin_post("/api/admin/rooms/301/credit/", json!({"amount": 1})).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let walk = |path: &'static str, size: usize, total: usize| {
        crate::helpers::walk_pages(&t.client, &t.base, &t.admin, path, size, total)
    };
    let ledger = walk("/api/admin/rooms/301/ledger/", 20, 45).await;
    let after: Vec<i64> = ledger.iter().map(|e| e["balance_after"].as_i64().unwrap()).collect();
    assert_eq!(after, (1_000..1_045).rev().collect::<Vec<_>>(), "newest first, every entry once");

    // Three finished runs, two aborted, one running: three status partitions, merged when unfiltered.
    for outcome in ["finished", "finished", "aborted", "finished", "aborted", "running"] {
        let token = t.login("301", json!("paged"), &totp).await["token"].clone();
        let start = json!({"token": token, "appliance_name": "washer", "units": 1, "price": 1});
        let (status, started) = t.post("/api/appliance/start/", start).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        match outcome {
            "finished" => {
                let finish = json!({"token": started["token"], "units": 1, "price": 1, "aborted": false});
                assert_eq!(t.post("/api/appliance/finish/", finish).await.0, StatusCode::OK);
            }
            "aborted" => {
                let (_, running) = t.admin_get("/api/admin/runs/?status=running").await;
                let id = running["results"][0]["run_id"].as_str().unwrap().to_string();
                let (status, out) = t.admin_post(&format!("/api/admin/runs/{id}/abort/"), json!({})).await;
                assert_eq!(status, StatusCode::OK, "{out}");
            }
            _ => {}
        }
    }
    let runs = walk("/api/admin/runs/", 2, 6).await;
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["running", "aborted", "finished", "aborted", "finished", "finished"], "newest first");
    let started: Vec<i64> = runs.iter().map(|r| r["started_at"].as_i64().unwrap()).collect();
    assert!(started.windows(2).all(|w| w[0] > w[1]), "{started:?}");
    assert_eq!(walk("/api/admin/runs/?status=finished", 2, 3).await, [&runs[2], &runs[4], &runs[5]].map(Clone::clone));
    assert_eq!(walk("/api/admin/runs/?room=301", 4, 6).await, runs);
    // A room and a status: the room's partition, filtered in the store.
    assert_eq!(walk("/api/admin/runs/?room=301&status=aborted", 1, 2).await, [&runs[1], &runs[3]].map(Clone::clone));
    assert_eq!(walk("/api/admin/runs/?room=301&status=running", 1, 1).await, [runs[0].clone()]);
    assert!(walk("/api/admin/runs/?room=302", 5, 0).await.is_empty());

    // A forged cursor, or one from another list, is 400 naming it.
    let (_, first) = t.admin_get("/api/admin/rooms/301/ledger/?page_size=5").await;
    let cursor = first["next"].as_str().unwrap().split("cursor=").nth(1).unwrap().to_string();
    for path in [
        format!("/api/admin/runs/?room=301&cursor={cursor}"),
        "/api/admin/rooms/301/ledger/?cursor=%%%".to_string(),
        "/api/admin/rooms/301/ledger/?before=".to_string() + &"A".repeat(3000),
    ] {
        let (status, out) = t.admin_get(&path).await;
        assert_eq!((status, out["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_cursor")), "{path}: {out}");
    }
    t.check_ledgers().await;
}

/// A measurement, not a check (docs/perf.md): a room's ledger page with 1,500 entries through
/// HTTP (one page query and the count query behind `count`), and the store reads behind it, on
/// each store available. Run with
/// `cargo test -p premises-local --test e2e -- --ignored --nocapture ledger_page_timing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/perf.md"]
async fn ledger_page_timing_with_1500_entries() {
    use crate::helpers::{measured_backends, median};
    use shared::platform::store::{Query, SkCond};
    use std::time::Instant;
    for (name, backend) in measured_backends() {
        let mut t = T::start(&backend).await;
        t.room("900", 0).await;
        let base = "/api/admin/rooms/900/ledger/";
        let time_page = |path: String| {
            let t = &t;
            async move {
                let mut runs = Vec::new();
                for _ in 0..21 {
                    let start = Instant::now();
                    let (status, _) = t.admin_get(&path).await;
                    runs.push(start.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(status, StatusCode::OK);
                }
                runs
            }
        };
        let empty = median(time_page(base.to_string()).await);
        for _ in 0..1500 {
            let (status, out) = t.admin_post("/api/admin/rooms/900/credit/", json!({"amount": 1})).await;
            assert_eq!(status, StatusCode::OK, "{out}");
        }
        let first = median(time_page(base.to_string()).await);
        let (_, page) = t.admin_get(base).await;
        assert_eq!(page["count"], 1500);
        let next = median(time_page(page["next"].as_str().unwrap().to_string()).await);
        let deep = median(time_page(format!("{base}?page=50")).await);
        // The store reads: the whole ledger (what the ledger read before it paged in the store),
        // one page, and the count.
        let query = Query::partition("ROOM#900").sk(SkCond::BeginsWith("LEDGER#".into())).descending();
        let store = &t.stack.app.store;
        let (mut whole, mut one, mut count) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..21 {
            let start = Instant::now();
            let all: Vec<serde_json::Value> = store.query_all(query.clone()).await.unwrap();
            whole.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(all.len(), 1500);
            let start = Instant::now();
            store.query(query.clone().limit(21)).await.unwrap();
            one.push(start.elapsed().as_secs_f64() * 1000.0);
            let start = Instant::now();
            assert_eq!(store.count(query.clone()).await.unwrap(), 1500);
            count.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "| {name} | {empty:.1} | {first:.1} | {next:.1} | {deep:.1} | {:.1} | {:.1} | {:.1} |",
            median(whole),
            median(one),
            median(count)
        );
    }
}
