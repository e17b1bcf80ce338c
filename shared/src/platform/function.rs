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
    /// An EventBridge schedule (`rate(…)` or `cron(…)`); with `param`, the template parameter
    /// that overrides the expression in a deployment (its default is `expression`).
    Schedule { expression: &'static str, param: Option<&'static Param>, handler: ScheduleHandler },
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
    /// The AWS resources it touches: the template grants exactly these.
    pub uses: &'static [Uses],
    /// Seconds an invocation may run (API Gateway gives up on an HTTP call after 30).
    pub timeout_secs: u32,
}

/// An AWS resource a function touches, as the generated template grants it (least privilege:
/// nothing a function does not declare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    /// Reads the table (GetItem, Query, BatchGetItem).
    TableRead,
    /// Reads and writes the table, transactions included.
    TableWrite,
    /// Sends messages to a queue.
    Send(&'static QueueDef),
    /// Reads the message counts of a queue and of its dead-letter queue.
    QueueDepth(&'static QueueDef),
    /// Receives and deletes messages of a queue's dead-letter queue (a redrive; sending them
    /// back is [`Uses::Send`]).
    DrainDeadLetters(&'static QueueDef),
    /// Publishes MQTT messages under `<prefix>/`; devices get the same prefix, scoped to their
    /// own thing name, in the device policy.
    Publish(&'static str),
    /// Updates device shadows (devices get their own shadow topics).
    Shadow,
    /// Creates, rotates and deletes device things, certificates and their policy attachments.
    Provision,
    /// Sends email (SES) and SMS (SNS).
    Deliver,
    /// Reads a module parameter that is not in every function's environment (a secret).
    Param(&'static Param),
}

/// A deployment setting of a module: a parameter of the template, and the environment
/// variable it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// The CloudFormation parameter (PascalCase).
    pub name: &'static str,
    /// The environment variable it sets, if any (a schedule parameter sets none).
    pub env: Option<&'static str>,
    pub default: Option<&'static str>,
    /// `NoEcho`: never shown by CloudFormation.
    pub secret: bool,
    pub pattern: Option<&'static str>,
    pub description: &'static str,
    /// In every function's environment (the configuration every process loads); otherwise
    /// only in those of the functions that declare [`Uses::Param`].
    pub global: bool,
}

impl Param {
    /// A setting in every function's environment.
    pub const fn global(name: &'static str, env: &'static str, description: &'static str) -> Param {
        Param { name, env: Some(env), default: None, secret: false, pattern: None, description, global: true }
    }

    /// A setting only the functions that declare it see (`env` none for a schedule).
    pub const fn local(name: &'static str, env: Option<&'static str>, description: &'static str) -> Param {
        Param { name, env, default: None, secret: false, pattern: None, description, global: false }
    }

    pub const fn default(mut self, value: &'static str) -> Param {
        self.default = Some(value);
        self
    }

    pub const fn secret(mut self) -> Param {
        self.secret = true;
        self
    }

    pub const fn pattern(mut self, pattern: &'static str) -> Param {
        self.pattern = Some(pattern);
        self
    }
}

impl Function {
    /// Lambda's default in the template; HTTP functions stay under API Gateway's 30 s.
    pub const DEFAULT_TIMEOUT_SECS: u32 = 10;

    const fn new(name: &'static str, summary: &'static str, trigger: Trigger) -> Function {
        Function { name, summary, trigger, uses: &[], timeout_secs: Self::DEFAULT_TIMEOUT_SECS }
    }

    /// A public HTTP function with DRF-style errors and no API document entry yet.
    pub const fn http(
        name: &'static str,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        handler: HttpHandler,
    ) -> Function {
        let route = Route { method, path, auth: Auth::Public, errors: ErrorShape::Detail, handler, doc: None };
        Function::new(name, summary, Trigger::Http(route))
    }

    /// A consumer of `queue`, `batch_size` messages an invocation.
    pub const fn queue(
        name: &'static str,
        summary: &'static str,
        queue: &'static QueueDef,
        batch_size: u32,
        handler: QueueHandler,
    ) -> Function {
        Function::new(name, summary, Trigger::Queue { queue, batch_size, handler })
    }

    /// The target of an IoT topic rule with this SQL.
    pub const fn iot(name: &'static str, summary: &'static str, sql: &'static str, handler: IotHandler) -> Function {
        Function::new(name, summary, Trigger::IotRule { sql, handler })
    }

    /// A job on an EventBridge schedule.
    pub const fn schedule(
        name: &'static str,
        summary: &'static str,
        expression: &'static str,
        handler: ScheduleHandler,
    ) -> Function {
        Function::new(name, summary, Trigger::Schedule { expression, param: None, handler })
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

    /// The AWS resources it touches.
    pub const fn uses(mut self, uses: &'static [Uses]) -> Function {
        self.uses = uses;
        self
    }

    /// Seconds an invocation may run.
    pub const fn timeout(mut self, secs: u32) -> Function {
        self.timeout_secs = secs;
        self
    }

    /// For a schedule: the template parameter that overrides its expression.
    pub const fn schedule_param(mut self, param: &'static Param) -> Function {
        if let Trigger::Schedule { param: p, .. } = &mut self.trigger {
            *p = Some(param);
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
    /// Its deployment settings (template parameters).
    pub params: &'static [Param],
}
