//! Attacks on the identity front doors through the `premises` binary (issue 13, items 4, 6/12, 7, 8
//! and 11): phone pre-hijacking, login and registration floods, RFID tag guessing, the RFID assign
//! race, and over-long input.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Server, eventually};
use crate::identity::{ADMIN_ENV, PASSWORD, admin_access, at_the_start_of_a_minute, get, post, text};

crate::on_both_stores!(
    an_attacker_who_registers_a_victims_phone_does_not_receive_the_victims_otp_login,
    an_attacker_who_puts_a_victims_phone_in_the_profile_does_not_receive_the_victims_otp_login,
    a_code_sent_with_a_bearer_token_proves_only_the_callers_own_profile_phone,
    sixty_concurrent_logins_for_one_email_evaluate_at_most_five_passwords,
    a_thirty_first_registration_from_one_address_within_a_minute_is_429,
    a_twenty_first_unknown_rfid_tag_from_one_address_within_a_minute_is_429_and_admins_are_told,
    an_rfid_login_answers_who_the_tag_logs_in_and_nothing_more,
    assigning_a_tag_while_it_is_unassigned_concurrently_is_never_a_500,
    a_3000_character_otp_request_id_is_400_naming_request_id,
    over_long_profile_and_registration_strings_are_400_naming_the_field,
    over_long_ids_on_admin_user_and_rfid_routes_are_400_or_404,
);

async fn put(client: &Client, server: &Server, path: &str, access: &str, body: Value) -> (StatusCode, Value) {
    let r = client.put(server.url(path)).bearer_auth(access).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Registers `email` (with `phone` when given); returns the answer.
async fn register(client: &Client, server: &Server, email: &str, phone: Option<&str>) -> Value {
    let mut body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD});
    if let Some(phone) = phone {
        body["phone_number"] = json!(phone);
    }
    let (status, out) = post(client, server, "/api/v1/auth/register/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

/// Requests and verifies an OTP for `phone`, with a bearer token when given.
async fn otp_login(client: &Client, server: &Server, phone: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let (status, requested) =
        post(client, server, "/api/v1/auth/request-otp/", json!({"phone": phone, "role": "worker"})).await;
    assert_eq!(status, StatusCode::OK, "{requested}");
    let mut req = client
        .post(server.url("/api/v1/auth/verify-otp/"))
        .json(&json!({"request_id": requested["request_id"], "otp": requested["dev_otp"]}));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn an_attacker_who_registers_a_victims_phone_does_not_receive_the_victims_otp_login(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let victim_phone = "+14155550191";
    let attacker = register(&client, &server, "attacker@example.com", Some(victim_phone)).await;
    let attacker_access = text(&attacker["tokens"]["access"]);
    assert_eq!(attacker["user"]["phone_number"], victim_phone);

    // The victim logs in with their phone: a new account of their own, not the attacker's.
    let (status, session) = otp_login(&client, &server, victim_phone, None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["is_new_user"], true, "{session}");
    assert_ne!(session["user"]["id"], attacker["user"]["id"]);
    assert_eq!(session["user"]["email"], Value::Null);
    assert_eq!(session["user"]["phone"], victim_phone);
    assert_eq!(session["user"]["phone_verified"], true);
    assert_eq!(attacker["user"]["phone_verified"], false);

    // The proof moved the number to the victim: the attacker's profile no longer shows it, and the
    // attacker cannot claim it again.
    let (status, profile) = get(&client, &server, "/api/v1/users/profile/", &attacker_access).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["phone_number"], Value::Null, "{profile}");
    let (status, out) =
        put(&client, &server, "/api/v1/users/profile/", &attacker_access, json!({"phone_number": victim_phone})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("phone_number")), "{out}");
    let body = json!({"email": "attacker2@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        "phone_number": victim_phone});
    let (status, out) = post(&client, &server, "/api/v1/auth/register/", body).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("phone_number")), "{out}");
}

async fn an_attacker_who_puts_a_victims_phone_in_the_profile_does_not_receive_the_victims_otp_login(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let victim_phone = "+14155550192";
    let attacker = register(&client, &server, "squatter@example.com", None).await;
    let attacker_access = text(&attacker["tokens"]["access"]);
    let (status, out) =
        put(&client, &server, "/api/v1/users/profile/", &attacker_access, json!({"phone_number": victim_phone})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!((out["phone_number"].clone(), out["phone_verified"].clone()), (json!(victim_phone), json!(false)));

    let (status, session) = otp_login(&client, &server, victim_phone, None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["is_new_user"], true, "{session}");
    assert_ne!(session["user"]["id"], attacker["user"]["id"]);
    let victim_access = text(&session["access"]);
    let (_, victim) = get(&client, &server, "/api/v1/users/profile/", &victim_access).await;
    assert_eq!(victim["id"], session["user"]["id"]);
    assert_ne!(victim["email"], "squatter@example.com");

    let (_, profile) = get(&client, &server, "/api/v1/users/profile/", &attacker_access).await;
    assert_eq!(profile["phone_number"], Value::Null, "{profile}");
}

async fn a_code_sent_with_a_bearer_token_proves_only_the_callers_own_profile_phone(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let owner = register(&client, &server, "prover@example.com", Some("+14155550193")).await;
    let access = text(&owner["tokens"]["access"]);

    // A number that is not in the caller's profile is refused, and nothing is created.
    let (status, out) = otp_login(&client, &server, "+14155550194", Some(&access)).await;
    assert_eq!((status, out["code"].clone()), (StatusCode::BAD_REQUEST, json!("phone_not_in_profile")), "{out}");
    // A token that is not valid is 401.
    let (status, out) = otp_login(&client, &server, "+14155550195", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{out}");

    // The caller's own number is bound to the caller.
    let (status, session) = otp_login(&client, &server, "+14155550193", Some(&access)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["is_new_user"], false);
    assert_eq!(session["user"]["id"], owner["user"]["id"]);
    assert_eq!(session["user"]["phone_verified"], true);
    let (_, profile) = get(&client, &server, "/api/v1/users/profile/", &access).await;
    assert_eq!(
        (profile["phone_number"].clone(), profile["phone_verified"].clone()),
        (json!("+14155550193"), json!(true))
    );

    // Changing the number gives the proven one up: the new one is unproven again.
    let (status, out) =
        put(&client, &server, "/api/v1/users/profile/", &access, json!({"phone_number": "+14155550196"})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["phone_verified"], false);
}

async fn sixty_concurrent_logins_for_one_email_evaluate_at_most_five_passwords(backend: Backend) {
    let server = Server::start(&backend).await;
    at_the_start_of_a_minute().await;
    let client = Client::new();
    register(&client, &server, "flood@example.com", None).await;
    let login = |email: &'static str, password: &'static str| {
        let r =
            client.post(server.url("/api/v1/auth/login/")).json(&json!({"email": email, "password": password})).send();
        async move {
            let r = r.await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (r.status(), retry)
        }
    };
    // 60 wrong passwords at once: five are evaluated, the rest refused before hashing.
    let results = futures::future::join_all((0..60).map(|_| login("flood@example.com", "WrongPass1!"))).await;
    let count = |results: &[(StatusCode, Option<String>)], s: StatusCode| results.iter().filter(|r| r.0 == s).count();
    assert_eq!(count(&results, StatusCode::UNAUTHORIZED), 5, "{results:?}");
    assert_eq!(count(&results, StatusCode::TOO_MANY_REQUESTS), 55, "{results:?}");
    assert!(results.iter().all(|(s, retry)| *s != StatusCode::TOO_MANY_REQUESTS || retry.is_some()), "{results:?}");
    // The right password after the burst is refused as well.
    assert_eq!(login("flood@example.com", PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);

    // 59 wrong passwords and the right one at once, for another email: still at most five wrong ones
    // are evaluated (a success gives its slot back, so it may let one more attempt in).
    register(&client, &server, "flood2@example.com", None).await;
    let burst = (0..60).map(|i| login("flood2@example.com", if i == 30 { PASSWORD } else { "WrongPass1!" }));
    let results = futures::future::join_all(burst).await;
    let (refused, ok) = (count(&results, StatusCode::UNAUTHORIZED), count(&results, StatusCode::OK));
    assert!(refused <= 5 && ok <= 1, "{refused} refused, {ok} ok: {results:?}");
    assert_eq!(refused + ok + count(&results, StatusCode::TOO_MANY_REQUESTS), 60, "{results:?}");
}

async fn a_thirty_first_registration_from_one_address_within_a_minute_is_429(backend: Backend) {
    let server = Server::start(&backend).await;
    at_the_start_of_a_minute().await;
    let client = Client::new();
    let attempt = |i: usize| {
        let body = json!({"email": format!("bulk{i}@example.com"), "password": PASSWORD, "password_confirm": PASSWORD});
        client.post(server.url("/api/v1/auth/register/")).json(&body).send()
    };
    let first: Vec<_> = futures::future::join_all((0..30).map(attempt)).await;
    for r in first {
        assert_eq!(r.unwrap().status(), StatusCode::CREATED);
    }
    let r = attempt(30).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "registration_throttled");
    // Nothing was created: the refused registration's email logs nobody in.
    let (status, _) =
        post(&client, &server, "/api/v1/auth/login/", json!({"email": "bulk30@example.com", "password": PASSWORD}))
            .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn admin_post(client: &Client, server: &Server, access: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client.post(server.url(path)).bearer_auth(access).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn rfid_login(client: &Client, server: &Server, tag: &str) -> reqwest::Response {
    client.post(server.url("/accounts/rfid-login/")).json(&json!({"rfid": tag})).send().await.unwrap()
}

async fn a_twenty_first_unknown_rfid_tag_from_one_address_within_a_minute_is_429_and_admins_are_told(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let owner = register(&client, &server, "card@example.com", None).await;
    let (status, out) = admin_post(
        &client,
        &server,
        &admin,
        "/api/admin/rfid/",
        json!({"rfid": "CAFE0001", "user_id": owner["user"]["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    at_the_start_of_a_minute().await;

    // A good tag in between does not count.
    assert_eq!(rfid_login(&client, &server, "CAFE0001").await.status(), StatusCode::OK);
    let tags: Vec<String> = (0..20).map(|i| format!("{:08X}", 0x1000 + i)).collect();
    for r in futures::future::join_all(tags.iter().map(|tag| rfid_login(&client, &server, tag))).await {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The 21st is refused before the lookup, even for a good tag.
    for tag in ["00002000", "CAFE0001"] {
        let r = rfid_login(&client, &server, tag).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{tag}");
        let secs: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
    }

    // The admin is told in their inbox.
    let told = eventually(Duration::from_secs(20), || {
        let req = client.get(server.url("/api/v1/notifications/")).bearer_auth(&admin).send();
        async move {
            let page: Value = req.await.ok()?.json().await.ok()?;
            page["results"].as_array()?.iter().find(|n| n["kind"] == "rfid_login_failures").cloned()
        }
    })
    .await;
    let told = told.expect("the admin was told of the burst");
    assert!(told["body"].as_str().is_some_and(|b| b.contains("20")), "{told}");
}

async fn an_rfid_login_answers_who_the_tag_logs_in_and_nothing_more(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let body = json!({"email": "reader@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        "first_name": "Rita", "last_name": "Reader", "phone_number": "+14155550197"});
    let (status, owner) = post(&client, &server, "/api/v1/auth/register/", body).await;
    assert_eq!(status, StatusCode::CREATED, "{owner}");
    let (status, _) = admin_post(
        &client,
        &server,
        &admin,
        "/api/admin/rfid/",
        json!({"rfid": "BEEF0001", "user_id": owner["user"]["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let r = rfid_login(&client, &server, "beef0001").await;
    assert_eq!(r.status(), StatusCode::OK);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who, json!({"authenticated": true, "id": owner["user"]["id"], "name": "Rita Reader"}));
}

async fn assigning_a_tag_while_it_is_unassigned_concurrently_is_never_a_500(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let owner = register(&client, &server, "racer@example.com", None).await;
    let user_id = owner["user"]["id"].clone();
    let assigns = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let (status, out) = admin_post(
                &client,
                &server,
                &admin,
                "/api/admin/rfid/",
                json!({"rfid": "0BADF00D", "user_id": user_id}),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{out}");
            assert_eq!((out["rfid"].clone(), out["user_id"].clone()), (json!("0BADF00D"), user_id.clone()), "{out}");
            statuses.push(status);
        }
        statuses
    };
    let unassigns = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = client.delete(server.url("/api/admin/rfid/0badf00d/")).bearer_auth(&admin).send().await.unwrap();
            assert!(matches!(r.status(), StatusCode::NO_CONTENT | StatusCode::NOT_FOUND), "{}", r.status());
            statuses.push(r.status());
        }
        statuses
    };
    let (a, u) = tokio::join!(assigns, unassigns);
    assert_eq!(a.len(), 40);
    assert_eq!(u.len(), 40);
}

async fn a_3000_character_otp_request_id_is_400_naming_request_id(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let long = "a".repeat(3000);
    let (status, out) =
        post(&client, &server, "/api/v1/auth/verify-otp/", json!({"request_id": long, "otp": "123456"})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("request_id")), "{out}");
    let (status, out) =
        post(&client, &server, "/api/v1/auth/verify-otp/", json!({"request_id": "a/b#c", "otp": "123456"})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("request_id")), "{out}");
}

async fn over_long_profile_and_registration_strings_are_400_naming_the_field(backend: Backend) {
    let server = Server::start(&backend).await;
    let client = Client::new();
    let user = register(&client, &server, "bounds@example.com", None).await;
    let access = text(&user["tokens"]["access"]);

    let huge = "1".repeat(500_000);
    let (status, out) =
        put(&client, &server, "/api/v1/users/profile/", &access, json!({"telegram_chat_id": huge})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert_eq!((out["field"].clone(), out["code"].clone()), (json!("telegram_chat_id"), json!("too_long")));
    let (status, out) =
        put(&client, &server, "/api/v1/users/profile/", &access, json!({"telegram_chat_id": "9".repeat(256)})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    for field in ["first_name", "last_name", "phone_number"] {
        let (status, out) =
            put(&client, &server, "/api/v1/users/profile/", &access, json!({field: "x".repeat(5000)})).await;
        assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!(field)), "{out}");
    }
    let (_, profile) = get(&client, &server, "/api/v1/users/profile/", &access).await;
    assert_eq!(profile["telegram_chat_id"], "9".repeat(256));

    let email = format!("{}@example.com", "e".repeat(300));
    let (status, out) = post(
        &client,
        &server,
        "/api/v1/auth/register/",
        json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD}),
    )
    .await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("email")), "{out}");
    let (status, out) = post(&client, &server, "/api/v1/auth/register/",
        json!({"email": "ok@example.com", "password": PASSWORD, "password_confirm": PASSWORD, "first_name": "n".repeat(151)})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("first_name")), "{out}");
    // A 100 kB password is refused without being hashed.
    let (status, _) = post(
        &client,
        &server,
        "/api/v1/auth/login/",
        json!({"email": "bounds@example.com", "password": "p".repeat(100_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn over_long_ids_on_admin_user_and_rfid_routes_are_400_or_404(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let long = "u".repeat(3000);
    let r = client
        .patch(server.url(&format!("/api/admin/users/{long}/")))
        .bearer_auth(&admin)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, out) =
        admin_post(&client, &server, &admin, "/api/admin/rfid/", json!({"rfid": "12345678", "user_id": long})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("user_id")), "{out}");
    let (status, out) =
        admin_post(&client, &server, &admin, "/api/admin/rfid/", json!({"rfid": long, "user_id": "x"})).await;
    assert_eq!((status, out["field"].clone()), (StatusCode::BAD_REQUEST, json!("rfid")), "{out}");
    for path in
        [format!("/api/admin/rfid/{long}/blacklist/"), format!("/api/admin/rfid/{}/blacklist/", "A".repeat(100))]
    {
        let (status, _) = admin_post(&client, &server, &admin, &path, json!({})).await;
        assert!(matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND), "{path}: {status}");
    }
    let r = client.delete(server.url(&format!("/api/admin/rfid/{long}/"))).bearer_auth(&admin).send().await.unwrap();
    assert!(matches!(r.status(), StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND), "{}", r.status());
}
