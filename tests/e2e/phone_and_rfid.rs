//! The other front doors through the `premises` binary: HunarMitra's phone OTP
//! (seed 004) and Arthexis's RFID tags (seed 002).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Server};
use crate::identity::{ADMIN_ENV, PASSWORD, admin_access, get, post, text};

crate::on_both_stores!(
    a_phone_logs_in_with_an_otp_and_becomes_a_worker,
    an_otp_of_a_phone_with_an_account_logs_that_account_in,
    an_otp_is_dead_after_five_wrong_codes,
    a_second_otp_request_within_a_minute_is_429_with_retry_after,
    otp_requests_and_codes_are_checked,
    concurrent_verifications_of_one_code_log_in_exactly_once,
    an_rfid_tag_logs_its_user_in_until_it_is_blacklisted,
    rfid_administration_is_checked_and_for_admins_only,
);

async fn request_otp(client: &Client, server: &Server, phone: &str, role: &str) -> Value {
    let (status, body) = post(client, server, "/api/v1/auth/request-otp/", json!({"phone": phone, "role": role})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn verify_otp(client: &Client, server: &Server, request_id: &Value, otp: Value) -> (StatusCode, Value) {
    post(client, server, "/api/v1/auth/verify-otp/", json!({"request_id": request_id, "otp": otp})).await
}

/// A code of the same length that is not `code`.
fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '9' { '0' } else { char::from(c as u8 + 1) }).collect()
}

async fn a_phone_logs_in_with_an_otp_and_becomes_a_worker(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let requested = request_otp(&client, &server, "+919876543210", "worker").await;
    assert_eq!(requested["ttl"], 300);
    assert_eq!(requested["message"], "OTP sent to +919876543210");
    let code = text(&requested["dev_otp"]);
    assert_eq!(code.len(), 6);

    let (status, session) = verify_otp(&client, &server, &requested["request_id"], json!(code)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["is_new_user"], true);
    assert_eq!(session["user"]["phone"], "+919876543210");
    assert_eq!(session["user"]["role"], "worker");
    assert_eq!(session["user"]["is_verified"], true);

    let (status, profile) = get(&client, &server, "/api/v1/users/profile/", &text(&session["access"])).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["id"], session["user"]["id"]);

    // The code is used up.
    let (status, again) = verify_otp(&client, &server, &requested["request_id"], json!(code)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(again["code"], "otp_used");

    // Logout (shared with SmartLock) blacklists the refresh token.
    let refresh = text(&session["refresh"]);
    let (status, out) = post(&client, &server, "/api/v1/auth/logout/", json!({"refresh": refresh})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (status, _) = post(&client, &server, "/api/v1/auth/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn an_otp_of_a_phone_with_an_account_logs_that_account_in(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let registration = json!({
        "email": "phone-owner@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        "phone_number": "+14155550123",
    });
    let (status, registered) = post(&client, &server, "/api/v1/auth/register/", registration).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");

    // The role asked for does not change an existing account's role. The owner proves the number
    // signed in (a registered number is contact data until proven by its own account).
    let requested = request_otp(&client, &server, "+1 415 555 0123", "contractor").await;
    let r = client
        .post(server.url("/api/v1/auth/verify-otp/"))
        .bearer_auth(text(&registered["tokens"]["access"]))
        .json(&json!({"request_id": requested["request_id"], "otp": requested["dev_otp"]}))
        .send()
        .await
        .unwrap();
    let (status, session): (StatusCode, Value) = (r.status(), r.json().await.unwrap());
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["is_new_user"], false);
    assert_eq!(session["user"]["id"], registered["user"]["id"]);
    assert_eq!(session["user"]["role"], "member");
    assert_eq!(session["user"]["email"], "phone-owner@example.com");
}

async fn an_otp_is_dead_after_five_wrong_codes(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let requested = request_otp(&client, &server, "+919800000001", "worker").await;
    let code = text(&requested["dev_otp"]);
    for attempt in 1..=5 {
        let (status, out) = verify_otp(&client, &server, &requested["request_id"], json!(wrong(&code))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["field"], "otp");
        assert_eq!(out["code"], if attempt < 5 { "otp_invalid" } else { "otp_locked" }, "attempt {attempt}");
    }
    let (status, out) = verify_otp(&client, &server, &requested["request_id"], json!(code)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["code"], "otp_locked");
}

async fn a_second_otp_request_within_a_minute_is_429_with_retry_after(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    request_otp(&client, &server, "+919800000002", "worker").await;
    let r = client
        .post(server.url("/api/v1/auth/request-otp/"))
        .json(&json!({"phone": "+919800000002", "role": "worker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "otp_rate_limited");
    // Another phone is not affected.
    request_otp(&client, &server, "+919800000003", "worker").await;
}

async fn otp_requests_and_codes_are_checked(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let cases = [
        (json!({"phone": "+919800000004", "role": "admin"}), "role"),
        (json!({"phone": "98765", "role": "worker"}), "phone"),
        (json!({"role": "worker"}), "phone"),
    ];
    for (body, field) in cases {
        let (status, out) = post(&client, &server, "/api/v1/auth/request-otp/", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {out}");
        assert_eq!(out["field"], field, "{body} → {out}");
    }
    let (status, out) = verify_otp(&client, &server, &json!("no-such-request"), json!("123456")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["code"], "otp_expired");
    let (status, out) = verify_otp(&client, &server, &json!("no-such-request"), json!(["1"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["field"], "otp");
}

async fn concurrent_verifications_of_one_code_log_in_exactly_once(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let requested = request_otp(&client, &server, "+919800000005", "worker").await;
    let attempts = (0..8).map(|_| verify_otp(&client, &server, &requested["request_id"], requested["dev_otp"].clone()));
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST), "{results:?}");
}

/// Registers a user without a phone number; returns its id.
async fn user(client: &Client, server: &Server, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD});
    let (status, out) = post(client, server, "/api/v1/auth/register/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    text(&out["user"]["id"])
}

async fn admin_post(client: &Client, server: &Server, access: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client.post(server.url(path)).bearer_auth(access).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn rfid_login(client: &Client, server: &Server, tag: &str) -> (StatusCode, Value) {
    post(client, server, "/accounts/rfid-login/", json!({"rfid": tag})).await
}

async fn an_rfid_tag_logs_its_user_in_until_it_is_blacklisted(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let owner = user(&client, &server, "tag-owner@example.com").await;

    let (status, tag) =
        admin_post(&client, &server, &admin, "/api/admin/rfid/", json!({"rfid": "a1b2c3d4", "user_id": owner})).await;
    assert_eq!(status, StatusCode::CREATED, "{tag}");
    assert_eq!(tag["rfid"], "A1B2C3D4");
    assert_eq!(tag["blacklisted"], false);

    for spelling in ["a1b2c3d4", "A1B2C3D4"] {
        let (status, who) = rfid_login(&client, &server, spelling).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        // Who the tag logs in, and no more (issue 13 item 8: no email, phone or role).
        assert_eq!(who["authenticated"], true);
        assert_eq!(who.get("email"), None);
        assert_eq!(who["id"], owner.as_str());
    }

    let (status, out) = admin_post(&client, &server, &admin, "/api/admin/rfid/a1b2c3d4/blacklist/", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["blacklisted"], true);
    let (status, out) = rfid_login(&client, &server, "a1b2c3d4").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");

    let (status, _) = admin_post(&client, &server, &admin, "/api/admin/rfid/A1B2C3D4/unblacklist/", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rfid_login(&client, &server, "a1b2c3d4").await.0, StatusCode::OK);

    let r = client.delete(server.url("/api/admin/rfid/a1b2c3d4/")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(rfid_login(&client, &server, "a1b2c3d4").await.0, StatusCode::UNAUTHORIZED);
    let r = client.delete(server.url("/api/admin/rfid/a1b2c3d4/")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Unknown and malformed tags.
    assert_eq!(rfid_login(&client, &server, "00000000").await.0, StatusCode::UNAUTHORIZED);
    for bad in ["a1b2c3d", "a1b2c3d4e", "zzzzzzzz"] {
        let (status, out) = rfid_login(&client, &server, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {out}");
        assert_eq!(out["field"], "rfid");
    }

    // A tag blacklisted before anyone owns it stays refused once assigned.
    let (status, _) = admin_post(&client, &server, &admin, "/api/admin/rfid/deadbeef/blacklist/", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        admin_post(&client, &server, &admin, "/api/admin/rfid/", json!({"rfid": "DEADBEEF", "user_id": owner})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rfid_login(&client, &server, "deadbeef").await.0, StatusCode::UNAUTHORIZED);
    // Unassigning a blacklisted tag keeps it blacklisted: assigned again, it is still refused.
    let r = client.delete(server.url("/api/admin/rfid/deadbeef/")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = client.delete(server.url("/api/admin/rfid/deadbeef/")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) =
        admin_post(&client, &server, &admin, "/api/admin/rfid/", json!({"rfid": "deadbeef", "user_id": owner})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rfid_login(&client, &server, "deadbeef").await.0, StatusCode::UNAUTHORIZED);
}

async fn rfid_administration_is_checked_and_for_admins_only(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let (ann, bob) = (user(&client, &server, "ann@example.com").await, user(&client, &server, "bob@example.com").await);

    let assign = |tag: &str, user: &str| json!({"rfid": tag, "user_id": user});
    assert_eq!(
        admin_post(&client, &server, &admin, "/api/admin/rfid/", assign("0a0b0c0d", &ann)).await.0,
        StatusCode::CREATED
    );
    // Again for the same user: still fine.
    assert_eq!(
        admin_post(&client, &server, &admin, "/api/admin/rfid/", assign("0A0B0C0D", &ann)).await.0,
        StatusCode::CREATED
    );
    let (status, out) = admin_post(&client, &server, &admin, "/api/admin/rfid/", assign("0a0b0c0d", &bob)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{out}");
    assert_eq!(out["code"], "rfid_taken");
    let (status, out) = admin_post(&client, &server, &admin, "/api/admin/rfid/", assign("11223344", "nobody")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["field"], "user_id");
    assert_eq!(rfid_login(&client, &server, "11223344").await.0, StatusCode::UNAUTHORIZED);
    let (status, out) = admin_post(&client, &server, &admin, "/api/admin/rfid/", assign("xyz", &ann)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["field"], "rfid");
    let (status, _) = admin_post(&client, &server, &admin, "/api/admin/rfid/99999999/unblacklist/", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bob logs in and tries the admin endpoints.
    let (_, login) =
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "bob@example.com", "password": PASSWORD})).await;
    let member = text(&login["tokens"]["access"]);
    let (status, _) = admin_post(&client, &server, &member, "/api/admin/rfid/", assign("55667788", &bob)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = admin_post(&client, &server, &member, "/api/admin/rfid/0a0b0c0d/blacklist/", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = client.delete(server.url("/api/admin/rfid/0a0b0c0d/")).bearer_auth(&member).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(rfid_login(&client, &server, "0a0b0c0d").await.1["id"], ann.as_str());
}
