//! What the catalog does not say about an HTTP function: its query parameters,
//! request body and responses, by function name. Schemas come from the
//! handlers' types (`#[derive(utoipa::ToSchema)]`); the examples are the
//! seeds' own. The pipeline's errors (400 bad body, 401/403 auth, 404 unknown
//! path parameter or page, 413) are added from the catalog's facts; `errors`
//! lists only what the handler itself answers beyond those.

use serde_json::{Value, json};

use super::{Components, envelope_of, numbered_page_of, page_of, schema_of};
use crate::appliances::admin as room_admin;
use crate::appliances::model::{Appliance, LedgerEntry, Run, RunStatus};
use crate::appliances::service as appliance;
use crate::bank::handlers as bank;
use crate::bank::import::ImportReport;
use crate::bank::model::{InvalidReason, PaymentStatus};
use crate::health::Health;
use crate::identity::types::{Role, TokenPair, UserView};
use crate::identity::{admin as user_admin, circle, handlers as account, rfid};
use crate::locks::handlers as locks;
use crate::notifications::inbox;
use crate::security::alerts;

const JSON: &[&str] = &["application/json"];

/// A schema (usually a `$ref`) registering what it refers to.
pub type SchemaFn = fn(&mut Components) -> Value;

/// One operation's description beyond the catalog.
#[derive(Default)]
pub struct Op {
    pub description: &'static str,
    pub query: &'static [QueryParam],
    /// Request headers the operation reads (beyond `Authorization`).
    pub headers: &'static [QueryParam],
    /// `?page=&page_size=`, and a 404 for a page past the end.
    pub paginated: bool,
    /// Paged in the store: `?cursor=` and `?before=` (what `next` and `previous` carry) too.
    pub cursors: bool,
    pub body: Option<Body>,
    pub responses: Vec<Reply>,
    pub errors: &'static [u16],
}

pub struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
}

pub struct Body {
    pub required: bool,
    /// Media type and schema.
    pub content: Vec<(&'static str, SchemaFn)>,
    pub example: Option<Value>,
}

impl Body {
    pub(super) fn render(&self, components: &mut Components) -> Value {
        let mut content = serde_json::Map::new();
        for (media, schema) in &self.content {
            let mut media_type = json!({"schema": schema(components)});
            if let (Some(example), true) = (&self.example, *media == "application/json") {
                media_type["example"] = example.clone();
            }
            content.insert(media.to_string(), media_type);
        }
        json!({"required": self.required, "content": content})
    }
}

pub struct Reply {
    pub status: u16,
    /// The media types the body comes in.
    pub media: &'static [&'static str],
    pub description: &'static str,
    pub schema: Option<SchemaFn>,
    pub example: Option<Value>,
}

impl Op {
    fn new() -> Op {
        Op::default()
    }
    fn describe(mut self, description: &'static str) -> Op {
        self.description = description;
        self
    }
    /// A required JSON body.
    fn json(mut self, schema: SchemaFn) -> Op {
        self.body = Some(Body { required: true, content: vec![("application/json", schema)], example: None });
        self
    }
    fn body(mut self, body: Body) -> Op {
        self.body = Some(body);
        self
    }
    /// The example request body (seed text).
    fn example(mut self, example: Value) -> Op {
        if let Some(body) = &mut self.body {
            body.example = Some(example);
        }
        self
    }
    fn reply(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Op {
        self.responses.push(Reply { status, media: JSON, schema: Some(schema), description, example: None });
        self
    }
    /// The media types of the last reply (JSON unless said).
    fn media(mut self, media: &'static [&'static str]) -> Op {
        if let Some(reply) = self.responses.last_mut() {
            reply.media = media;
        }
        self
    }
    /// The example of the last reply (seed text).
    fn reply_example(mut self, example: Value) -> Op {
        if let Some(reply) = self.responses.last_mut() {
            reply.example = Some(example);
        }
        self
    }
    fn empty(mut self, status: u16, description: &'static str) -> Op {
        self.responses.push(Reply { status, media: JSON, schema: None, description, example: None });
        self
    }
    /// 200 with one page of items.
    fn page(mut self, schema: SchemaFn) -> Op {
        self.paginated = true;
        self.reply(200, "One page, newest or by key as the operation says", schema)
    }
    /// 200 with one page of items read from the store, `next` and `previous` carrying cursors.
    fn store_page(mut self, schema: SchemaFn) -> Op {
        self.cursors = true;
        self.page(schema)
    }
    fn query(mut self, query: &'static [QueryParam]) -> Op {
        self.query = query;
        self
    }
    fn headers(mut self, headers: &'static [QueryParam]) -> Op {
        self.headers = headers;
        self
    }
    fn errors(mut self, errors: &'static [u16]) -> Op {
        self.errors = errors;
        self
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

/// The appliance endpoints' device key header.
const ENDPOINT_KEY: &[QueryParam] = &[QueryParam {
    name: "X-Endpoint-Key",
    description: "The endpoint's device key (from its creation or last rotation). Required unless the endpoint \
                  is `legacy_keyless`: 401 `endpoint_key_required` or `endpoint_key_invalid`, and nothing changes.",
    schema: string,
}];
fn date() -> Value {
    json!({"type": "string", "description": "YYYY-MM-DD"})
}
fn boolean_text() -> Value {
    json!({"type": "string", "enum": ["true", "false", "1", "0"]})
}
fn role() -> Value {
    serde_json::to_value(<Role as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null)
}
fn run_status() -> Value {
    serde_json::to_value(<RunStatus as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null)
}
fn payment_status() -> Value {
    serde_json::to_value(<PaymentStatus as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null)
}
fn invalid_reason() -> Value {
    serde_json::to_value(<InvalidReason as utoipa::PartialSchema>::schema()).unwrap_or(Value::Null)
}
fn schema_format() -> Value {
    json!({"type": "string", "enum": ["json", "yaml"]})
}
/// Any JSON document (a Fio statement, the API document itself).
fn any_object(_: &mut Components) -> Value {
    json!({"type": "object"})
}
fn xml_text(_: &mut Components) -> Value {
    json!({"type": "string", "description": "A camt.053 statement."})
}
fn html(_: &mut Components) -> Value {
    json!({"type": "string"})
}

/// A function's name and how to describe its operation.
pub type Described = (&'static str, fn() -> Op);

/// Every described operation, by catalog function name.
pub static OPERATIONS: &[Described] = &[
    ("health", health),
    ("api-v1-health", health),
    ("auth-register", || {
        Op::new()
            .describe(
                "The phone number is contact data (unique among profiles) until an OTP sent to it is verified. \
                 At most 30 registrations a minute from one address (then 429 with `Retry-After`).",
            )
            .json(schema_of::<account::RegisterBody>)
            .example(
                json!({"email": "user@example.com", "password": "SecurePass123!", "password_confirm": "SecurePass123!",
                "first_name": "John", "last_name": "Doe", "phone_number": "+1234567890"}),
            )
            .reply(201, "The new user and a token pair", schema_of::<account::Session>)
            .errors(&[429])
    }),
    ("auth-login", || {
        Op::new()
            .json(schema_of::<account::LoginBody>)
            .example(json!({"email": "user@example.com", "password": "SecurePass123!"}))
            .reply(200, "The user and a new token pair", schema_of::<account::Session>)
            .errors(&[401, 429])
    }),
    ("auth-logout", || {
        Op::new()
            .json(schema_of::<account::RefreshBody>)
            .reply(200, "Logged out", schema_of::<account::Message>)
            .errors(&[401])
    }),
    ("auth-token-refresh", || {
        Op::new()
            .describe("The refresh token is used up; the answer carries its successor.")
            .json(schema_of::<account::RefreshBody>)
            .reply(200, "A new access and refresh token", schema_of::<TokenPair>)
            .errors(&[401])
    }),
    ("users-profile-get", || Op::new().reply(200, "The caller", schema_of::<UserView>)),
    ("users-profile-put", || {
        Op::new()
            .describe(
                "Changes names, phone number and Telegram chat id; the email stays. A new phone number is contact \
                 data (unique among profiles) until proven with an OTP (`verify-otp` with this bearer token).",
            )
            .json(schema_of::<account::ProfileBody>)
            .example(json!({"first_name": "John", "last_name": "Doe", "phone_number": "+1234567890"}))
            .reply(200, "The updated caller", schema_of::<UserView>)
    }),
    ("users-change-password", || {
        Op::new()
            .describe("Every refresh token issued before stops working.")
            .json(schema_of::<account::ChangePasswordBody>)
            .reply(200, "Changed", schema_of::<account::Message>)
    }),
    ("circle-auth-login", || {
        Op::new()
            .json(schema_of::<account::LoginBody>)
            .example(json!({"email": "user@example.com", "password": "SecurePass123!"}))
            .reply(200, "The user and tokens in Circle Time's envelope", envelope_of::<circle::LoginData>)
            .errors(&[401, 429])
    }),
    ("circle-auth-refresh", || {
        Op::new()
            .json(schema_of::<account::RefreshBody>)
            .reply(200, "A new token pair in Circle Time's envelope", envelope_of::<TokenPair>)
            .errors(&[401])
    }),
    ("circle-auth-me", || Op::new().reply(200, "The caller in Circle Time's envelope", envelope_of::<UserView>)),
    ("admin-users-list", || {
        Op::new()
            .query(&[
                QueryParam { name: "search", description: "Part of the email, phone or name.", schema: string },
                QueryParam { name: "role", description: "Only users with this role.", schema: role },
            ])
            .store_page(page_of::<UserView>)
    }),
    ("admin-users-update", || {
        Op::new()
            .json(schema_of::<user_admin::AdminPatchBody>)
            .example(json!({"role": "staff", "is_active": true}))
            .reply(200, "The updated user", schema_of::<UserView>)
    }),
    ("auth-request-otp", || {
        Op::new()
            .describe("Sends a login code by SMS. `dev_otp` carries the code in dev mode only.")
            .json(schema_of::<account::RequestOtpBody>)
            .example(json!({"phone": "+919876543210", "role": "worker"}))
            .reply(200, "The code was sent", schema_of::<account::OtpRequested>)
            .reply_example(json!({"request_id": "0190c3e5-7d2a-7c4e-9f51-2b8c1d6a4e10", "ttl": 300,
                "message": "OTP sent to +919876543210", "dev_otp": "123456"}))
            .errors(&[429])
    }),
    ("auth-verify-otp", || {
        Op::new()
            .describe(
                "Tokens for the user that proved the phone, created on its first login (a profile that only showed \
                 the number unproven loses it). With `Authorization: Bearer <access>`, the code proves the caller's \
                 own profile number instead, which becomes their login identity (400 `phone_not_in_profile` for \
                 another number). The code may be a string or a number.",
            )
            .json(schema_of::<account::VerifyOtpBody>)
            .example(json!({"request_id": "0190c3e5-7d2a-7c4e-9f51-2b8c1d6a4e10", "otp": "123456"}))
            .reply(200, "The user and a token pair", schema_of::<account::OtpSession>)
            .errors(&[401, 429])
    }),
    ("rfid-login", || {
        Op::new()
            .json(schema_of::<rfid::RfidBody>)
            .example(json!({"rfid": "A1B2C3D4"}))
            .describe("At most 20 refused tags a minute from one address (then 429 with `Retry-After`, any tag).")
            .reply(200, "Who the tag logs in", schema_of::<rfid::RfidLogin>)
            .errors(&[401, 429])
    }),
    ("admin-rfid-assign", || {
        Op::new().json(schema_of::<rfid::AssignBody>).reply(201, "The tag", schema_of::<rfid::Tag>).errors(&[409])
    }),
    ("admin-rfid-unassign", || {
        Op::new()
            .describe("A blacklisted tag stays blacklisted.")
            .empty(204, "The tag belongs to nobody")
            .errors(&[400])
    }),
    ("admin-rfid-blacklist", || Op::new().reply(200, "The tag, blacklisted", schema_of::<rfid::Tag>).errors(&[400])),
    ("admin-rfid-unblacklist", || Op::new().reply(200, "The tag, usable again", schema_of::<rfid::Tag>).errors(&[400])),
    ("appliance-auth-challenge", || {
        Op::new()
            .describe(
                "A 60 s challenge token bound to the room and the endpoint. Whether the room exists is not said: \
                 any well-formed room key gets a token, and one for a key no room has never verifies.",
            )
            .headers(ENDPOINT_KEY)
            .json(schema_of::<appliance::ChallengeBody>)
            .example(json!({"room_num": 12345, "endpoint_id": 1}))
            .reply(200, "The challenge token", schema_of::<appliance::TokenReply>)
            .errors(&[401, 404])
    }),
    ("appliance-auth-verify", || {
        Op::new()
            .describe(
                "Checks the challenge token and the room's TOTP code. More than 3 codes within 5 minutes for a \
                 room at one endpoint lock its TOTP there for 5 minutes: 429 `totp_locked` with `Retry-After` \
                 (and `retry_after` in the body), even for the right code; a right code before that resets the \
                 count. An unknown room answers as a wrong code does.",
            )
            .headers(ENDPOINT_KEY)
            .json(schema_of::<appliance::VerifyBody>)
            .example(json!({"token": "<challenge_jwt>", "auth_code": 123456}))
            .reply(
                200,
                "An access token, the balance and the endpoint's appliances",
                schema_of::<appliance::VerifyReply>,
            )
            .reply_example(
                json!({"token": "<access_jwt>", "balance": 100000, "appliances": [{"name": "washer", "value": 25}]}),
            )
            .errors(&[401, 404, 429, 503])
    }),
    ("appliance-start", || {
        Op::new()
            .describe(
                "Reserves `price` × 100 cents from the room. `units` and `price` are capped by the appliance's \
                 `max_units` and `max_price` (400 `over_appliance_cap` naming the field).",
            )
            .headers(ENDPOINT_KEY)
            .json(schema_of::<appliance::StartBody>)
            .example(json!({"token": "<access_jwt>", "appliance_name": "washer", "units": 300, "price": 20}))
            .reply(201, "The run started", schema_of::<appliance::StartReply>)
            .reply_example(json!({"newbalance": 98000, "token": "<start_jwt>"}))
            .errors(&[401, 402, 404, 409, 503])
    }),
    ("appliance-finish", || {
        Op::new()
            .describe(
                "Ends the run; a lower final price is refunded. A higher one is clamped: never more than the \
                 reservation is charged.",
            )
            .headers(ENDPOINT_KEY)
            .json(schema_of::<appliance::FinishBody>)
            .example(json!({"token": "<start_jwt>", "units": 250, "price": 15, "aborted": false}))
            .reply(200, "The run's status", schema_of::<appliance::FinishReply>)
            .reply_example(json!({"status": "finished"}))
            .errors(&[401, 404, 409, 503])
    }),
    ("admin-rooms-create", || {
        Op::new()
            .json(schema_of::<room_admin::NewRoom>)
            .example(json!({"key": "12345"}))
            .reply(201, "The room", schema_of::<room_admin::RoomView>)
            .errors(&[409])
    }),
    ("admin-rooms-list", || Op::new().page(page_of::<room_admin::RoomView>)),
    ("admin-rooms-get", || Op::new().reply(200, "The room", schema_of::<room_admin::RoomDetail>)),
    ("admin-rooms-totp", || {
        Op::new().describe("A new TOTP secret; the old one stops working.").reply(
            201,
            "The secret",
            schema_of::<room_admin::TotpView>,
        )
    }),
    ("admin-rooms-credit", || {
        Op::new()
            .describe("Cents; a negative amount debits, never below zero.")
            .json(schema_of::<room_admin::CreditBody>)
            .example(json!({"amount": 50000, "note": "cash top-up"}))
            .reply(200, "The new balance", schema_of::<room_admin::BalanceView>)
            .errors(&[402, 503])
    }),
    ("admin-rooms-ledger", || Op::new().store_page(page_of::<LedgerEntry>)),
    ("admin-appliances-create", || {
        Op::new()
            .json(schema_of::<room_admin::NewAppliance>)
            .example(json!({"name": "washer", "price_per_unit": 25, "max_units": 1000, "max_price": 1000}))
            .reply(201, "The appliance", schema_of::<Appliance>)
            .errors(&[409])
    }),
    ("admin-appliances-list", || Op::new().page(page_of::<Appliance>)),
    ("admin-endpoints-create", || {
        Op::new()
            .describe(
                "The reply carries the endpoint's device key `endpoint_key`, shown only here (stored hashed). \
                 `legacy_keyless: true` lets a terminal that cannot send `X-Endpoint-Key` work without it.",
            )
            .json(schema_of::<room_admin::NewEndpoint>)
            .example(json!({"endpoint_id": 1, "name": "Laundry, ground floor", "appliances": ["washer"]}))
            .reply(201, "The endpoint and its device key", schema_of::<room_admin::EndpointWithKey>)
            .errors(&[409])
    }),
    ("admin-endpoints-list", || Op::new().page(page_of::<room_admin::EndpointView>)),
    ("admin-endpoints-revoke-tokens", || {
        Op::new().describe("Every token issued for the endpoint stops working.").reply(
            200,
            "The endpoint",
            schema_of::<room_admin::EndpointView>,
        )
    }),
    ("admin-endpoints-rotate-key", || {
        Op::new()
            .describe(
                "A new device key, shown only here; the old one stops working at once. The body may be empty; \
                 `legacy_keyless` sets or clears the flag.",
            )
            .body(Body {
                required: false,
                content: vec![("application/json", schema_of::<room_admin::RotateKey>)],
                example: None,
            })
            .example(json!({"legacy_keyless": false}))
            .reply(200, "The endpoint and its new device key", schema_of::<room_admin::EndpointWithKey>)
    }),
    ("admin-runs-list", || {
        Op::new()
            .query(&[
                QueryParam { name: "room", description: "Only this room's runs.", schema: string },
                QueryParam { name: "status", description: "Only runs with this status.", schema: run_status },
            ])
            .store_page(page_of::<Run>)
    }),
    ("admin-runs-abort", || {
        Op::new()
            .describe("As the stuck-run job does: a full refund and an abort command to the device.")
            .reply(200, "The run", schema_of::<Run>)
            .errors(&[409, 503])
    }),
    ("notifications-list", || {
        Op::new()
            .query(&[QueryParam { name: "unread", description: "Only unread notifications.", schema: boolean_text }])
            .store_page(page_of::<inbox::InboxItem>)
    }),
    ("notifications-unread-count", || Op::new().reply(200, "Unread notifications", schema_of::<inbox::Count>)),
    ("notifications-read", || Op::new().reply(200, "The notification, read", schema_of::<inbox::InboxItem>)),
    ("notifications-read-all", || Op::new().reply(200, "How many were marked read", schema_of::<inbox::Marked>)),
    ("dev-outbox", || {
        Op::new()
            .describe("What the log providers sent (email, SMS, Telegram), newest first; dev mode only, else 404.")
            .reply(200, "The outbox", schema_of::<inbox::Outbox>)
            .errors(&[404])
    }),
    ("admin-notifications-get", || {
        Op::new().reply(200, "Per-channel delivery records", schema_of::<inbox::Deliveries>)
    }),
    ("admin-bank-import", || {
        Op::new()
            .describe(
                "Without a body, the transactions since the last import; with `from` and `to`, a backfill by period.",
            )
            .body(Body {
                required: false,
                content: vec![("application/json", schema_of::<bank::ImportBody>)],
                example: None,
            })
            .example(json!({"from": "2026-01-01", "to": "2026-01-31"}))
            .reply(200, "What was fetched and queued", schema_of::<ImportReport>)
            .errors(&[409, 429, 502])
    }),
    ("admin-bank-statements", || {
        Op::new()
            .describe("A Fio JSON statement (`application/json`) or a camt.053 statement (`application/xml`).")
            .body(Body {
                required: true,
                content: vec![("application/json", any_object), ("application/xml", xml_text)],
                example: None,
            })
            .reply(202, "Queued for crediting", schema_of::<bank::Queued>)
    }),
    ("admin-bank-payments", || {
        Op::new()
            .query(&[
                QueryParam { name: "status", description: "valid or invalid.", schema: payment_status },
                QueryParam { name: "room", description: "Only this room's payments.", schema: string },
                QueryParam {
                    name: "reason",
                    description: "Only invalid payments with this reason.",
                    schema: invalid_reason,
                },
                QueryParam { name: "from", description: "Booked on or after (YYYY-MM-DD).", schema: date },
                QueryParam { name: "to", description: "Booked on or before (YYYY-MM-DD).", schema: date },
            ])
            .store_page(page_of::<bank::PaymentView>)
    }),
    ("admin-bank-assign", || {
        Op::new()
            .describe("Credits an invalid payment to a room, once.")
            .json(schema_of::<bank::AssignBody>)
            .example(json!({"room": "12345"}))
            .reply(200, "The payment", schema_of::<bank::PaymentView>)
            .errors(&[409])
    }),
    ("admin-bank-status", || Op::new().reply(200, "Import state and queue depths", schema_of::<bank::StatusView>)),
    ("admin-bank-redrive", || {
        Op::new().reply(200, "Dead-lettered transactions moved back to the queue", schema_of::<bank::Moved>)
    }),
    ("api-schema", || {
        Op::new()
            .query(&[QueryParam { name: "format", description: "json (default) or yaml.", schema: schema_format }])
            .reply(200, "This document (JSON, or YAML with ?format=yaml)", any_object)
            .media(&["application/json", "application/yaml"])
            .errors(&[400])
    }),
    ("devices-list", || {
        Op::new()
            .describe("The caller's locks (every lock for an admin), newest first.")
            .page(numbered_page_of::<locks::Summary>)
    }),
    ("devices-create", || {
        Op::new()
            .describe("Registers a lock and provisions its thing; the credentials are in this answer only.")
            .json(schema_of::<locks::NewLockBody>)
            .example(json!({"name": "Back Door", "device_id": "DEF789GHI012", "location": "Home - Back Entrance"}))
            .reply(201, "The lock with its credentials", schema_of::<locks::Detail>)
            .errors(&[503])
    }),
    ("devices-get", || Op::new().reply(200, "The lock", schema_of::<locks::Detail>)),
    ("devices-update", || {
        Op::new()
            .json(schema_of::<locks::LockChanges>)
            .example(json!({"name": "Front Door", "location": "Home - Main Entrance"}))
            .reply(200, "The lock", schema_of::<locks::Detail>)
    }),
    ("devices-patch", || {
        Op::new().json(schema_of::<locks::LockChanges>).example(json!({"name": "Front Door"})).reply(
            200,
            "The lock",
            schema_of::<locks::Detail>,
        )
    }),
    ("devices-delete", || {
        Op::new()
            .describe("Publishes a final unlock command, revokes the lock's credentials and removes it.")
            .empty(204, "Removed")
            .errors(&[503])
    }),
    ("devices-lock", lock_command),
    ("devices-unlock", lock_command),
    ("devices-status", || Op::new().reply(200, "The lock's live status", schema_of::<locks::Status>)),
    ("devices-battery", || Op::new().reply(200, "Battery level and the latest readings", schema_of::<locks::Battery>)),
    ("devices-logs", || Op::new().store_page(page_of::<locks::LogView>)),
    ("devices-settings-get", || Op::new().reply(200, "The settings", schema_of::<locks::SettingsView>)),
    ("devices-settings-put", || {
        Op::new()
            .json(schema_of::<locks::SettingsChanges>)
            .example(json!({"auto_lock_enabled": true, "auto_lock_delay": 60, "notifications_enabled": false}))
            .reply(200, "The settings", schema_of::<locks::SettingsView>)
    }),
    ("devices-rotate-keys", || {
        Op::new().reply(200, "New credentials; the old ones stop working", schema_of::<locks::Rotated>).errors(&[503])
    }),
    ("devices-firmware", || {
        Op::new()
            .json(schema_of::<locks::FirmwareBody>)
            .example(json!({"firmware_url": "https://fw.example.com/lock-1.3.0.bin", "version": "1.3.0"}))
            .reply(200, "Sent on the lock's ota topic", schema_of::<locks::FirmwareSent>)
            .errors(&[503])
    }),
    ("security-alerts-list", || Op::new().store_page(page_of::<alerts::AlertView>)),
    ("security-alerts-unresolved", || Op::new().store_page(page_of::<alerts::AlertView>)),
    ("security-alerts-resolve", || {
        Op::new()
            .body(Body {
                required: false,
                content: vec![("application/json", schema_of::<alerts::ResolveBody>)],
                example: Some(json!({"notes": "False alarm - user forgot PIN"})),
            })
            .reply(200, "Resolved", schema_of::<alerts::Resolved>)
            .errors(&[409])
    }),
    ("api-docs", || Op::new().reply(200, "Swagger UI (HTML)", html).media(&["text/html"])),
    ("api-redoc", || Op::new().reply(200, "ReDoc (HTML)", html).media(&["text/html"])),
];

fn lock_command() -> Op {
    Op::new()
        .describe("Publishes the command on the lock's command topic; the lock's response completes its log entry.")
        .body(Body {
            required: false,
            content: vec![("application/json", schema_of::<locks::CommandBody>)],
            example: Some(json!({"pin_code": "123456"})),
        })
        .reply(200, "The command was sent", schema_of::<locks::CommandSent>)
        .errors(&[503])
}

fn health() -> Op {
    Op::new()
        .reply(200, "The service is up", schema_of::<Health>)
        .reply_example(json!({"status": "healthy", "service": "premises", "version": "0.1.0"}))
}

/// The description of one function's operation.
pub fn describe(name: &str) -> Option<Op> {
    OPERATIONS.iter().find(|(n, _)| *n == name).map(|(_, op)| op())
}
