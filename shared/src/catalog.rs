//! The catalog: every Lambda function with its trigger, auth requirement and
//! handler. The function binaries, the local stack, `template.yaml` (checked
//! by a test) and the API document all read this one list.
//!
//! Function names are lowercase words joined by `-`; the name is the binary
//! (`functions/src/bin/<name>.rs`), the SAM `Binary` and the key here.

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
    ///
    /// With `fresh` (always, when `roles` is non-empty) the pipeline also reads the stored user
    /// before the handler runs: a deactivated user is 401 and the role checked is the stored
    /// one, so a demotion takes effect at once rather than when the token expires. Routes with
    /// a physical or money effect and every admin route are fresh; the read costs one GetItem.
    Bearer {
        roles: &'static [&'static str],
        fresh: bool,
    },
    /// A device-scoped token the handler checks itself (appliance endpoints).
    Device,
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

#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    /// One line for the API document and the template's description.
    pub summary: &'static str,
    pub auth: Auth,
    pub errors: ErrorShape,
    pub trigger: Trigger,
}

/// Every queue the catalog's functions consume or produce to.
pub static QUEUES: &[QueueDef] = &[crate::notifications::QUEUE, crate::bank::QUEUE];

/// Every function, in catalog order.
pub fn functions() -> &'static [Function] {
    FUNCTIONS
}

static FUNCTIONS: &[Function] = &[
    HEALTH,
    API_V1_HEALTH,
    API_SCHEMA,
    API_DOCS,
    API_REDOC,
    AUTH_REGISTER,
    AUTH_LOGIN,
    AUTH_LOGOUT,
    AUTH_TOKEN_REFRESH,
    USERS_PROFILE_GET,
    USERS_PROFILE_PUT,
    USERS_CHANGE_PASSWORD,
    CIRCLE_AUTH_LOGIN,
    CIRCLE_AUTH_REFRESH,
    CIRCLE_AUTH_ME,
    ADMIN_USERS_LIST,
    ADMIN_USERS_UPDATE,
    AUTH_REQUEST_OTP,
    AUTH_VERIFY_OTP,
    RFID_LOGIN,
    ADMIN_RFID_ASSIGN,
    ADMIN_RFID_UNASSIGN,
    ADMIN_RFID_BLACKLIST,
    ADMIN_RFID_UNBLACKLIST,
    APPLIANCE_AUTH_CHALLENGE,
    APPLIANCE_AUTH_VERIFY,
    APPLIANCE_START,
    APPLIANCE_FINISH,
    ADMIN_ROOMS_CREATE,
    ADMIN_ROOMS_LIST,
    ADMIN_ROOMS_GET,
    ADMIN_ROOMS_TOTP,
    ADMIN_ROOMS_CREDIT,
    ADMIN_ROOMS_LEDGER,
    ADMIN_APPLIANCES_CREATE,
    ADMIN_APPLIANCES_LIST,
    ADMIN_ENDPOINTS_CREATE,
    ADMIN_ENDPOINTS_LIST,
    ADMIN_ENDPOINTS_REVOKE_TOKENS,
    ADMIN_ENDPOINTS_ROTATE_KEY,
    ADMIN_RUNS_LIST,
    ADMIN_RUNS_ABORT,
    APPLIANCE_MQTT_REQUEST,
    APPLIANCE_MQTT_STATUS,
    APPLIANCE_STUCK_RUNS,
    NOTIFICATIONS_LIST,
    NOTIFICATIONS_UNREAD_COUNT,
    NOTIFICATIONS_READ,
    NOTIFICATIONS_READ_ALL,
    DEV_OUTBOX,
    NOTIFICATIONS_DELIVER,
    ADMIN_NOTIFICATIONS_GET,
    BANK_IMPORT,
    BANK_APPLY,
    ADMIN_BANK_IMPORT,
    ADMIN_BANK_STATEMENTS,
    ADMIN_BANK_PAYMENTS,
    ADMIN_BANK_ASSIGN,
    ADMIN_BANK_STATUS,
    ADMIN_BANK_REDRIVE,
    DEVICES_LIST,
    DEVICES_CREATE,
    DEVICES_GET,
    DEVICES_UPDATE,
    DEVICES_PATCH,
    DEVICES_DELETE,
    DEVICES_LOCK,
    DEVICES_UNLOCK,
    DEVICES_STATUS,
    DEVICES_BATTERY,
    DEVICES_LOGS,
    DEVICES_SETTINGS_GET,
    DEVICES_SETTINGS_PUT,
    DEVICES_ROTATE_KEYS,
    DEVICES_FIRMWARE,
    SECURITY_ALERTS_LIST,
    SECURITY_ALERTS_UNRESOLVED,
    SECURITY_ALERTS_RESOLVE,
    LOCKS_MQTT_STATUS,
    LOCKS_MQTT_RESPONSE,
    LOCKS_MQTT_HEARTBEAT,
    LOCKS_PRESENCE,
    LOCKS_CONNECTIVITY,
    LOCKS_COMMAND_TIMEOUTS,
    LOCKS_TIME_SYNC,
];

// Each function is a constant of its own, so that its binary (`run(&catalog::NAME)`) links its
// handler and nothing else's.

pub const HEALTH: Function = Function {
    name: "health",
    summary: "Service health",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/health/",
        handler: |app, req| Box::pin(crate::health::health(app, req)),
    },
};

pub const API_V1_HEALTH: Function = Function {
    name: "api-v1-health",
    summary: "Service health (API prefix)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/health/",
        handler: |app, req| Box::pin(crate::health::health(app, req)),
    },
};

pub const API_SCHEMA: Function = Function {
    name: "api-schema",
    summary: "The API reference as an OpenAPI 3.1 document (JSON, or YAML with ?format=yaml)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/schema/",
        handler: |app, req| Box::pin(crate::api_doc::pages::schema(app, req)),
    },
};

pub const API_DOCS: Function = Function {
    name: "api-docs",
    summary: "The API reference in Swagger UI",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/docs/",
        handler: |app, req| Box::pin(crate::api_doc::pages::swagger_ui(app, req)),
    },
};

pub const API_REDOC: Function = Function {
    name: "api-redoc",
    summary: "The API reference in ReDoc",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/redoc/",
        handler: |app, req| Box::pin(crate::api_doc::pages::redoc(app, req)),
    },
};

pub const AUTH_REGISTER: Function = Function {
    name: "auth-register",
    summary: "Register a user (SmartLock)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/register/",
        handler: |app, req| Box::pin(crate::identity::handlers::register(app, req)),
    },
};

pub const AUTH_LOGIN: Function = Function {
    name: "auth-login",
    summary: "Log in with email and password (SmartLock)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/login/",
        handler: |app, req| Box::pin(crate::identity::handlers::login(app, req)),
    },
};

pub const AUTH_LOGOUT: Function = Function {
    name: "auth-logout",
    summary: "Revoke a refresh token's session (SmartLock)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/logout/",
        handler: |app, req| Box::pin(crate::identity::handlers::logout(app, req)),
    },
};

pub const AUTH_TOKEN_REFRESH: Function = Function {
    name: "auth-token-refresh",
    summary: "Rotate a refresh token (SmartLock)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/token/refresh/",
        handler: |app, req| Box::pin(crate::identity::handlers::refresh(app, req)),
    },
};

pub const USERS_PROFILE_GET: Function = Function {
    name: "users-profile-get",
    summary: "The caller's profile (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/users/profile/",
        handler: |app, req| Box::pin(crate::identity::handlers::profile_get(app, req)),
    },
};

pub const USERS_PROFILE_PUT: Function = Function {
    name: "users-profile-put",
    summary: "Update the caller's profile (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "PUT",
        path: "/api/v1/users/profile/",
        handler: |app, req| Box::pin(crate::identity::handlers::profile_put(app, req)),
    },
};

pub const USERS_CHANGE_PASSWORD: Function = Function {
    name: "users-change-password",
    summary: "Change the caller's password (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/change-password/",
        handler: |app, req| Box::pin(crate::identity::handlers::change_password(app, req)),
    },
};

pub const CIRCLE_AUTH_LOGIN: Function = Function {
    name: "circle-auth-login",
    summary: "Log in with email and password (Circle Time)",
    auth: Auth::Public,
    errors: ErrorShape::Envelope,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/auth/login",
        handler: |app, req| Box::pin(crate::identity::circle::login(app, req)),
    },
};

pub const CIRCLE_AUTH_REFRESH: Function = Function {
    name: "circle-auth-refresh",
    summary: "Rotate a refresh token (Circle Time)",
    auth: Auth::Public,
    errors: ErrorShape::Envelope,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/auth/refresh",
        handler: |app, req| Box::pin(crate::identity::circle::refresh(app, req)),
    },
};

pub const CIRCLE_AUTH_ME: Function = Function {
    name: "circle-auth-me",
    summary: "The caller (Circle Time)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Envelope,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/auth/me",
        handler: |app, req| Box::pin(crate::identity::circle::me(app, req)),
    },
};

pub const ADMIN_USERS_LIST: Function = Function {
    name: "admin-users-list",
    summary: "List and search users (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/users/",
        handler: |app, req| Box::pin(crate::identity::admin::list_users(app, req)),
    },
};

pub const ADMIN_USERS_UPDATE: Function = Function {
    name: "admin-users-update",
    summary: "Change a user's role or deactivate them (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/admin/users/{id}/",
        handler: |app, req| Box::pin(crate::identity::admin::update_user(app, req)),
    },
};

pub const AUTH_REQUEST_OTP: Function = Function {
    name: "auth-request-otp",
    summary: "Request a login code by SMS (HunarMitra)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/request-otp/",
        handler: |app, req| Box::pin(crate::identity::handlers::request_otp(app, req)),
    },
};

pub const AUTH_VERIFY_OTP: Function = Function {
    name: "auth-verify-otp",
    summary: "Log in with a phone and its code (HunarMitra)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/auth/verify-otp/",
        handler: |app, req| Box::pin(crate::identity::handlers::verify_otp(app, req)),
    },
};

pub const RFID_LOGIN: Function = Function {
    name: "rfid-login",
    summary: "The user of an RFID tag (Arthexis)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/accounts/rfid-login/",
        handler: |app, req| Box::pin(crate::identity::rfid::login(app, req)),
    },
};

pub const ADMIN_RFID_ASSIGN: Function = Function {
    name: "admin-rfid-assign",
    summary: "Assign an RFID tag to a user (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rfid/",
        handler: |app, req| Box::pin(crate::identity::rfid::assign(app, req)),
    },
};

pub const ADMIN_RFID_UNASSIGN: Function = Function {
    name: "admin-rfid-unassign",
    summary: "Forget an RFID tag (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "DELETE",
        path: "/api/admin/rfid/{rfid}/",
        handler: |app, req| Box::pin(crate::identity::rfid::unassign(app, req)),
    },
};

pub const ADMIN_RFID_BLACKLIST: Function = Function {
    name: "admin-rfid-blacklist",
    summary: "Block an RFID tag (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rfid/{rfid}/blacklist/",
        handler: |app, req| Box::pin(crate::identity::rfid::blacklist(app, req)),
    },
};

pub const ADMIN_RFID_UNBLACKLIST: Function = Function {
    name: "admin-rfid-unblacklist",
    summary: "Unblock an RFID tag (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rfid/{rfid}/unblacklist/",
        handler: |app, req| Box::pin(crate::identity::rfid::unblacklist(app, req)),
    },
};

pub const APPLIANCE_AUTH_CHALLENGE: Function = Function {
    name: "appliance-auth-challenge",
    summary: "A challenge token for a room at an endpoint (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/auth/challenge/",
        handler: |app, req| Box::pin(crate::appliances::handlers::challenge(app, req)),
    },
};

pub const APPLIANCE_AUTH_VERIFY: Function = Function {
    name: "appliance-auth-verify",
    summary: "Verify a room's TOTP code for an access token (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/auth/verify/",
        handler: |app, req| Box::pin(crate::appliances::handlers::verify(app, req)),
    },
};

pub const APPLIANCE_START: Function = Function {
    name: "appliance-start",
    summary: "Start an appliance run, reserving its price (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/appliance/start/",
        handler: |app, req| Box::pin(crate::appliances::handlers::start(app, req)),
    },
};

pub const APPLIANCE_FINISH: Function = Function {
    name: "appliance-finish",
    summary: "Finish or abort a run, refunding the difference (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/appliance/finish/",
        handler: |app, req| Box::pin(crate::appliances::handlers::finish(app, req)),
    },
};

pub const ADMIN_ROOMS_CREATE: Function = Function {
    name: "admin-rooms-create",
    summary: "Create a room (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rooms/",
        handler: |app, req| Box::pin(crate::appliances::admin::create_room(app, req)),
    },
};

pub const ADMIN_ROOMS_LIST: Function = Function {
    name: "admin-rooms-list",
    summary: "List rooms (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/rooms/",
        handler: |app, req| Box::pin(crate::appliances::admin::list_rooms(app, req)),
    },
};

pub const ADMIN_ROOMS_GET: Function = Function {
    name: "admin-rooms-get",
    summary: "A room with its balance (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/rooms/{key}/",
        handler: |app, req| Box::pin(crate::appliances::admin::get_room_detail(app, req)),
    },
};

pub const ADMIN_ROOMS_TOTP: Function = Function {
    name: "admin-rooms-totp",
    summary: "A new TOTP secret for a room (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rooms/{key}/totp/",
        handler: |app, req| Box::pin(crate::appliances::admin::new_totp(app, req)),
    },
};

pub const ADMIN_ROOMS_CREDIT: Function = Function {
    name: "admin-rooms-credit",
    summary: "Credit or debit a room (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/rooms/{key}/credit/",
        handler: |app, req| Box::pin(crate::appliances::admin::credit(app, req)),
    },
};

pub const ADMIN_ROOMS_LEDGER: Function = Function {
    name: "admin-rooms-ledger",
    summary: "A room's ledger (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/rooms/{key}/ledger/",
        handler: |app, req| Box::pin(crate::appliances::admin::ledger(app, req)),
    },
};

pub const ADMIN_APPLIANCES_CREATE: Function = Function {
    name: "admin-appliances-create",
    summary: "Create an appliance type (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/appliances/",
        handler: |app, req| Box::pin(crate::appliances::admin::create_appliance(app, req)),
    },
};

pub const ADMIN_APPLIANCES_LIST: Function = Function {
    name: "admin-appliances-list",
    summary: "List appliance types (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/appliances/",
        handler: |app, req| Box::pin(crate::appliances::admin::list_appliances(app, req)),
    },
};

pub const ADMIN_ENDPOINTS_CREATE: Function = Function {
    name: "admin-endpoints-create",
    summary: "Create an appliance endpoint (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/endpoints/",
        handler: |app, req| Box::pin(crate::appliances::admin::create_endpoint(app, req)),
    },
};

pub const ADMIN_ENDPOINTS_LIST: Function = Function {
    name: "admin-endpoints-list",
    summary: "List appliance endpoints (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/endpoints/",
        handler: |app, req| Box::pin(crate::appliances::admin::list_endpoints(app, req)),
    },
};

pub const ADMIN_ENDPOINTS_REVOKE_TOKENS: Function = Function {
    name: "admin-endpoints-revoke-tokens",
    summary: "Invalidate every token of an endpoint (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/endpoints/{endpoint_id}/revoke-tokens/",
        handler: |app, req| Box::pin(crate::appliances::admin::revoke_tokens(app, req)),
    },
};

pub const ADMIN_ENDPOINTS_ROTATE_KEY: Function = Function {
    name: "admin-endpoints-rotate-key",
    summary: "Give an endpoint a new device key (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/endpoints/{endpoint_id}/rotate-key/",
        handler: |app, req| Box::pin(crate::appliances::admin::rotate_key(app, req)),
    },
};

pub const ADMIN_RUNS_LIST: Function = Function {
    name: "admin-runs-list",
    summary: "List appliance runs (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/runs/",
        handler: |app, req| Box::pin(crate::appliances::admin::list_runs(app, req)),
    },
};

pub const ADMIN_RUNS_ABORT: Function = Function {
    name: "admin-runs-abort",
    summary: "Abort a run with a full refund (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/runs/{run_id}/abort/",
        handler: |app, req| Box::pin(crate::appliances::admin::abort_run(app, req)),
    },
};

pub const APPLIANCE_MQTT_REQUEST: Function = Function {
    name: "appliance-mqtt-request",
    summary: "Answer an endpoint's MQTT request (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::appliances::mqtt::REQUEST_SQL,
        handler: |app, event| Box::pin(crate::appliances::mqtt::request(app, event)),
    },
};

pub const APPLIANCE_MQTT_STATUS: Function = Function {
    name: "appliance-mqtt-status",
    summary: "Record an endpoint's status telemetry (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::appliances::mqtt::STATUS_SQL,
        handler: |app, event| Box::pin(crate::appliances::mqtt::status(app, event)),
    },
};

pub const APPLIANCE_STUCK_RUNS: Function = Function {
    name: "appliance-stuck-runs",
    summary: "Abort runs running too long (appliances)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Schedule {
        expression: crate::appliances::jobs::STUCK_RUNS_SCHEDULE,
        handler: |app, _| Box::pin(crate::appliances::jobs::abort_stuck_runs(app)),
    },
};

pub const NOTIFICATIONS_LIST: Function = Function {
    name: "notifications-list",
    summary: "The caller's notifications, newest first",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/notifications/",
        handler: |app, req| Box::pin(crate::notifications::inbox::list(app, req)),
    },
};

pub const NOTIFICATIONS_UNREAD_COUNT: Function = Function {
    name: "notifications-unread-count",
    summary: "How many of the caller's notifications are unread",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/notifications/unread-count/",
        handler: |app, req| Box::pin(crate::notifications::inbox::unread_count(app, req)),
    },
};

pub const NOTIFICATIONS_READ: Function = Function {
    name: "notifications-read",
    summary: "Mark one notification read",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/{id}/read/",
        handler: |app, req| Box::pin(crate::notifications::inbox::read(app, req)),
    },
};

pub const NOTIFICATIONS_READ_ALL: Function = Function {
    name: "notifications-read-all",
    summary: "Mark every notification read",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/read-all/",
        handler: |app, req| Box::pin(crate::notifications::inbox::read_all(app, req)),
    },
};

pub const DEV_OUTBOX: Function = Function {
    name: "dev-outbox",
    summary: "What the log providers sent (dev mode only)",
    auth: Auth::Public,
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/dev/outbox/",
        handler: |app, req| Box::pin(crate::notifications::inbox::outbox(app, req)),
    },
};

pub const NOTIFICATIONS_DELIVER: Function = Function {
    name: "notifications-deliver",
    summary: "Deliver queued notifications on their channels",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Queue {
        queue: &crate::notifications::QUEUE,
        batch_size: 10,
        handler: |app, event| Box::pin(crate::notifications::deliver::consume(app, event)),
    },
};

pub const ADMIN_NOTIFICATIONS_GET: Function = Function {
    name: "admin-notifications-get",
    summary: "What became of each channel of a notification (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/notifications/{id}/",
        handler: |app, req| Box::pin(crate::notifications::inbox::deliveries(app, req)),
    },
};

pub const BANK_IMPORT: Function = Function {
    name: "bank-import",
    summary: "Fetch new transactions from the bank and queue them (bank)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Schedule {
        expression: crate::bank::import::IMPORT_SCHEDULE,
        handler: |app, _| Box::pin(crate::bank::handlers::scheduled_import(app)),
    },
};

pub const BANK_APPLY: Function = Function {
    name: "bank-apply",
    summary: "Apply queued bank transactions to rooms, once each (bank)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Queue {
        queue: &crate::bank::QUEUE,
        batch_size: 10,
        handler: |app, event| Box::pin(crate::bank::handlers::consume(app, event)),
    },
};

pub const ADMIN_BANK_IMPORT: Function = Function {
    name: "admin-bank-import",
    summary: "Run the bank import now, or backfill a period (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/bank/import/",
        handler: |app, req| Box::pin(crate::bank::handlers::import_now(app, req)),
    },
};

pub const ADMIN_BANK_STATEMENTS: Function = Function {
    name: "admin-bank-statements",
    summary: "Upload a Fio JSON or camt.053 statement (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/bank/statements/",
        handler: |app, req| Box::pin(crate::bank::handlers::upload_statement(app, req)),
    },
};

pub const ADMIN_BANK_PAYMENTS: Function = Function {
    name: "admin-bank-payments",
    summary: "List bank payments for reconciliation (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/bank/payments/",
        handler: |app, req| Box::pin(crate::bank::handlers::list_payments(app, req)),
    },
};

pub const ADMIN_BANK_ASSIGN: Function = Function {
    name: "admin-bank-assign",
    summary: "Credit an invalid payment to a room, once (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/bank/payments/{id}/assign/",
        handler: |app, req| Box::pin(crate::bank::handlers::assign(app, req)),
    },
};

pub const ADMIN_BANK_STATUS: Function = Function {
    name: "admin-bank-status",
    summary: "The bank import's state and queue depths (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/admin/bank/status/",
        handler: |app, req| Box::pin(crate::bank::handlers::status(app, req)),
    },
};

pub const ADMIN_BANK_REDRIVE: Function = Function {
    name: "admin-bank-redrive",
    summary: "Move dead-lettered bank transactions back to the queue (admin)",
    auth: Auth::Bearer { roles: &["admin"], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/admin/bank/dlq/redrive/",
        handler: |app, req| Box::pin(crate::bank::handlers::redrive(app, req)),
    },
};

pub const DEVICES_LIST: Function = Function {
    name: "devices-list",
    summary: "The caller's locks (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/",
        handler: |app, req| Box::pin(crate::locks::handlers::list(app, req)),
    },
};

pub const DEVICES_CREATE: Function = Function {
    name: "devices-create",
    summary: "Register a lock and provision its credentials (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/devices/",
        handler: |app, req| Box::pin(crate::locks::handlers::create(app, req)),
    },
};

pub const DEVICES_GET: Function = Function {
    name: "devices-get",
    summary: "A lock with its settings (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/{id}/",
        handler: |app, req| Box::pin(crate::locks::handlers::retrieve(app, req)),
    },
};

pub const DEVICES_UPDATE: Function = Function {
    name: "devices-update",
    summary: "Rename or move a lock (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "PUT",
        path: "/api/v1/devices/{id}/",
        handler: |app, req| Box::pin(crate::locks::handlers::update(app, req)),
    },
};

pub const DEVICES_PATCH: Function = Function {
    name: "devices-patch",
    summary: "Change some of a lock's fields (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/v1/devices/{id}/",
        handler: |app, req| Box::pin(crate::locks::handlers::update(app, req)),
    },
};

pub const DEVICES_DELETE: Function = Function {
    name: "devices-delete",
    summary: "Unlock a lock one last time and remove it (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "DELETE",
        path: "/api/v1/devices/{id}/",
        handler: |app, req| Box::pin(crate::locks::handlers::delete(app, req)),
    },
};

pub const DEVICES_LOCK: Function = Function {
    name: "devices-lock",
    summary: "Send a lock command (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/devices/{id}/lock/",
        handler: |app, req| Box::pin(crate::locks::handlers::lock(app, req)),
    },
};

pub const DEVICES_UNLOCK: Function = Function {
    name: "devices-unlock",
    summary: "Send an unlock command (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/devices/{id}/unlock/",
        handler: |app, req| Box::pin(crate::locks::handlers::unlock(app, req)),
    },
};

pub const DEVICES_STATUS: Function = Function {
    name: "devices-status",
    summary: "A lock's live status (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/{id}/status/",
        handler: |app, req| Box::pin(crate::locks::handlers::status(app, req)),
    },
};

pub const DEVICES_BATTERY: Function = Function {
    name: "devices-battery",
    summary: "A lock's battery level and history (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/{id}/battery/",
        handler: |app, req| Box::pin(crate::locks::handlers::battery(app, req)),
    },
};

pub const DEVICES_LOGS: Function = Function {
    name: "devices-logs",
    summary: "A lock's access log (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/{id}/logs/",
        handler: |app, req| Box::pin(crate::locks::handlers::logs(app, req)),
    },
};

pub const DEVICES_SETTINGS_GET: Function = Function {
    name: "devices-settings-get",
    summary: "A lock's settings (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/devices/{id}/settings/",
        handler: |app, req| Box::pin(crate::locks::handlers::settings_get(app, req)),
    },
};

pub const DEVICES_SETTINGS_PUT: Function = Function {
    name: "devices-settings-put",
    summary: "Change a lock's settings (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "PUT",
        path: "/api/v1/devices/{id}/settings/",
        handler: |app, req| Box::pin(crate::locks::handlers::settings_put(app, req)),
    },
};

pub const DEVICES_ROTATE_KEYS: Function = Function {
    name: "devices-rotate-keys",
    summary: "New device credentials; the old ones stop working (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/devices/{id}/rotate-keys/",
        handler: |app, req| Box::pin(crate::locks::handlers::rotate_keys(app, req)),
    },
};

pub const DEVICES_FIRMWARE: Function = Function {
    name: "devices-firmware",
    summary: "Send a firmware update to a lock (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: true },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/devices/{id}/firmware/",
        handler: |app, req| Box::pin(crate::locks::handlers::firmware(app, req)),
    },
};

pub const SECURITY_ALERTS_LIST: Function = Function {
    name: "security-alerts-list",
    summary: "The caller's security alerts (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/security/alerts/",
        handler: |app, req| Box::pin(crate::security::alerts::list(app, req)),
    },
};

pub const SECURITY_ALERTS_UNRESOLVED: Function = Function {
    name: "security-alerts-unresolved",
    summary: "The caller's unresolved security alerts (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/security/alerts/unresolved/",
        handler: |app, req| Box::pin(crate::security::alerts::unresolved(app, req)),
    },
};

pub const SECURITY_ALERTS_RESOLVE: Function = Function {
    name: "security-alerts-resolve",
    summary: "Resolve a security alert (SmartLock)",
    auth: Auth::Bearer { roles: &[], fresh: false },
    errors: ErrorShape::Detail,
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/security/alerts/{id}/resolve/",
        handler: |app, req| Box::pin(crate::security::alerts::resolve(app, req)),
    },
};

pub const LOCKS_MQTT_STATUS: Function = Function {
    name: "locks-mqtt-status",
    summary: "Record a lock's status report (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::locks::mqtt::STATUS_SQL,
        handler: |app, event| Box::pin(crate::locks::mqtt::status(app, event)),
    },
};

pub const LOCKS_MQTT_RESPONSE: Function = Function {
    name: "locks-mqtt-response",
    summary: "Complete a lock command the device answered (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::locks::mqtt::RESPONSE_SQL,
        handler: |app, event| Box::pin(crate::locks::mqtt::response(app, event)),
    },
};

pub const LOCKS_MQTT_HEARTBEAT: Function = Function {
    name: "locks-mqtt-heartbeat",
    summary: "Record a lock's heartbeat (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::locks::mqtt::HEARTBEAT_SQL,
        handler: |app, event| Box::pin(crate::locks::mqtt::heartbeat(app, event)),
    },
};

pub const LOCKS_PRESENCE: Function = Function {
    name: "locks-presence",
    summary: "A lock connected or disconnected (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::IotRule {
        sql: crate::locks::mqtt::PRESENCE_SQL,
        handler: |app, event| Box::pin(crate::locks::mqtt::presence(app, event)),
    },
};

pub const LOCKS_CONNECTIVITY: Function = Function {
    name: "locks-connectivity",
    summary: "Mark locks silent for 5 minutes offline (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Schedule {
        expression: crate::locks::jobs::CONNECTIVITY_SCHEDULE,
        handler: |app, _| Box::pin(crate::locks::jobs::check_connectivity(app)),
    },
};

pub const LOCKS_COMMAND_TIMEOUTS: Function = Function {
    name: "locks-command-timeouts",
    summary: "Fail lock commands the device never answered (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Schedule {
        expression: crate::locks::jobs::COMMAND_TIMEOUTS_SCHEDULE,
        handler: |app, _| Box::pin(crate::locks::jobs::fail_timed_out_commands(app)),
    },
};

pub const LOCKS_TIME_SYNC: Function = Function {
    name: "locks-time-sync",
    summary: "Publish the time to every lock (locks)",
    auth: Auth::Device,
    errors: ErrorShape::Detail,
    trigger: Trigger::Schedule {
        expression: crate::locks::jobs::TIME_SYNC_SCHEDULE,
        handler: |app, _| Box::pin(crate::locks::jobs::sync_time(app)),
    },
};

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
            let entry = format!("run(&shared::catalog::{})", f.name.to_ascii_uppercase().replace('-', "_"));
            assert!(src.contains(&entry), "{} does not run its own entry ({entry})", path.display());
        }
        for entry in std::fs::read_dir(&bins).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let name = name.trim_end_matches(".rs");
            assert!(get(name).is_some(), "functions/src/bin/{name}.rs has no catalog entry");
        }
    }
}
