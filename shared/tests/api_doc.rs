//! The API document against the catalog: every HTTP route is documented and
//! nothing else is; every operation is described; the committed
//! `docs/openapi.json` is what `premises openapi` prints now.

use std::collections::BTreeSet;

use serde_json::Value;
use shared::api_doc;
use shared::catalog;
use shared::platform::function::{Auth, ErrorShape};

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn catalog_routes() -> BTreeSet<(String, String)> {
    catalog::functions()
        .iter()
        .filter_map(|f| f.route().map(|r| (r.method.to_ascii_lowercase(), r.path.to_string())))
        .collect()
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.clone(), path.clone()));
            }
        }
    }
    routes
}

/// What one document gets wrong about the catalog's routes, both ways.
fn route_mismatches(doc: &Value) -> Vec<String> {
    let (catalog, documented) = (catalog_routes(), document_routes(doc));
    let mut out: Vec<String> = catalog
        .difference(&documented)
        .map(|(m, p)| format!("catalog route {} {p} is missing from the document", m.to_uppercase()))
        .collect();
    out.extend(
        documented
            .difference(&catalog)
            .map(|(m, p)| format!("the document names {} {p}, which the catalog lacks", m.to_uppercase())),
    );
    out
}

fn committed() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_catalog_route_is_in_the_document_and_nothing_else() {
    let mismatches = route_mismatches(&api_doc::document());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn the_committed_document_names_exactly_the_catalog_routes() {
    let mismatches = route_mismatches(&committed());
    assert!(
        mismatches.is_empty(),
        "docs/openapi.json: {mismatches:#?}\nregenerate: cargo run -- openapi > docs/openapi.json"
    );
}

#[test]
fn a_route_the_catalog_lacks_fails_the_check() {
    let mut doc = api_doc::document();
    doc["paths"]["/api/v1/nowhere/"] = serde_json::json!({"get": {"responses": {}}});
    let mismatches = route_mismatches(&doc);
    assert!(mismatches.iter().any(|m| m.contains("GET /api/v1/nowhere/")), "{mismatches:#?}");
    let mut doc = api_doc::document();
    doc["paths"].as_object_mut().unwrap().remove("/health/");
    let mismatches = route_mismatches(&doc);
    assert!(mismatches.iter().any(|m| m.contains("GET /health/ is missing")), "{mismatches:#?}");
}

#[test]
fn the_committed_document_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("PREMISES_BLESS").is_some() {
        std::fs::write(&path, api_doc::document_json()).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text == api_doc::document_json(),
        "docs/openapi.json is stale; regenerate it with `make generated` (PREMISES_BLESS=1 cargo test -p shared --test api_doc)"
    );
}

#[test]
fn every_http_function_has_a_described_operation_and_is_tagged_with_its_module() {
    let doc = api_doc::document();
    let undescribed: Vec<&str> =
        catalog::functions().iter().filter(|f| f.route().is_some_and(|r| r.doc.is_none())).map(|f| f.name).collect();
    assert!(undescribed.is_empty(), "add .doc(…) next to these functions' handlers: {undescribed:?}");
    for module in catalog::MODULES {
        for f in module.functions {
            let Some(route) = f.route() else { continue };
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(op["tags"], serde_json::json!([module.name]), "{}", f.name);
        }
    }
    let tags: Vec<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tags, ["health", "docs", "identity", "appliances", "notifications", "bank", "locks", "security"]);
}

#[test]
fn every_operation_has_a_summary_a_success_response_and_its_error_shape() {
    let doc = api_doc::document();
    for f in catalog::functions() {
        let Some(route) = f.route() else { continue };
        let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
        assert_eq!(op["operationId"], f.name);
        assert_eq!(op["summary"], f.summary, "{}", f.name);
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{}: no responses", f.name));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{}: no 2xx response", f.name);
        if let Auth::Bearer { .. } = route.auth {
            assert_eq!(op["security"], serde_json::json!([{"bearerAuth": []}]), "{}", f.name);
            assert!(responses.contains_key("401"), "{}: no 401", f.name);
        }
        let error_schema = match route.errors {
            ErrorShape::Detail => "#/components/schemas/Error",
            ErrorShape::Envelope => "#/components/schemas/EnvelopeError",
        };
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('4')) {
            assert_eq!(response["content"]["application/json"]["schema"]["$ref"], error_schema, "{} {status}", f.name);
        }
    }
}

fn refs<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc = api_doc::document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "dangling $ref {r}");
    }
}

#[test]
fn the_document_is_openapi_3_1_with_the_seed_examples() {
    let doc = api_doc::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let challenge = &doc["paths"]["/api/auth/challenge/"]["post"]["requestBody"]["content"]["application/json"];
    assert_eq!(challenge["example"], serde_json::json!({"room_num": 12345, "endpoint_id": 1}));
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}
