//! The API reference: an OpenAPI 3.1 document built from the catalog's modules (every
//! HTTP function's method, path, summary, auth requirement and error shape, tagged with its
//! module) and from each route's [`Op`] (its query parameters, request body and responses,
//! whose schemas `utoipa` derives from the handlers' own types, declared next to the handler).
//! Nothing in it is written by hand; `docs/openapi.json` is its output
//! (`premises openapi`), checked fresh by a test.
//!
//! The document, Swagger UI and ReDoc are served by the `api-schema`,
//! `api-docs` and `api-redoc` functions ([`pages`]). Only binaries that call
//! [`install`] link them, so the other Lambda bootstraps stay small.

pub mod pages;

use serde_json::{Value, json};

use crate::catalog;
use crate::platform::doc::{Components, Op};
use crate::platform::function::{Auth, ErrorShape, Function, Module, Route};

pub use pages::install;

/// The docs module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "docs",
    description: "The API reference: this OpenAPI document, Swagger UI and ReDoc",
    functions: &[pages::API_SCHEMA, pages::API_DOCS, pages::API_REDOC],
    queues: &[],
    params: &[],
};

/// `{"detail", "code", "field"?}`: the error body of most seeds (DRF style).
fn detail_error() -> Value {
    json!({
        "type": "object",
        "required": ["detail", "code"],
        "properties": {
            "detail": {"type": "string", "description": "A human message."},
            "code": {"type": "string", "description": "A stable machine code, e.g. `not_authenticated`, `invalid`."},
            "field": {"type": "string", "description": "The field or parameter at fault (bad input only)."},
        },
        "example": {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"},
    })
}

/// `{"success": false, "message", "code", "field"?}`: Circle Time's error envelope (seed 001).
fn envelope_error() -> Value {
    json!({
        "type": "object",
        "required": ["success", "message", "code"],
        "properties": {
            "success": {"const": false},
            "message": {"type": "string"},
            "code": {"type": "string"},
            "field": {"type": "string"},
        },
        "example": {"success": false, "message": "No active account found with the given credentials", "code": "authentication_failed"},
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        400 => "Bad input: the body, a parameter or a field is invalid (`field` names it)",
        401 => "Not authenticated, or the credentials or token are invalid",
        402 => "Insufficient funds",
        403 => "Authenticated without the role this operation needs",
        404 => "Not found",
        409 => "Conflict with the current state",
        413 => "The body is too large",
        429 => "Too many requests; `Retry-After` says when to try again",
        502 => "An upstream service failed",
        503 => "Busy; retry",
        _ => "Error",
    }
}

/// The path parameters of a route: the `{name}` segments.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

/// What a path parameter looks like: tags are 8 hex digits, room keys and endpoint ids short ids.
fn path_param_schema(name: &str) -> Value {
    match name {
        "rfid" => json!({"type": "string", "pattern": "^[0-9A-Fa-f]{8}$"}),
        "key" | "endpoint_id" => json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
        _ => json!({"type": "string"}),
    }
}

/// One operation: the route's facts plus its [`Op`] description.
fn operation(module: &Module, function: &Function, route: &Route, op: &Op, components: &mut Components) -> Value {
    let path = route.path;
    let mut parameters: Vec<Value> = path_params(path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_param_schema(name)}))
        .collect();
    for q in op.query {
        parameters.push(json!({
            "name": q.name, "in": "query", "required": false, "description": q.description, "schema": (q.schema)(),
        }));
    }
    for h in op.headers {
        parameters.push(json!({
            "name": h.name, "in": "header", "required": false, "description": h.description, "schema": (h.schema)(),
        }));
    }
    if op.paginated {
        parameters
            .push(json!({"name": "page", "in": "query", "required": false, "description": "1-based page number.",
            "schema": {"type": "integer", "minimum": 1}}));
        parameters.push(json!({"name": "page_size", "in": "query", "required": false,
            "description": "Items per page (at most 100).", "schema": {"type": "integer", "minimum": 1}}));
    }
    if op.cursors {
        parameters.push(json!({"name": "cursor", "in": "query", "required": false,
            "description": "The items after this one, as `next` carries it (page numbers alone reach the first 1,000 items).",
            "schema": {"type": "string", "maxLength": 2048}}));
        parameters.push(json!({"name": "before", "in": "query", "required": false,
            "description": "The items before this one, as `previous` carries it.",
            "schema": {"type": "string", "maxLength": 2048}}));
    }

    let mut responses = serde_json::Map::new();
    for r in &op.responses {
        let mut response = json!({"description": r.description});
        if let Some(schema) = r.schema {
            let schema = schema(components);
            let mut content = serde_json::Map::new();
            for media in r.media {
                let mut media_type = json!({"schema": schema});
                if let (Some(example), true) = (&r.example, *media == "application/json") {
                    media_type["example"] = example.clone();
                }
                content.insert(media.to_string(), media_type);
            }
            response["content"] = Value::Object(content);
        }
        responses.insert(r.status.to_string(), response);
    }
    let mut errors: Vec<u16> = op.errors.to_vec();
    if op.body.is_some() {
        errors.extend([400, 413]);
    }
    if op.paginated {
        errors.extend([400, 404]);
    }
    if !path_params(path).is_empty() {
        errors.push(404);
    }
    match route.auth {
        Auth::Bearer { roles, .. } => {
            errors.push(401);
            if !roles.is_empty() {
                errors.push(403);
            }
        }
        Auth::Public | Auth::Device => {}
    }
    errors.sort_unstable();
    errors.dedup();
    let error_ref = match route.errors {
        ErrorShape::Detail => "#/components/schemas/Error",
        ErrorShape::Envelope => "#/components/schemas/EnvelopeError",
    };
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({"description": reason(status), "content": {"application/json": {"schema": {"$ref": error_ref}}}}),
        );
    }

    let mut description = op.description.to_string();
    let security = match route.auth {
        Auth::Public => json!([]),
        Auth::Device => {
            description.push_str(
                "\n\nAuthorised by the appliance tokens in the body (challenge, access and start tokens), not by a header.",
            );
            json!([])
        }
        Auth::Bearer { roles, .. } => {
            if !roles.is_empty() {
                let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                description.push_str(&format!("\n\nRole: {}.", roles.join(" or ")));
            }
            json!([{"bearerAuth": []}])
        }
    };
    let mut operation = json!({
        "operationId": function.name,
        "summary": function.summary,
        "tags": [module.name],
        "security": security,
        "responses": responses,
    });
    let description = description.trim();
    if !description.is_empty() {
        operation["description"] = json!(description);
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = &op.body {
        operation["requestBody"] = body.render(components);
    }
    operation
}

/// The whole document, from the modules' HTTP functions. A function without an [`Op`]
/// still appears, with its summary and error shape (a test insists every one has an `Op`).
pub fn document() -> Value {
    let mut components = Components::new();
    let mut paths = serde_json::Map::new();
    let mut tags = Vec::new();
    for module in catalog::MODULES {
        let mut tagged = false;
        for function in module.functions {
            let Some(route) = function.route() else { continue };
            let op = route.doc.map(|doc| doc()).unwrap_or_default();
            let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
            item[route.method.to_ascii_lowercase()] = operation(module, function, route, &op, &mut components);
            tagged = true;
        }
        if tagged {
            tags.push(json!({"name": module.name, "description": module.description}));
        }
    }
    components.insert("Error".into(), detail_error());
    components.insert("EnvelopeError".into(), envelope_error());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Premises API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One backend for shared buildings: rooms with prepaid balances and pay-per-use appliances, \
                bank top-ups, smart locks and their security alerts, accounts (email and password, phone OTP, RFID), \
                notifications. Generated from the \
                modules' functions and the handlers' types.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token from a login (`access`)."},
            },
        },
    })
}

/// The document as `docs/openapi.json` holds it: pretty JSON and a final newline.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}
