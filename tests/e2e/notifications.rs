//! Notifications through the `premises` binary: producers' messages on the
//! `notifications` queue reach the inbox, the dev outbox, Twilio and Telegram
//! (local stand-ins) and SES/SNS (moto server), each channel once.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shared::notifications::{Channel, Notification, QUEUE, Recipient};
use shared::platform::clock::{Clock, new_id};
use shared::platform::queue::OutMessage;
use shared::platform::queue::embedded::EmbeddedQueue;

use crate::helpers::{Backend, Server, StandIn, eventually};
use crate::identity::{ADMIN_ENV, PASSWORD, admin_access, get, post, text};

crate::on_both_stores!(
    a_requested_otp_reaches_the_dev_outbox_as_an_sms,
    outside_dev_mode_the_otp_travels_only_by_sms_and_the_outbox_is_404,
    an_alert_lands_in_the_owners_inbox_and_is_read,
    a_message_the_queue_delivers_twice_makes_one_inbox_item_and_one_sms,
    a_provider_500_is_retried_and_delivered_once,
    a_provider_failing_every_try_is_retried_through_the_queue_and_delivered_once,
    a_provider_400_is_recorded_failed_not_retried_and_other_channels_still_go_out,
    ses_and_sns_deliver_through_moto,
    an_otp_on_the_queue_and_in_its_dlq_is_sealed_while_the_sms_provider_gets_the_code,
    a_sealed_secret_moved_to_another_message_does_not_open_and_nothing_is_sent,
    a_long_inbox_is_paged_and_its_unread_items_counted_in_the_store,
);

/// The server's embedded queue, as a producer sees it.
fn queue(server: &Server) -> EmbeddedQueue {
    EmbeddedQueue::open(&server.data_dir.join("queue.sqlite"), Clock::System, &[QUEUE]).unwrap()
}

fn notification(recipient: Recipient, channels: Vec<Channel>) -> Notification {
    Notification {
        id: new_id(),
        recipient,
        kind: "low_battery".into(),
        title: "Low battery".into(),
        body: "Front door lock battery at 15%.".into(),
        data: json!({"device_id": "lock0001", "battery": 15}),
        channels,
        sealed_secret: None,
    }
}

async fn send(server: &Server, n: &Notification) {
    queue(server).send(QUEUE.name, OutMessage::json(n).unwrap()).await.unwrap();
}

/// Waits until the queue has nothing waiting or in flight.
async fn drained(server: &Server) {
    let q = queue(server);
    let empty = eventually(Duration::from_secs(30), || {
        let q = q.clone();
        async move { (q.depth(QUEUE.name).await.unwrap() == 0).then_some(()) }
    })
    .await;
    assert!(empty.is_some(), "the notifications queue did not drain");
}

/// Registers a user with a phone number; returns (id, access token).
async fn user(client: &Client, server: &Server, email: &str, phone: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD, "phone_number": phone});
    let (status, out) = post(client, server, "/api/v1/auth/register/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    (text(&out["user"]["id"]), text(&out["tokens"]["access"]))
}

async fn outbox(client: &Client, server: &Server) -> Vec<Value> {
    let r = client.get(server.url("/api/dev/outbox/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["results"].as_array().unwrap().clone()
}

async fn a_requested_otp_reaches_the_dev_outbox_as_an_sms(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let (_, requested) =
        post(&client, &server, "/api/v1/auth/request-otp/", json!({"phone": "+919876543210", "role": "worker"})).await;
    let code = text(&requested["dev_otp"]);
    let sms = eventually(Duration::from_secs(20), || async {
        outbox(&client, &server).await.into_iter().find(|m| m["channel"] == "sms" && m["to"] == "+919876543210")
    })
    .await
    .expect("the OTP SMS in the dev outbox");
    assert!(text(&sms["body"]).contains(&code), "{sms}");
    assert_eq!(sms["kind"], "otp");
    assert!(sms["created_at"].is_i64());
}

async fn outside_dev_mode_the_otp_travels_only_by_sms_and_the_outbox_is_404(backend: Backend) {
    let twilio = StandIn::start(&[201]).await;
    let env = [
        ("PREMISES_ENV", "test"),
        ("PREMISES_SMS_PROVIDER", "twilio"),
        ("PREMISES_TWILIO_BASE_URL", twilio.base.as_str()),
        ("PREMISES_TWILIO_ACCOUNT_SID", "AC123"),
        ("PREMISES_TWILIO_AUTH_TOKEN", "twilio-secret"),
        ("PREMISES_TWILIO_FROM_NUMBER", "+15005550006"),
    ];
    let server = Server::start_with_env(&backend, &env).await;
    let client = Client::new();
    let (status, requested) =
        post(&client, &server, "/api/v1/auth/request-otp/", json!({"phone": "+447700900123", "role": "contractor"}))
            .await;
    assert_eq!(status, StatusCode::OK, "{requested}");
    assert!(requested.get("dev_otp").is_none(), "{requested}");
    let sent =
        eventually(Duration::from_secs(20), || async { twilio.requests().into_iter().next() }).await.expect("sms");
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert!(sent.headers.iter().any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));
    let form: Vec<(String, String)> = form_urlencoded::parse(sent.body.as_bytes()).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(field("To"), "+447700900123");
    assert_eq!(field("From"), "+15005550006");
    let code: String = field("Body").chars().filter(char::is_ascii_digit).take(6).collect();

    let (status, session) =
        post(&client, &server, "/api/v1/auth/verify-otp/", json!({"request_id": requested["request_id"], "otp": code}))
            .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["user"]["role"], "contractor");
    let r = client.get(server.url("/api/dev/outbox/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn an_alert_lands_in_the_owners_inbox_and_is_read(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let (owner, access) = user(&client, &server, "owner@example.com", "+14155550101").await;
    let (_, other) = user(&client, &server, "other@example.com", "+14155550102").await;
    let alert = notification(Recipient::User(owner.clone()), vec![Channel::Inbox]);
    send(&server, &alert).await;

    let count = eventually(Duration::from_secs(20), || async {
        let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
        (out["count"] == 1).then_some(())
    })
    .await;
    assert!(count.is_some(), "one unread notification");
    let (status, list) = get(&client, &server, "/api/v1/notifications/", &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 1);
    let item = &list["results"][0];
    assert_eq!(
        (item["id"].clone(), item["kind"].clone(), item["is_read"].clone()),
        (json!(alert.id), json!("low_battery"), json!(false))
    );
    assert_eq!(item["data"]["battery"], 15);
    let (_, unread) = get(&client, &server, "/api/v1/notifications/?unread=true", &access).await;
    assert_eq!(unread["count"], 1);
    // Another user sees nothing and cannot read it.
    let (_, theirs) = get(&client, &server, "/api/v1/notifications/", &other).await;
    assert_eq!(theirs["count"], 0);
    let path = format!("/api/v1/notifications/{}/read/", alert.id);
    let r = client.post(server.url(&path)).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = client.post(server.url(&path)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["is_read"], true);
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
    assert_eq!(out["count"], 0);
    let (_, unread) = get(&client, &server, "/api/v1/notifications/?unread=true", &access).await;
    assert_eq!(unread["count"], 0);

    // read-all marks the rest.
    for _ in 0..3 {
        send(&server, &notification(Recipient::User(owner.clone()), vec![Channel::Inbox])).await;
    }
    drained(&server).await;
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
    assert_eq!(out["count"], 3);
    let r = client.post(server.url("/api/v1/notifications/read-all/")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
    assert_eq!(out["count"], 0);
    let (_, all) = get(&client, &server, "/api/v1/notifications/", &access).await;
    assert_eq!(all["count"], 4);
}

async fn a_message_the_queue_delivers_twice_makes_one_inbox_item_and_one_sms(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let (owner, access) = user(&client, &server, "twice@example.com", "+14155550103").await;
    let alert = notification(Recipient::User(owner), vec![Channel::Inbox, Channel::Sms]);
    send(&server, &alert).await;
    send(&server, &alert).await;
    drained(&server).await;
    let (_, list) = get(&client, &server, "/api/v1/notifications/", &access).await;
    assert_eq!(list["count"], 1, "{list}");
    let sms: Vec<Value> = outbox(&client, &server).await.into_iter().filter(|m| m["to"] == "+14155550103").collect();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["channel"], "sms");
}

/// A server whose SMS go to a Twilio stand-in and Telegram messages to a Telegram stand-in.
/// The variables that point SMS at the Twilio stand-in and Telegram at its own, with the admin.
fn providers_env<'a>(twilio: &'a StandIn, telegram: &'a StandIn) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("PREMISES_SMS_PROVIDER", "twilio"),
        ("PREMISES_TWILIO_BASE_URL", twilio.base.as_str()),
        ("PREMISES_TWILIO_ACCOUNT_SID", "AC123"),
        ("PREMISES_TWILIO_AUTH_TOKEN", "twilio-secret"),
        ("PREMISES_TWILIO_FROM_NUMBER", "+15005550006"),
        ("PREMISES_TELEGRAM_PROVIDER", "bot"),
        ("PREMISES_TELEGRAM_BOT_TOKEN", "123:bot-secret"),
        ("PREMISES_TELEGRAM_BASE_URL", telegram.base.as_str()),
    ];
    env.extend_from_slice(ADMIN_ENV);
    env
}

async fn with_providers(backend: &Backend, twilio: &StandIn, telegram: &StandIn) -> Server {
    Server::start_with_env(backend, &providers_env(twilio, telegram)).await
}

async fn set_telegram(client: &Client, server: &Server, access: &str, chat: &str) {
    let r = client
        .put(server.url("/api/v1/users/profile/"))
        .bearer_auth(access)
        .json(&json!({"telegram_chat_id": chat}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn deliveries(client: &Client, server: &Server, admin: &str, id: &str) -> Value {
    let (status, out) = get(client, server, &format!("/api/admin/notifications/{id}/"), admin).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let mut by_channel = serde_json::Map::new();
    for d in out["deliveries"].as_array().unwrap() {
        by_channel.insert(text(&d["channel"]), d.clone());
    }
    Value::Object(by_channel)
}

async fn a_provider_500_is_retried_and_delivered_once(backend: Backend) {
    let (twilio, telegram) = (StandIn::start(&[500, 201]).await, StandIn::start(&[200]).await);
    let server = with_providers(&backend, &twilio, &telegram).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let (owner, access) = user(&client, &server, "retry@example.com", "+14155550104").await;
    set_telegram(&client, &server, &access, "777").await;
    let alert = notification(Recipient::User(owner), vec![Channel::Sms, Channel::Telegram]);
    send(&server, &alert).await;
    send(&server, &alert).await;
    drained(&server).await;

    let sms = twilio.requests();
    assert_eq!(sms.len(), 2, "one 500, then one delivery: {sms:?}");
    let tg = telegram.requests();
    assert_eq!(tg.len(), 1, "{tg:?}");
    assert_eq!(tg[0].path, "/bot123:bot-secret/sendMessage");
    let body: Value = serde_json::from_str(&tg[0].body).unwrap();
    assert_eq!(body["chat_id"], "777");
    let d = deliveries(&client, &server, &admin, &alert.id).await;
    assert_eq!(d["sms"]["status"], "delivered", "{d}");
    assert_eq!(d["sms"]["attempts"], 1);
    assert_eq!(d["telegram"]["status"], "delivered");
    assert_eq!(d["inbox"]["status"], "delivered");
}

async fn a_provider_failing_every_try_is_retried_through_the_queue_and_delivered_once(backend: Backend) {
    // Three 500s use up the in-place tries; the message comes back after the queue's 60 s
    // visibility timeout and only the SMS, still owed, is sent again. The stack runs in this
    // process on a manual clock, which moves past the timeout instead of waiting it out; it
    // starts ahead of real time, so the message this test sends on the system clock is due.
    let (twilio, telegram) = (StandIn::start(&[500, 500, 500, 201]).await, StandIn::start(&[200]).await);
    let clock = Clock::manual(Clock::System.now_millis() + 600_000);
    let (_stack, server) = Server::in_process(&backend, &providers_env(&twilio, &telegram), clock.clone()).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let (owner, access) = user(&client, &server, "requeued@example.com", "+14155550105").await;
    set_telegram(&client, &server, &access, "778").await;
    let alert = notification(Recipient::User(owner), vec![Channel::Sms, Channel::Telegram]);
    send(&server, &alert).await;
    let path = format!("/api/admin/notifications/{}/", alert.id);
    let retrying = eventually(Duration::from_secs(20), || async {
        // 404 until the consumer has recorded a first delivery.
        let (status, _) = get(&client, &server, &path, &admin).await;
        if status != StatusCode::OK {
            return None;
        }
        let d = deliveries(&client, &server, &admin, &alert.id).await;
        (d["sms"]["status"] == "retry" && d["telegram"]["status"] == "delivered").then_some(d)
    })
    .await;
    assert!(retrying.is_some(), "the SMS waits for a retry through the queue, the Telegram message went out");
    assert_eq!(twilio.requests().len(), 3);
    // Not before the visibility timeout has passed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(twilio.requests().len(), 3, "the message stays invisible for its 60 s");
    clock.advance_millis(61_000);
    let delivered = eventually(Duration::from_secs(20), || async {
        let d = deliveries(&client, &server, &admin, &alert.id).await;
        (d["sms"]["status"] == "delivered").then_some(d)
    })
    .await;
    assert!(delivered.is_some(), "the SMS was not delivered after the queue retried it");
    drained(&server).await;
    assert_eq!(twilio.requests().len(), 4, "three 500s, then one delivery");
    assert_eq!(telegram.requests().len(), 1, "the delivered channel is not sent again");
}

async fn a_provider_400_is_recorded_failed_not_retried_and_other_channels_still_go_out(backend: Backend) {
    let (twilio, telegram) = (StandIn::start(&[400]).await, StandIn::start(&[200]).await);
    let server = with_providers(&backend, &twilio, &telegram).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let (owner, access) = user(&client, &server, "bad-number@example.com", "+14155550105").await;
    set_telegram(&client, &server, &access, "778").await;
    let alert = notification(Recipient::User(owner), vec![Channel::Sms, Channel::Telegram, Channel::Email]);
    send(&server, &alert).await;
    drained(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(twilio.requests().len(), 1, "a 400 is not retried");
    assert_eq!(telegram.requests().len(), 1);
    let d = deliveries(&client, &server, &admin, &alert.id).await;
    assert_eq!(d["sms"]["status"], "failed", "{d}");
    assert!(text(&d["sms"]["error"]).contains("400"), "{d}");
    assert!(!text(&d["sms"]["error"]).contains("twilio-secret"));
    assert_eq!(d["telegram"]["status"], "delivered");
    assert_eq!(d["email"]["status"], "delivered");
    assert_eq!(d["inbox"]["status"], "delivered");
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
    assert_eq!(out["count"], 1);
}

async fn ses_and_sns_deliver_through_moto(backend: Backend) {
    let Some(moto) = std::env::var("PREMISES_TEST_MOTO_ENDPOINT").ok().filter(|v| !v.is_empty()) else {
        let required = std::env::var("PREMISES_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1");
        assert!(!required, "PREMISES_TEST_MOTO_ENDPOINT unset but PREMISES_TEST_REQUIRE_ENGINES=1");
        eprintln!("skipping: PREMISES_TEST_MOTO_ENDPOINT is not set (make test sets it)");
        return;
    };
    let client = Client::new();
    let sender = format!("{}@premises.local", crate::helpers::unique("no-reply"));
    // SES sends only from a verified identity (moto verifies on creation).
    let r = client
        .post(format!("{moto}/v2/email/identities"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=x",
        )
        .json(&json!({"EmailIdentity": sender}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let mut env = vec![
        ("PREMISES_EMAIL_PROVIDER", "ses"),
        ("PREMISES_EMAIL_FROM", sender.as_str()),
        ("PREMISES_SMS_PROVIDER", "sns"),
        ("AWS_ENDPOINT_URL_SESV2", moto.as_str()),
        ("AWS_ENDPOINT_URL_SNS", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    env.extend_from_slice(ADMIN_ENV);
    let server = Server::start_with_env(&backend, &env).await;
    let admin = admin_access(&client, &server).await;
    let email = format!("{}@example.com", crate::helpers::unique("moto"));
    let (owner, _) = user(&client, &server, &email, "+14155550106").await;
    let alert = notification(Recipient::User(owner), vec![Channel::Email, Channel::Sms]);
    send(&server, &alert).await;
    drained(&server).await;
    let d = deliveries(&client, &server, &admin, &alert.id).await;
    assert_eq!(d["email"]["status"], "delivered", "{d}");
    assert_eq!(d["sms"]["status"], "delivered", "{d}");

    let state: Value = client.get(format!("{moto}/moto-api/data.json")).send().await.unwrap().json().await.unwrap();
    let sent = state["ses"]["Message"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = sent.iter().filter(|m| m["destinations"]["ToAddresses"][0] == email.as_str()).collect();
    assert_eq!(ours.len(), 1, "{sent:?}");
    assert_eq!(ours[0]["subject"], "Low battery");

    // An unverified sender is a permanent failure (SES answers 400), recorded and not retried.
    let bad = notification(Recipient::Email("x@example.com".into()), vec![Channel::Email]);
    drop(server);
    let mut env2 = env.clone();
    env2[1] = ("PREMISES_EMAIL_FROM", "unverified@premises.local");
    let server = Server::start_with_env(&backend, &env2).await;
    let admin = admin_access(&client, &server).await;
    send(&server, &bad).await;
    drained(&server).await;
    let d = deliveries(&client, &server, &admin, &bad.id).await;
    assert_eq!(d["email"]["status"], "failed", "{d}");
}

/// The raw bodies a reader of the queue sees (SQS console, DLQ tooling): the one OTP message, received
/// on a clock ahead of the server's (past its visibility timeout each time) until it is dead-lettered,
/// then from the DLQ. Returns every body read.
async fn raw_bodies_until_dead_lettered(server: &Server) -> Vec<String> {
    let clock = Clock::manual(Clock::System.now_millis() + 120_000);
    let q = EmbeddedQueue::open(&server.data_dir.join("queue.sqlite"), clock.clone(), &[QUEUE]).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..=QUEUE.max_receive_count {
        bodies.extend(q.receive(QUEUE.name, 10).await.unwrap().into_iter().map(|m| m.body));
        clock.advance_millis(61_000);
    }
    let dead = q.receive(&QUEUE.dlq_name(), 10).await.unwrap();
    assert_eq!(dead.len(), 1, "the message reached the DLQ");
    bodies.extend(dead.into_iter().map(|m| m.body));
    bodies
}

async fn an_otp_on_the_queue_and_in_its_dlq_is_sealed_while_the_sms_provider_gets_the_code(backend: Backend) {
    // Twilio fails every try, so the message stays on the queue and ends in the DLQ.
    let twilio = StandIn::start(&[500]).await;
    let env = [
        ("PREMISES_ENV", "test"),
        ("PREMISES_SMS_PROVIDER", "twilio"),
        ("PREMISES_TWILIO_BASE_URL", twilio.base.as_str()),
        ("PREMISES_TWILIO_ACCOUNT_SID", "AC123"),
        ("PREMISES_TWILIO_AUTH_TOKEN", "twilio-secret"),
        ("PREMISES_TWILIO_FROM_NUMBER", "+15005550006"),
    ];
    let server = Server::start_with_env(&backend, &env).await;
    let client = Client::new();
    let (status, requested) =
        post(&client, &server, "/api/v1/auth/request-otp/", json!({"phone": "+447700900124", "role": "worker"})).await;
    assert_eq!(status, StatusCode::OK, "{requested}");
    let tried = eventually(Duration::from_secs(20), || async { (twilio.requests().len() >= 3).then_some(()) }).await;
    assert!(tried.is_some(), "the consumer tried Twilio three times");
    // The provider call carries the code in clear: that is where it must arrive.
    let sent = &twilio.requests()[0];
    let form: Vec<(String, String)> = form_urlencoded::parse(sent.body.as_bytes()).into_owned().collect();
    let body = form.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.clone()).unwrap_or_default();
    let code: String = body.chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(code.len(), 6, "{body}");
    assert!(body.starts_with(&format!("Your Premises code is {code}.")), "{body}");

    let bodies = raw_bodies_until_dead_lettered(&server).await;
    assert!(bodies.len() >= 2, "{bodies:?}");
    for raw in &bodies {
        assert!(!raw.contains(&code), "the code is readable on the queue: {raw}");
        let message: Value = serde_json::from_str(raw).unwrap();
        assert!(text(&message["sealed_secret"]).starts_with("v1."), "{raw}");
        assert!(text(&message["body"]).contains("{secret}"), "{raw}");
    }
    // The code Twilio got is the code: it logs in.
    let (status, session) =
        post(&client, &server, "/api/v1/auth/verify-otp/", json!({"request_id": requested["request_id"], "otp": code}))
            .await;
    assert_eq!(status, StatusCode::OK, "{session}");
}

async fn a_sealed_secret_moved_to_another_message_does_not_open_and_nothing_is_sent(backend: Backend) {
    let (twilio, telegram) = (StandIn::start(&[201]).await, StandIn::start(&[200]).await);
    let server = with_providers(&backend, &twilio, &telegram).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    // Someone who can write to the queue copies a code sealed (with the server's key) for one message
    // into a message of their own, to have it sent to their phone.
    let keys = shared::platform::config::Config::from_vars(Vec::new()).unwrap().jwt_keys;
    let sealed = shared::notifications::sealed::seal(&keys, &new_id(), "424242").unwrap();
    let mut forged = notification(Recipient::Phone("+447700900126".into()), vec![Channel::Sms]);
    forged.body = "Your code is {secret}.".into();
    forged.sealed_secret = Some(sealed);
    send(&server, &forged).await;
    drained(&server).await;
    assert!(twilio.requests().is_empty(), "nothing was sent: {:?}", twilio.requests());
    let d = deliveries(&client, &server, &admin, &forged.id).await;
    assert_eq!(d["sms"]["status"], "failed", "{d}");
    assert!(text(&d["sms"]["error"]).contains("does not open"), "{d}");
    // The same secret sealed for this very message opens and goes out.
    let mut genuine = notification(Recipient::Phone("+447700900126".into()), vec![Channel::Sms]);
    genuine.body = "Your code is {secret}.".into();
    genuine.sealed_secret = Some(shared::notifications::sealed::seal(&keys, &genuine.id, "424242").unwrap());
    send(&server, &genuine).await;
    drained(&server).await;
    let sms = twilio.requests();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].body.contains("Your+code+is+424242."), "{}", sms[0].body);
}

async fn a_long_inbox_is_paged_and_its_unread_items_counted_in_the_store(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let (owner, access) = user(&client, &server, "paged@example.com", "+14155550109").await;
    let (_, other) = user(&client, &server, "unpaged@example.com", "+14155550110").await;
    let mut sent = Vec::new();
    for _ in 0..25 {
        let n = notification(Recipient::User(owner.clone()), vec![Channel::Inbox]);
        send(&server, &n).await;
        sent.push(n.id);
    }
    drained(&server).await;
    let base = server.url("");
    let inbox = crate::helpers::walk_pages(&client, &base, &access, "/api/v1/notifications/", 10, 25).await;
    let mut ids: Vec<String> = inbox.iter().map(|i| text(&i["id"])).collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent, "every notification once");
    let created: Vec<i64> = inbox.iter().map(|i| i["created_at"].as_i64().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    for item in &inbox[..5] {
        let path = format!("/api/v1/notifications/{}/read/", text(&item["id"]));
        assert_eq!(client.post(server.url(&path)).bearer_auth(&access).send().await.unwrap().status(), StatusCode::OK);
    }
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &access).await;
    assert_eq!(out["count"], 20);
    let unread = crate::helpers::walk_pages(&client, &base, &access, "/api/v1/notifications/?unread=true", 7, 20).await;
    assert_eq!(unread, inbox[5..].to_vec());
    assert!(crate::helpers::walk_pages(&client, &base, &other, "/api/v1/notifications/", 10, 0).await.is_empty());
    let (_, out) = get(&client, &server, "/api/v1/notifications/unread-count/", &other).await;
    assert_eq!(out["count"], 0);
}
