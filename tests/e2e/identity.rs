//! Identity through the `premises` binary: SmartLock's register, login,
//! refresh rotation, logout, profile and password change (seed 003), and
//! Circle Time's login, refresh and me in its envelope (seed 001).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Server, data_dir, unique};

crate::on_both_stores!(
    a_user_registers_logs_in_reads_the_profile_and_rotates_the_refresh_token,
    reusing_a_rotated_refresh_token_revokes_its_whole_family,
    two_concurrent_refreshes_with_one_token_let_exactly_one_through,
    logout_makes_the_refresh_token_unusable,
    a_password_change_revokes_earlier_refresh_tokens_and_the_old_password,
    password_rule_violations_name_the_field,
    a_duplicate_email_in_any_case_is_400_on_email,
    a_wrong_password_or_an_unknown_email_is_401,
    ten_concurrent_registrations_with_one_email_make_exactly_one_user,
    bearer_routes_without_a_valid_token_are_401_with_www_authenticate,
    the_profile_update_changes_names_and_keeps_phone_numbers_unique,
    circle_time_login_refresh_and_me_answer_in_its_envelope,
    a_sixth_failed_login_for_one_email_within_a_minute_is_429_with_retry_after,
    more_than_twenty_failed_logins_from_one_address_are_429_for_any_email,
    a_member_calling_an_admin_endpoint_is_403,
    the_admin_from_the_environment_is_created_once_across_restarts,
    an_admin_lists_and_searches_users_page_by_page,
    a_user_an_admin_deactivates_can_neither_log_in_nor_refresh,
);

const ADMIN_EMAIL: &str = "root@example.com";
const ADMIN_PASSWORD: &str = "AdminPass123!";
pub(crate) const ADMIN_ENV: &[(&str, &str)] =
    &[("PREMISES_ADMIN_EMAIL", ADMIN_EMAIL), ("PREMISES_ADMIN_PASSWORD", ADMIN_PASSWORD)];

/// The admin's access token.
pub(crate) async fn admin_access(client: &Client, server: &Server) -> String {
    let (status, body) =
        post(client, server, "/api/v1/auth/login/", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    text(&body["tokens"]["access"])
}

pub(crate) const PASSWORD: &str = "SecurePass123!";

pub(crate) async fn post(client: &Client, server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client.post(server.url(path)).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn get(client: &Client, server: &Server, path: &str, access: &str) -> (StatusCode, Value) {
    let r = client.get(server.url(path)).bearer_auth(access).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn registration(email: &str) -> Value {
    json!({
        "email": email,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "first_name": "John",
        "last_name": "Doe",
        "phone_number": "+1234567890",
    })
}

/// Registers `email` and returns the response body.
pub(crate) async fn register(client: &Client, server: &Server, email: &str) -> Value {
    let (status, body) = post(client, server, "/api/v1/auth/register/", registration(email)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub(crate) async fn refresh(client: &Client, server: &Server, token: &str) -> (StatusCode, Value) {
    post(client, server, "/api/v1/auth/token/refresh/", json!({"refresh": token})).await
}

pub(crate) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

async fn a_user_registers_logs_in_reads_the_profile_and_rotates_the_refresh_token(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();

    let body = register(&client, &server, "User@Example.com").await;
    assert_eq!(body["user"]["email"], "user@example.com");
    assert_eq!(body["user"]["full_name"], "John Doe");
    assert_eq!(body["user"]["is_verified"], false);
    assert_eq!(body["user"]["role"], "member");
    assert!(body["user"].get("password_hash").is_none());
    assert!(body["tokens"]["access"].is_string() && body["tokens"]["refresh"].is_string());

    let (status, login) =
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "user@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["user"]["id"], body["user"]["id"]);
    assert!(login["user"]["last_login"].is_string());

    let (status, profile) = get(&client, &server, "/api/v1/users/profile/", &text(&login["tokens"]["access"])).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["email"], "user@example.com");
    assert_eq!(profile["phone_number"], "+1234567890");
    assert!(profile["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let first = text(&login["tokens"]["refresh"]);
    let (status, rotated) = refresh(&client, &server, &first).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(text(&rotated["refresh"]), first);
    let (status, _) = get(&client, &server, "/api/v1/users/profile/", &text(&rotated["access"])).await;
    assert_eq!(status, StatusCode::OK);

    let (status, again) = refresh(&client, &server, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{again}");
    assert_eq!(again["code"], "token_not_valid");
}

async fn reusing_a_rotated_refresh_token_revokes_its_whole_family(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "reuse@example.com").await;
    let first = text(&body["tokens"]["refresh"]);
    let (_, second) = refresh(&client, &server, &first).await;
    let (status, third) = refresh(&client, &server, &text(&second["refresh"])).await;
    assert_eq!(status, StatusCode::OK);
    let newest = text(&third["refresh"]);

    // The first token again: reuse, so the family is revoked and even the newest token fails.
    assert_eq!(refresh(&client, &server, &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&client, &server, &newest).await.0, StatusCode::UNAUTHORIZED);

    // Another session (a new login) is a different family and still works.
    let (_, login) =
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "reuse@example.com", "password": PASSWORD}))
            .await;
    assert_eq!(refresh(&client, &server, &text(&login["tokens"]["refresh"])).await.0, StatusCode::OK);
}

async fn two_concurrent_refreshes_with_one_token_let_exactly_one_through(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "race@example.com").await;
    let token = text(&body["tokens"]["refresh"]);
    let (a, b) = tokio::join!(refresh(&client, &server, &token), refresh(&client, &server, &token));
    let ok = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{a:?} {b:?}");
}

async fn logout_makes_the_refresh_token_unusable(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "bye@example.com").await;
    let token = text(&body["tokens"]["refresh"]);
    let (status, out) = post(&client, &server, "/api/v1/auth/logout/", json!({"refresh": token})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out, json!({"message": "Successfully logged out"}));
    assert_eq!(refresh(&client, &server, &token).await.0, StatusCode::UNAUTHORIZED);

    let (status, out) = post(&client, &server, "/api/v1/auth/logout/", json!({"refresh": "not-a-token"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");
}

async fn a_password_change_revokes_earlier_refresh_tokens_and_the_old_password(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "change@example.com").await;
    let access = text(&body["tokens"]["access"]);
    let old_refresh = text(&body["tokens"]["refresh"]);
    let change = |old: &str, new: &str, confirm: &str| {
        client
            .post(server.url("/api/v1/users/change-password/"))
            .bearer_auth(&access)
            .json(&json!({"old_password": old, "new_password": new, "new_password_confirm": confirm}))
            .send()
    };

    let r = change("WrongPass1!", "NewPass456!", "NewPass456!").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "old_password");
    let r = change(PASSWORD, "NewPass456!", "NewPass457!").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "new_password_confirm");

    let r = change(PASSWORD, "NewPass456!", "NewPass456!").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"message": "Password changed successfully"}));

    assert_eq!(refresh(&client, &server, &old_refresh).await.0, StatusCode::UNAUTHORIZED);
    let login = |password: &'static str| {
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "change@example.com", "password": password}))
    };
    assert_eq!(login(PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    let (status, fresh) = login("NewPass456!").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refresh(&client, &server, &text(&fresh["tokens"]["refresh"])).await.0, StatusCode::OK);
}

async fn password_rule_violations_name_the_field(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let cases = [
        (json!({"password": "Sh0rt!", "password_confirm": "Sh0rt!"}), "password"),
        (json!({"password": "1234567890", "password_confirm": "1234567890"}), "password"),
        (json!({"password_confirm": "Different123!"}), "password_confirm"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"phone_number": "12345"}), "phone_number"),
    ];
    for (change, field) in cases {
        let mut body = registration("rules@example.com");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, out) = post(&client, &server, "/api/v1/auth/register/", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change} {out}");
        assert_eq!(out["field"], field, "{change} {out}");
    }
    let (status, out) = post(&client, &server, "/api/v1/auth/register/", json!({"email": "x@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(out["field"], "password");
    assert_eq!(out["code"], "required");
}

async fn a_duplicate_email_in_any_case_is_400_on_email(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    register(&client, &server, "dup@example.com").await;
    let mut body = registration("DUP@example.com");
    body["phone_number"] = json!("+1987654321");
    let (status, out) = post(&client, &server, "/api/v1/auth/register/", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["field"], "email");

    let (status, out) = post(&client, &server, "/api/v1/auth/register/", registration("other@example.com")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!(out["field"], "phone_number");
}

async fn a_wrong_password_or_an_unknown_email_is_401(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    register(&client, &server, "who@example.com").await;
    for (email, password) in [("who@example.com", "WrongPass1!"), ("nobody@example.com", PASSWORD)] {
        let (status, out) =
            post(&client, &server, "/api/v1/auth/login/", json!({"email": email, "password": password})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email} {out}");
        assert_eq!(out["code"], "authentication_failed");
    }
}

async fn ten_concurrent_registrations_with_one_email_make_exactly_one_user(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let attempts = (0..10).map(|i| {
        let mut body = registration("race@example.com");
        body["phone_number"] = json!(format!("+1555000000{i}"));
        post(&client, &server, "/api/v1/auth/register/", body)
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["field"], "email", "{body}");
    }
}

async fn bearer_routes_without_a_valid_token_are_401_with_www_authenticate(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "bearer@example.com").await;
    let refresh_token = text(&body["tokens"]["refresh"]);
    for auth in [None, Some("garbage"), Some(refresh_token.as_str())] {
        let mut req = client.get(server.url("/api/v1/users/profile/"));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{auth:?}");
    }
}

async fn the_profile_update_changes_names_and_keeps_phone_numbers_unique(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "jane@example.com").await;
    let access = text(&body["tokens"]["access"]);
    let mut other = registration("other@example.com");
    other["phone_number"] = json!("+1987654321");
    post(&client, &server, "/api/v1/auth/register/", other).await;

    let put = |body: Value| client.put(server.url("/api/v1/users/profile/")).bearer_auth(&access).json(&body).send();
    let r = put(json!({"first_name": "Jane", "phone_number": "+1987654321"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "phone_number");

    let r = put(json!({"first_name": "Jane", "phone_number": "+1222333444"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["full_name"], "Jane Doe");
    assert_eq!(updated["phone_number"], "+1222333444");
    let (_, profile) = get(&client, &server, "/api/v1/users/profile/", &access).await;
    assert_eq!(profile["full_name"], "Jane Doe");
    assert_eq!(profile["phone_number"], "+1222333444");

    // The old number is free again.
    let mut third = registration("third@example.com");
    third["phone_number"] = json!("+1234567890");
    let (status, out) = post(&client, &server, "/api/v1/auth/register/", third).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
}

async fn circle_time_login_refresh_and_me_answer_in_its_envelope(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    register(&client, &server, "circle@example.com").await;

    let (status, login) =
        post(&client, &server, "/api/auth/login", json!({"email": "circle@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["success"], true);
    assert_eq!(login["data"]["token"], login["data"]["access"]);
    assert_eq!(login["data"]["user"]["email"], "circle@example.com");

    let (status, me) = get(&client, &server, "/api/auth/me", &text(&login["data"]["access"])).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["success"], true);
    assert_eq!(me["data"]["email"], "circle@example.com");

    // The pipeline's own 401 (no token) comes in the envelope too.
    let r = client.get(server.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let failed: Value = r.json().await.unwrap();
    assert_eq!(failed["success"], false, "{failed}");
    assert!(failed["message"].is_string());
    let (status, failed) = get(&client, &server, "/api/auth/me", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["success"], false, "{failed}");

    let old = text(&login["data"]["refresh"]);
    let (status, rotated) = post(&client, &server, "/api/auth/refresh", json!({"refresh": old})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["success"], true);
    assert!(rotated["data"]["access"].is_string() && rotated["data"]["refresh"].is_string());

    let (status, failed) = post(&client, &server, "/api/auth/refresh", json!({"refresh": old})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["success"], false);
    assert!(failed["message"].is_string());

    let (status, failed) =
        post(&client, &server, "/api/auth/login", json!({"email": "circle@example.com", "password": "Nope12345"}))
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["success"], false);
    assert!(failed["message"].is_string());

    let (status, failed) = post(&client, &server, "/api/auth/login", json!({"email": "circle@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(failed["success"], false);
    assert_eq!(failed["field"], "password");
}

/// Waits out the last seconds of a minute, so that a test's failed logins fall in one counter window.
pub(crate) async fn at_the_start_of_a_minute() {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % 60;
    if secs > 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - secs)).await;
    }
}

async fn a_sixth_failed_login_for_one_email_within_a_minute_is_429_with_retry_after(backend: Backend) {
    let server = Server::start(&backend).await;
    at_the_start_of_a_minute().await;
    let client = Client::new();
    register(&client, &server, "brute@example.com").await;
    let attempt = |password: &'static str| {
        client
            .post(server.url("/api/v1/auth/login/"))
            .json(&json!({"email": "Brute@Example.com", "password": password}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("WrongPass1!").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // Refused before the password is checked, so the right password is refused too.
    for password in ["WrongPass1!", PASSWORD] {
        let r = attempt(password).await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let secs: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "throttled");
    }
    // Circle Time's login shares the counters and answers in its envelope.
    let r = client
        .post(server.url("/api/auth/login"))
        .json(&json!({"email": "brute@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.unwrap()["success"], false);
}

async fn more_than_twenty_failed_logins_from_one_address_are_429_for_any_email(backend: Backend) {
    let server = Server::start(&backend).await;
    at_the_start_of_a_minute().await;
    let client = Client::new();
    register(&client, &server, "victim@example.com").await;
    for i in 0..20 {
        let body = json!({"email": format!("guess{i}@example.com"), "password": "WrongPass1!"});
        assert_eq!(post(&client, &server, "/api/v1/auth/login/", body).await.0, StatusCode::UNAUTHORIZED);
    }
    let body = json!({"email": "victim@example.com", "password": PASSWORD});
    let (status, out) = post(&client, &server, "/api/v1/auth/login/", body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{out}");
}

async fn a_member_calling_an_admin_endpoint_is_403(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = register(&client, &server, "member@example.com").await;
    let access = text(&body["tokens"]["access"]);
    let (status, out) = get(&client, &server, "/api/admin/users/", &access).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{out}");
    let r = client
        .patch(server.url(&format!("/api/admin/users/{}/", text(&body["user"]["id"]))))
        .bearer_auth(&access)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn the_admin_from_the_environment_is_created_once_across_restarts(backend: Backend) {
    let (dir, table) = (data_dir("admin"), unique("e2e"));
    let client = Client::new();
    let server = Server::start_in_with_env(&backend, dir.clone(), table.clone(), ADMIN_ENV).await;
    let first = admin_access(&client, &server).await;
    server.terminate();
    let server = Server::start_in_with_env(&backend, dir, table, ADMIN_ENV).await;
    let access = admin_access(&client, &server).await;
    assert_ne!(first, access);
    let (status, list) = get(&client, &server, "/api/admin/users/?role=admin", &access).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["email"], ADMIN_EMAIL);
}

async fn an_admin_lists_and_searches_users_page_by_page(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    for i in 0..21 {
        let mut body = registration(&format!("person{i:02}@example.com"));
        body["phone_number"] = json!(format!("+1555111{i:04}"));
        let (status, out) = post(&client, &server, "/api/v1/auth/register/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
    }
    let access = admin_access(&client, &server).await;

    let (status, page1) = get(&client, &server, "/api/admin/users/", &access).await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    assert_eq!(page1["count"], 22);
    assert_eq!(page1["results"].as_array().unwrap().len(), 20);
    assert_eq!(page1["previous"], Value::Null);
    let next = text(&page1["next"]);
    let (_, page2) = get(&client, &server, &next, &access).await;
    assert_eq!(page2["results"].as_array().unwrap().len(), 2);
    assert_eq!(page2["next"], Value::Null);
    assert!(page2["previous"].is_string());

    // Paged in the store, oldest first, the role filtered there.
    let base = server.base.clone();
    let everyone = crate::helpers::walk_pages(&client, &base, &access, "/api/admin/users/", 6, 22).await;
    assert_eq!(everyone[0]["email"], ADMIN_EMAIL);
    let members = crate::helpers::walk_pages(&client, &base, &access, "/api/admin/users/?role=member", 5, 21).await;
    assert_eq!(members, everyone[1..].to_vec());
    let admins = crate::helpers::walk_pages(&client, &base, &access, "/api/admin/users/?role=admin", 1, 1).await;
    assert_eq!(admins, everyone[..1].to_vec());

    let (_, found) = get(&client, &server, "/api/admin/users/?search=PERSON07&role=member", &access).await;
    assert_eq!(found["count"], 1, "{found}");
    assert_eq!(found["results"][0]["email"], "person07@example.com");
    let (_, none) = get(&client, &server, "/api/admin/users/?search=person07&role=admin", &access).await;
    assert_eq!(none["count"], 0);
    let (status, bad) = get(&client, &server, "/api/admin/users/?role=wizard", &access).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["field"], "role");
}

async fn a_user_an_admin_deactivates_can_neither_log_in_nor_refresh(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let body = register(&client, &server, "leaver@example.com").await;
    let id = text(&body["user"]["id"]);
    let refresh_token = text(&body["tokens"]["refresh"]);
    let access = admin_access(&client, &server).await;
    let patch = |id: String, body: Value| {
        client.patch(server.url(&format!("/api/admin/users/{id}/"))).bearer_auth(&access).json(&body).send()
    };

    let r = patch(id.clone(), json!({"role": "staff"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "staff");
    let r = patch(id.clone(), json!({"is_active": false})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!((updated["is_active"].clone(), updated["role"].clone()), (json!(false), json!("staff")));

    assert_eq!(refresh(&client, &server, &refresh_token).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) =
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "leaver@example.com", "password": PASSWORD}))
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let r = patch("no-such-user".into(), json!({"is_active": false})).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = patch(id, json!({"role": "wizard"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "role");
}
