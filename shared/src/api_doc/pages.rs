//! `GET /api/schema/` (the document, JSON or `?format=yaml`), `GET /api/docs/`
//! (Swagger UI) and `GET /api/redoc/` (ReDoc). The two pages carry their
//! JavaScript inline (from the `aide` crate's bundled Swagger UI and ReDoc),
//! so they render with no network beyond this API.
//!
//! The catalog's handlers reach the renderer through [`install`]: a binary
//! that never calls it (every Lambda but the three docs functions) links
//! neither the document builder nor the 2.5 MB of assets.

use std::sync::{LazyLock, OnceLock};

use ::http::{StatusCode, header};
use lambda_http::Body;

use crate::App;
use crate::platform::doc::{Op, QueryParam, any_object, html, schema_format};
use crate::platform::function::Function;
use crate::platform::http::{self, ApiError, Request, Response, query_param};

/// One of the three documentation routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Schema,
    SwaggerUi,
    Redoc,
}

type Renderer = fn(Page, &Request) -> http::Result<Response>;

static RENDERER: OnceLock<Renderer> = OnceLock::new();

/// Links the document and the pages into this binary and lets the docs routes serve them.
/// The docs functions' binaries and the local stack call it at start.
pub fn install() {
    RENDERER.get_or_init(|| render);
}

pub const API_SCHEMA: Function = Function::http(
    "api-schema",
    "GET",
    "/api/schema/",
    "The API reference as an OpenAPI 3.1 document (JSON, or YAML with ?format=yaml)",
    |app, req| Box::pin(schema(app, req)),
)
.doc(|| {
    Op::new()
        .query(&[QueryParam { name: "format", description: "json (default) or yaml.", schema: schema_format }])
        .reply(200, "This document (JSON, or YAML with ?format=yaml)", any_object)
        .media(&["application/json", "application/yaml"])
        .errors(&[400])
});

/// `GET /api/schema/`.
pub async fn schema(app: &'static App, req: Request) -> http::Result<Response> {
    serve(app, req, Page::Schema).await
}

pub const API_DOCS: Function =
    Function::http("api-docs", "GET", "/api/docs/", "The API reference in Swagger UI", |app, req| {
        Box::pin(swagger_ui(app, req))
    })
    .doc(|| Op::new().reply(200, "Swagger UI (HTML)", html).media(&["text/html"]));

/// `GET /api/docs/`.
pub async fn swagger_ui(app: &'static App, req: Request) -> http::Result<Response> {
    serve(app, req, Page::SwaggerUi).await
}

pub const API_REDOC: Function =
    Function::http("api-redoc", "GET", "/api/redoc/", "The API reference in ReDoc", |app, req| {
        Box::pin(redoc(app, req))
    })
    .doc(|| Op::new().reply(200, "ReDoc (HTML)", html).media(&["text/html"]));

/// `GET /api/redoc/`.
pub async fn redoc(app: &'static App, req: Request) -> http::Result<Response> {
    serve(app, req, Page::Redoc).await
}

async fn serve(_app: &'static App, req: Request, page: Page) -> http::Result<Response> {
    match RENDERER.get() {
        Some(render) => render(page, &req),
        None => Err(ApiError::not_found("docs_not_installed", "The API reference is not served by this function.")),
    }
}

/// Where the pages load the document from.
const SCHEMA_URL: &str = "/api/schema/";

static JSON: LazyLock<String> = LazyLock::new(super::document_json);
static YAML: LazyLock<String> = LazyLock::new(|| serde_yaml_ng::to_string(&super::document()).unwrap_or_default());
static SWAGGER_UI: LazyLock<String> =
    LazyLock::new(|| aide::swagger::Swagger::new(SCHEMA_URL).with_title("Premises API: Swagger UI").html());
static REDOC: LazyLock<String> =
    LazyLock::new(|| aide::redoc::Redoc::new(SCHEMA_URL).with_title("Premises API: ReDoc").html());

fn render(page: Page, req: &Request) -> http::Result<Response> {
    match page {
        Page::Schema => match query_param(req, "format").filter(|f| !f.is_empty()) {
            None | Some("json") => Ok(text(JSON.as_str(), "application/json")),
            Some("yaml") => Ok(text(YAML.as_str(), "application/yaml")),
            Some(other) => Err(ApiError::invalid_field(
                "format",
                "invalid_choice",
                format!("\"{other}\" is not a valid choice (json, yaml)."),
            )),
        },
        Page::SwaggerUi => Ok(text(SWAGGER_UI.as_str(), "text/html; charset=utf-8")),
        Page::Redoc => Ok(text(REDOC.as_str(), "text/html; charset=utf-8")),
    }
}

fn text(body: &str, content_type: &'static str) -> Response {
    let mut response = ::http::Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}
