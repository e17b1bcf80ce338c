//! Tracing set-up. Under Lambda: the runtime's subscriber, which honours
//! `AWS_LAMBDA_LOG_FORMAT` (JSON) and `AWS_LAMBDA_LOG_LEVEL`/`RUST_LOG`, and
//! whose per-invocation span carries the `requestId` into every line.
//! Locally: readable lines, `RUST_LOG` (default `info`); the HTTP pipeline's
//! `request` span carries the request id.

use tracing_subscriber::EnvFilter;

pub fn init_lambda() {
    lambda_runtime::tracing::init_default_subscriber();
}

pub fn init_local() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn"));
    // A second call (tests start several stacks) keeps the first subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
