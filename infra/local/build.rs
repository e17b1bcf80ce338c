//! Marks the end-to-end suite's DynamoDB variants ignored, with the reason, when no DynamoDB
//! Local is configured, so that `cargo test` reports them as skipped rather than `ok`. Under
//! `CI=true` or `PREMISES_TEST_REQUIRE_ENGINES=1` they run regardless and fail on the missing
//! engine.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(premises_no_dynamodb)");
    for var in ["PREMISES_TEST_DYNAMODB_ENDPOINT", "PREMISES_TEST_REQUIRE_ENGINES", "CI"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let set = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    let required = std::env::var("PREMISES_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    if !set("PREMISES_TEST_DYNAMODB_ENDPOINT") && !required {
        println!("cargo::rustc-cfg=premises_no_dynamodb");
    }
}
