//! What a function is: a name, a one-line summary and the trigger that invokes it, with its
//! handler. A module declares each of its functions as a `pub const` next to the handler
//! (built with the `const fn` builders here) and lists them in its [`Module`]; the catalog is
//! the concatenation of the modules. The pipeline, the router, the Lambda runner, the API
//! document and the local stack read only these types.
//!
//! Function names are lowercase words joined by `-`; the name is the binary
//! (`functions/src/bin/<name>.rs`), the SAM `Binary` and the `operationId`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;

use crate::App;
use crate::platform::doc::Op;
use crate::platform::http::auth::Role;
use crate::platform::http::{Request, Response, Result as HttpResult};
use crate::platform::queue::QueueDef;

pub type HttpHandler = fn(&'static App, Request) -> BoxFuture<'static, HttpResult<Response>>;
pub type QueueHandler = fn(&'static App, SqsEvent) -> BoxFuture<'static, SqsBatchResponse>;
pub type IotHandler = fn(&'static App, serde_json::Value) -> BoxFuture<'static, anyhow::Result<()>>;
pub type ScheduleHandler = fn(&'static App, EventBridgeEvent) -> BoxFuture<'static, anyhow::Result<()>>;
/// How an HTTP operation is described in the API document beyond its route.
pub type DocFn = fn() -> Op;

/// What invokes a function, with the handler that serves it. WebSocket routes (`$connect`,
/// `$default`, `$disconnect` of a declared WebSocket API) and one-time timers (EventBridge
/// Scheduler) come next, as variants of their own beside these.
#[derive(Clone, Copy)]
pub enum Trigger {
    /// An API Gateway HTTP API route.
    Http(Route),
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
            Trigger::Http(route) => write!(f, "Http({} {})", route.method, route.path),
            Trigger::Queue { queue, .. } => write!(f, "Queue({})", queue.name),
            Trigger::IotRule { sql, .. } => write!(f, "IotRule({sql})"),
            Trigger::Schedule { expression, .. } => write!(f, "Schedule({expression})"),
        }
    }
}

/// An HTTP route: method and path as API Gateway matches them, who may call it, how its
/// errors look, its handler and its API document entry.
#[derive(Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
    pub errors: ErrorShape,
    pub handler: HttpHandler,
    pub doc: Option<DocFn>,
}

/// Who may invoke an HTTP function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// A valid bearer access token; when `roles` is non-empty, with one of them.
    ///
    /// With `fresh` (always, when `roles` is non-empty) the pipeline also reads the stored user
    /// before the handler runs: a deactivated user is 401 and the role checked is the stored
    /// one, so a demotion takes effect at once rather than when the token expires. Routes with
    /// a physical or money effect and every admin route are fresh; the read costs one GetItem.
    Bearer {
        roles: &'static [Role],
        fresh: bool,
    },
    /// A device-scoped token or key the handler checks itself (appliance endpoints).
    Device,
}

impl Auth {
    /// Any valid access token, not re-checked against the stored user.
    pub const USER: Auth = Auth::Bearer { roles: &[], fresh: false };
    /// A valid access token of a user the store still has active (physical or money effects).
    pub const FRESH_USER: Auth = Auth::Bearer { roles: &[], fresh: true };
    /// An administrator, as the store says now.
    pub const ADMIN: Auth = Auth::Bearer { roles: &[Role::Admin], fresh: true };
}

/// How an HTTP function's errors look, including those the pipeline raises
/// before the handler runs (401, 403, 413).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"detail", "code", "field"?}` (the DRF style of most seeds).
    Detail,
    /// `{"success": false, "message", "code", "field"?}` (Circle Time, seed 001).
    Envelope,
}

#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    /// One line for the API document and the template's description.
    pub summary: &'static str,
    pub trigger: Trigger,
}

impl Function {
    /// A public HTTP function with DRF-style errors and no API document entry yet.
    pub const fn http(
        name: &'static str,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        handler: HttpHandler,
    ) -> Function {
        let route = Route { method, path, auth: Auth::Public, errors: ErrorShape::Detail, handler, doc: None };
        Function { name, summary, trigger: Trigger::Http(route) }
    }

    /// A consumer of `queue`, `batch_size` messages an invocation.
    pub const fn queue(
        name: &'static str,
        summary: &'static str,
        queue: &'static QueueDef,
        batch_size: u32,
        handler: QueueHandler,
    ) -> Function {
        Function { name, summary, trigger: Trigger::Queue { queue, batch_size, handler } }
    }

    /// The target of an IoT topic rule with this SQL.
    pub const fn iot(name: &'static str, summary: &'static str, sql: &'static str, handler: IotHandler) -> Function {
        Function { name, summary, trigger: Trigger::IotRule { sql, handler } }
    }

    /// A job on an EventBridge schedule.
    pub const fn schedule(
        name: &'static str,
        summary: &'static str,
        expression: &'static str,
        handler: ScheduleHandler,
    ) -> Function {
        Function { name, summary, trigger: Trigger::Schedule { expression, handler } }
    }

    /// Who may call this HTTP function.
    pub const fn auth(mut self, auth: Auth) -> Function {
        if let Trigger::Http(route) = &mut self.trigger {
            route.auth = auth;
        }
        self
    }

    /// Errors in Circle Time's envelope.
    pub const fn envelope(mut self) -> Function {
        if let Trigger::Http(route) = &mut self.trigger {
            route.errors = ErrorShape::Envelope;
        }
        self
    }

    /// The API document entry of this HTTP function.
    pub const fn doc(mut self, doc: DocFn) -> Function {
        if let Trigger::Http(route) = &mut self.trigger {
            route.doc = Some(doc);
        }
        self
    }

    /// The route, for an HTTP function.
    pub fn route(&self) -> Option<&Route> {
        match &self.trigger {
            Trigger::Http(route) => Some(route),
            _ => None,
        }
    }
}

/// A domain module as the catalog sees it: its functions and the queues they consume.
#[derive(Debug)]
pub struct Module {
    /// The API document's tag for its HTTP functions.
    pub name: &'static str,
    pub description: &'static str,
    pub functions: &'static [Function],
    /// The queues this module owns (consumes), declared once here.
    pub queues: &'static [QueueDef],
}
