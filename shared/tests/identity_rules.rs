//! Identity rules that depend on time, on a manual clock: the OTP hourly limit
//! and expiry, the login failure window, access-token expiry. Each runs on the
//! embedded store and, when `make test` provides it, on DynamoDB Local.

mod support;

use shared::App;
use shared::identity::otp;
use shared::identity::service::{self, IdentityError, NewUser};
use shared::identity::types::Role;
use shared::platform::app::LocalParts;
use shared::platform::clock::Clock;
use shared::platform::config::{Config, StoreBackend};

/// The start of the next clock hour: a moment ahead of real time, so that no
/// engine's own TTL handling sees these items as expired.
fn start_millis() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    (now / 3_600_000 + 1) * 3_600_000
}

async fn app(dynamodb: bool) -> Option<(&'static App, Clock)> {
    let dir = std::env::temp_dir().join(support::unique("premises-identity-rules"));
    let mut config = Config::for_tests(dir);
    let mut sdk = None;
    if dynamodb {
        let endpoint = support::dynamodb_endpoint()?;
        config.store = StoreBackend::Dynamodb;
        config.table_name = support::unique("identity-rules");
        sdk = Some(support::sdk_config(&endpoint).await);
    }
    let clock = Clock::manual(start_millis());
    let parts = LocalParts { start_broker: true, queues: shared::catalog::queues(), sdk };
    let app = App::build(config, clock.clone(), parts).await.expect("app");
    app.store.ensure_table().await.expect("table");
    Some((Box::leak(Box::new(app)), clock))
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $name() { if let Some((app, clock)) = super::app(false).await { super::$name(app, clock).await } })*
        }
        mod dynamodb {
            $(#[tokio::test] async fn $name() { if let Some((app, clock)) = super::app(true).await { super::$name(app, clock).await } })*
        }
    };
}

on_both_stores!(
    a_phone_gets_five_otps_an_hour_one_a_minute,
    an_otp_expires_after_its_ttl,
    failed_logins_are_counted_per_minute,
    every_otp_request_and_attempt_is_in_the_phones_log,
);

/// The events of a phone's OTP log, oldest first.
async fn otp_log(app: &App, phone: &str) -> Vec<String> {
    let query = shared::platform::store::Query::partition(format!("OTPLOG#{phone}"));
    let page = app.store.query(query).await.unwrap();
    page.items
        .iter()
        .map(|item| match item.get("event") {
            Some(shared::platform::store::Value::S(event)) => event.clone(),
            other => panic!("a log entry without an event: {other:?}"),
        })
        .collect()
}

async fn every_otp_request_and_attempt_is_in_the_phones_log(app: &'static App, clock: Clock) {
    let phone = "+919833333333";
    let requested = otp::request(app, phone, Role::Worker).await.unwrap();
    assert!(otp::request(app, phone, Role::Worker).await.is_err());
    clock.advance_millis(1_000);
    assert!(otp::verify(app, &rid(&requested.request_id), "000000x", None).await.is_err());
    clock.advance_millis(1_000);
    otp::verify(app, &rid(&requested.request_id), &requested.code, None).await.expect("the right code");
    clock.advance_millis(1_000);
    assert!(otp::verify(app, &rid(&requested.request_id), &requested.code, None).await.is_err());
    let events = otp_log(app, phone).await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(&events[2..], ["wrong_code", "verified", "used"], "{events:?}");
}

async fn a_phone_gets_five_otps_an_hour_one_a_minute(app: &'static App, clock: Clock) {
    let phone = "+919811111111";
    for i in 0..5 {
        otp::request(app, phone, Role::Worker).await.unwrap_or_else(|e| panic!("request {i}: {e}"));
        match otp::request(app, phone, Role::Worker).await {
            Err(IdentityError::TooManyOtpRequests { retry_after_secs: 60 }) => {}
            other => panic!("a second request in the same second: {other:?}"),
        }
        clock.advance_millis(59_000);
        match otp::request(app, phone, Role::Worker).await {
            Err(IdentityError::TooManyOtpRequests { retry_after_secs: 1 }) => {}
            other => panic!("a request 59 s later: {other:?}"),
        }
        clock.advance_millis(1_000);
    }
    // Five this hour (minute 5 now): refused until the next hour starts.
    match otp::request(app, phone, Role::Worker).await {
        Err(IdentityError::TooManyOtpRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 3600 - 300),
        other => panic!("a sixth request in one hour: {other:?}"),
    }
    clock.advance_millis(3_600_000 - 300_000);
    otp::request(app, phone, Role::Worker).await.expect("the next hour");
}

async fn an_otp_expires_after_its_ttl(app: &'static App, clock: Clock) {
    let requested = otp::request(app, "+919822222222", Role::Worker).await.unwrap();
    clock.advance_millis(300_000);
    match otp::verify(app, &rid(&requested.request_id), &requested.code, None).await {
        Err(IdentityError::OtpRefused { code: "otp_expired", .. }) => {}
        other => panic!("an expired code: {other:?}"),
    }

    clock.advance_millis(60_000);
    let requested = otp::request(app, "+919822222222", Role::Worker).await.unwrap();
    clock.advance_millis(299_000);
    let verified = otp::verify(app, &rid(&requested.request_id), &requested.code, None).await.expect("within the TTL");
    assert!(verified.is_new_user);
    assert_eq!(verified.user.phone.as_deref(), Some("+919822222222"));
}

async fn failed_logins_are_counted_per_minute(app: &'static App, clock: Clock) {
    let password = "SecurePass123!";
    let new = NewUser {
        email: "counted@example.com".into(),
        password: password.into(),
        password_confirm: password.into(),
        first_name: String::new(),
        last_name: String::new(),
        phone: None,
        role: Role::Member,
    };
    service::register(app, new, None).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(
            service::login(app, "counted@example.com", "wrong-password", None).await,
            Err(IdentityError::BadCredentials)
        ));
    }
    clock.advance_millis(30_000);
    // Refused before the password is checked, even the right one.
    match service::login(app, "counted@example.com", password, None).await {
        Err(IdentityError::TooManyAttempts { retry_after_secs: 30 }) => {}
        other => panic!("a sixth attempt: {other:?}"),
    }
    clock.advance_millis(30_000);
    service::login(app, "counted@example.com", password, None).await.expect("the next minute");
}

/// The request id as a client sends it.
fn rid(id: &str) -> otp::OtpRequestId {
    otp::OtpRequestId::parse(id).expect("a request id")
}
