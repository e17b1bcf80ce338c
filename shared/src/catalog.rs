//! The catalog: every Lambda function with its trigger, auth requirement and
//! handler. The function binaries, the local stack, `template.yaml` (checked
//! by a test) and the API document all read this one list.
//!
//! Function names are lowercase words joined by `-`; the name is the binary
//! (`functions/src/bin/<name>.rs`), the SAM `Binary` and the key here.

use std::sync::LazyLock;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;

use crate::App;
use crate::platform::http::{Request, Response, Result as HttpResult};
use crate::platform::queue::QueueDef;

pub type HttpHandler = fn(&'static App, Request) -> BoxFuture<'static, HttpResult<Response>>;
pub type QueueHandler = fn(&'static App, SqsEvent) -> BoxFuture<'static, SqsBatchResponse>;
pub type IotHandler = fn(&'static App, serde_json::Value) -> BoxFuture<'static, anyhow::Result<()>>;
pub type ScheduleHandler = fn(&'static App, EventBridgeEvent) -> BoxFuture<'static, anyhow::Result<()>>;

/// What invokes a function, with the handler that serves it.
pub enum Trigger {
    /// An API Gateway HTTP API route.
    Http { method: &'static str, path: &'static str, handler: HttpHandler },
    /// An SQS event source with partial batch failures.
    Queue { queue: &'static QueueDef, batch_size: u32, handler: QueueHandler },
    /// An AWS IoT topic rule; the handler receives the JSON its SELECT produces.
    IotRule { sql: &'static str, handler: IotHandler },
    /// An EventBridge schedule (`rate(…)` or `cron(…)`).
    Schedule { expression: &'static str, handler: ScheduleHandler },
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Http { method, path, .. } => write!(f, "Http({method} {path})"),
            Trigger::Queue { queue, .. } => write!(f, "Queue({})", queue.name),
            Trigger::IotRule { sql, .. } => write!(f, "IotRule({sql})"),
            Trigger::Schedule { expression, .. } => write!(f, "Schedule({expression})"),
        }
    }
}

/// Who may invoke an HTTP function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// A valid bearer access token; when `roles` is non-empty, with one of them.
    Bearer {
        roles: &'static [&'static str],
    },
    /// A device-scoped token the handler checks itself (appliance endpoints).
    Device,
}

#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    /// One line for the API document and the template's description.
    pub summary: &'static str,
    pub auth: Auth,
    pub trigger: Trigger,
}

/// Every queue the catalog's functions consume or produce to.
pub static QUEUES: &[QueueDef] = &[];

/// Every function.
pub fn functions() -> &'static [Function] {
    static FUNCTIONS: LazyLock<Vec<Function>> = LazyLock::new(|| {
        vec![
            Function {
                name: "health",
                summary: "Service health",
                auth: Auth::Public,
                trigger: Trigger::Http {
                    method: "GET",
                    path: "/health/",
                    handler: |app, req| Box::pin(crate::health::health(app, req)),
                },
            },
            Function {
                name: "api-v1-health",
                summary: "Service health (API prefix)",
                auth: Auth::Public,
                trigger: Trigger::Http {
                    method: "GET",
                    path: "/api/v1/health/",
                    handler: |app, req| Box::pin(crate::health::health(app, req)),
                },
            },
        ]
    });
    &FUNCTIONS
}

/// The function of this name.
pub fn get(name: &str) -> Option<&'static Function> {
    functions().iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_binary_friendly() {
        let mut seen = std::collections::HashSet::new();
        for f in functions() {
            assert!(seen.insert(f.name), "duplicate function {}", f.name);
            assert!(
                f.name
                    .split('-')
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{} is not lowercase words joined by -",
                f.name
            );
        }
    }

    #[test]
    fn every_function_has_a_binary() {
        let bins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        for f in functions() {
            let path = bins.join(format!("{}.rs", f.name));
            let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(src.contains(&format!("run(\"{}\")", f.name)), "{} does not run its own entry", path.display());
        }
        for entry in std::fs::read_dir(&bins).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let name = name.trim_end_matches(".rs");
            assert!(get(name).is_some(), "functions/src/bin/{name}.rs has no catalog entry");
        }
    }
}
