//! The API reference as `cargo run` serves it: the document (JSON and YAML)
//! equals what `premises openapi` prints, and both readers carry their
//! JavaScript inline, referring to no other host.

use serde_json::Value;

use crate::helpers::{Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_serves_the_document_swagger_ui_and_redoc_without_other_hosts() {
    let server = Server::start(&Backend::Embedded).await;
    let client = reqwest::Client::new();

    let r = client.get(server.url("/api/schema/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served: Value = r.json().await.unwrap();
    assert_eq!(served, shared::api_doc::document());
    assert_eq!(served["openapi"], "3.1.0");

    let r = client.get(server.url("/api/schema/?format=yaml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    let yaml: Value = serde_yaml_ng::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(yaml, served);

    let r = client.get(server.url("/api/schema/?format=xml")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["code"].as_str(), body["field"].as_str()), (Some("invalid_choice"), Some("format")));

    for (path, marker) in [("/api/docs/", "SwaggerUIBundle"), ("/api/redoc/", "Redoc.init")] {
        let r = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains(marker) && html.contains("/api/schema/"), "{path}");
        for external in ["<script src=\"http", "<link href=\"http", "<link rel=\"stylesheet\" href=\"http"] {
            assert!(!html.contains(external), "{path} refers to another host ({external})");
        }
    }
}
