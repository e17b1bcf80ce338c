//! Stale privileges (issue "Security", item 1): a token outlives a demotion or a deactivation
//! by up to its lifetime, so admin routes and routes with a physical or money effect check the
//! stored user, and nobody changes their own role or active flag.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Server, call};
use crate::identity::{ADMIN_ENV, PASSWORD, admin_access};

crate::on_both_stores!(
    a_demoted_admins_old_token_no_longer_passes_admin_routes,
    a_deactivated_admins_old_token_is_401_on_admin_routes,
    a_demoted_admin_cannot_patch_themselves_back_to_admin,
    an_admin_cannot_change_their_own_role_or_active_flag,
    a_deactivated_users_old_token_cannot_unlock_a_lock_or_change_the_password,
    an_access_token_from_before_a_password_change_is_refused_on_effect_routes,
);

/// Registers `email`, makes them an admin (by the environment's admin) and logs them in: their
/// access token, their id and the root admin's token.
async fn second_admin(client: &Client, server: &Server, email: &str) -> (String, String, String) {
    let root = admin_access(client, server).await;
    let body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD,
        "first_name": "Ada", "last_name": "Admin"});
    let (status, registered) = call(client, &server.base, "POST", "/api/v1/auth/register/", None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let id = registered["user"]["id"].as_str().unwrap().to_string();
    let path = format!("/api/admin/users/{id}/");
    let (status, _) = call(client, &server.base, "PATCH", &path, Some(&root), Some(json!({"role": "admin"}))).await;
    assert_eq!(status, StatusCode::OK);
    let login = json!({"email": email, "password": PASSWORD});
    let (status, body) = call(client, &server.base, "POST", "/api/v1/auth/login/", None, Some(login)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    (body["tokens"]["access"].as_str().unwrap().to_string(), id, root)
}

async fn a_demoted_admins_old_token_no_longer_passes_admin_routes(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let (token, id, root) = second_admin(&client, &server, "demoted@example.com").await;
    let (status, _) = call(&client, &server.base, "GET", "/api/admin/users/", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "an admin lists users");

    let path = format!("/api/admin/users/{id}/");
    let (status, _) = call(&client, &server.base, "PATCH", &path, Some(&root), Some(json!({"role": "member"}))).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/api/admin/users/", "/api/admin/rooms/", "/api/admin/bank/payments/"] {
        let (status, body) = call(&client, &server.base, "GET", path, Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "permission_denied");
    }
}

async fn a_deactivated_admins_old_token_is_401_on_admin_routes(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let (token, id, root) = second_admin(&client, &server, "leaving@example.com").await;
    let path = format!("/api/admin/users/{id}/");
    let (status, _) = call(&client, &server.base, "PATCH", &path, Some(&root), Some(json!({"is_active": false}))).await;
    assert_eq!(status, StatusCode::OK);
    let credit = json!({"amount": 100000, "note": "for me"});
    let (status, body) =
        call(&client, &server.base, "POST", "/api/admin/rooms/101/credit/", Some(&token), Some(credit)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "user_inactive");
    let (status, _) = call(&client, &server.base, "GET", "/api/admin/users/", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_demoted_admin_cannot_patch_themselves_back_to_admin(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let (token, id, root) = second_admin(&client, &server, "climber@example.com").await;
    let path = format!("/api/admin/users/{id}/");
    let demote = json!({"role": "member", "is_active": false});
    let (status, _) = call(&client, &server.base, "PATCH", &path, Some(&root), Some(demote)).await;
    assert_eq!(status, StatusCode::OK);

    let back = json!({"role": "admin", "is_active": true});
    let (status, body) = call(&client, &server.base, "PATCH", &path, Some(&token), Some(back)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (_, stored) = call(&client, &server.base, "GET", "/api/admin/users/?search=climber", Some(&root), None).await;
    let user = &stored["results"][0];
    assert_eq!((user["role"].clone(), user["is_active"].clone()), (json!("member"), json!(false)), "{stored}");
}

async fn an_admin_cannot_change_their_own_role_or_active_flag(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let (token, id, _) = second_admin(&client, &server, "self@example.com").await;
    let path = format!("/api/admin/users/{id}/");
    for change in [json!({"role": "member"}), json!({"is_active": false}), json!({"role": "admin"})] {
        let (status, body) = call(&client, &server.base, "PATCH", &path, Some(&token), Some(change.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{change}: {body}");
        assert_eq!(body["code"], "own_access");
    }
    let (status, _) = call(&client, &server.base, "GET", "/api/admin/users/", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "still an active admin");
}

async fn a_deactivated_users_old_token_cannot_unlock_a_lock_or_change_the_password(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let root = admin_access(&client, &server).await;
    let body = json!({"email": "owner@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        "first_name": "Olga", "last_name": "Owner"});
    let (_, registered) = call(&client, &server.base, "POST", "/api/v1/auth/register/", None, Some(body)).await;
    let token = registered["tokens"]["access"].as_str().unwrap().to_string();
    let id = registered["user"]["id"].as_str().unwrap();
    let (status, _) = call(&client, &server.base, "GET", "/api/v1/devices/", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/api/admin/users/{id}/");
    let (status, _) = call(&client, &server.base, "PATCH", &path, Some(&root), Some(json!({"is_active": false}))).await;
    assert_eq!(status, StatusCode::OK);
    let attempts: [(&str, &str, Option<Value>); 4] = [
        ("POST", "/api/v1/devices/any-lock/unlock/", Some(json!({}))),
        ("POST", "/api/v1/devices/any-lock/lock/", Some(json!({}))),
        ("DELETE", "/api/v1/devices/any-lock/", None),
        (
            "POST",
            "/api/v1/users/change-password/",
            Some(
                json!({"old_password": PASSWORD, "new_password": "Another-pass-123", "new_password_confirm": "Another-pass-123"}),
            ),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = call(&client, &server.base, method, path, Some(&token), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "user_inactive", "{method} {path}");
    }
}

async fn an_access_token_from_before_a_password_change_is_refused_on_effect_routes(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let body = json!({"email": "mover@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        "first_name": "Max", "last_name": "Mover"});
    let (_, registered) = call(&client, &server.base, "POST", "/api/v1/auth/register/", None, Some(body)).await;
    let old = registered["tokens"]["access"].as_str().unwrap().to_string();
    let change = json!({"old_password": PASSWORD, "new_password": "Another-pass-123", "new_password_confirm": "Another-pass-123"});
    let (status, answer) =
        call(&client, &server.base, "POST", "/api/v1/users/change-password/", Some(&old), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) =
        call(&client, &server.base, "POST", "/api/v1/devices/any-lock/unlock/", Some(&old), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["code"], "token_not_valid");
}

#[test]
fn a_client_that_sends_no_headers_is_disconnected_after_the_header_timeout() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start_with_env(&Backend::Embedded, &[("PREMISES_HTTP_HEADER_TIMEOUT_SECS", "1")]));
    let addr = server.base.trim_start_matches("http://").to_string();
    // Silent, half-sent HTTP/1 and half-sent HTTP/2 preface: each is closed by the server.
    for sent in [&b""[..], b"GET /health/ HTTP/1.1\r\nHost: x\r\n", b"PRI * HTTP/2.0\r\n"] {
        let mut socket = TcpStream::connect(&addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        socket.write_all(sent).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        let closed = loop {
            match socket.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        let waited = start.elapsed();
        assert!(closed, "{:?}: still open after {waited:?}", String::from_utf8_lossy(sent));
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    }
    // A prompt client is served.
    let r = rt.block_on(reqwest::get(format!("{}/health/", server.base))).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
