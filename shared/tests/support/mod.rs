//! What the adapter test suites share: the local engines `make test` starts.
//!
//! `make test` exports `PREMISES_TEST_DYNAMODB_ENDPOINT` (DynamoDB Local) and
//! `PREMISES_TEST_MOTO_ENDPOINT` (moto server: SQS, IoT) and sets
//! `PREMISES_TEST_REQUIRE_ENGINES=1`, which turns a missing engine into a
//! failure. A plain `cargo test` without them runs the embedded suites only.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

fn engine(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            let required = std::env::var("PREMISES_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{var} is not set but PREMISES_TEST_REQUIRE_ENGINES=1: start the engines (make test does)"
            );
            eprintln!("skipping the run that needs {var}: not set (make test sets it)");
            None
        }
    }
}

/// DynamoDB Local's endpoint, if the engines run.
pub fn dynamodb_endpoint() -> Option<String> {
    engine("PREMISES_TEST_DYNAMODB_ENDPOINT")
}

/// moto server's endpoint (SQS, IoT), if the engines run.
pub fn moto_endpoint() -> Option<String> {
    engine("PREMISES_TEST_MOTO_ENDPOINT")
}

/// SDK configuration pointing every client at `endpoint` with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "premises-tests"))
        .load()
        .await
}

/// A name no other test of this run uses (tables, queues, things).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}
