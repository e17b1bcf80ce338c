//! Over-long ids (issue "Security", item 6): a 3,000-character id anywhere in a path is a 404
//! (no item can have it) and never reaches the store, where DynamoDB would refuse the key with
//! a 500. Every catalog route with a path parameter is tried, as an admin, on both stores.

use reqwest::{Client, StatusCode};
use serde_json::json;
use shared::catalog::functions;

use crate::helpers::{Backend, Server, call};
use crate::identity::{ADMIN_ENV, admin_access};

crate::on_both_stores!(a_three_thousand_character_id_in_any_path_is_404_not_500);

async fn a_three_thousand_character_id_in_any_path_is_404_not_500(backend: Backend) {
    let server = Server::start_with_env(&backend, ADMIN_ENV).await;
    let client = Client::new();
    let admin = admin_access(&client, &server).await;
    let long = "a".repeat(3000);
    let mut tried = 0;
    for f in functions() {
        let Some(route) = f.route() else { continue };
        let (method, path) = (&route.method, &route.path);
        if !path.contains('{') {
            continue;
        }
        let path: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { long.as_str() } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let body = (*method != "GET" && *method != "DELETE").then(|| json!({}));
        let (status, answer) = call(&client, &server.base, method, &path, Some(&admin), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{} {method}: {answer}", f.name);
        tried += 1;
    }
    assert!(tried >= 20, "only {tried} routes with path parameters");
}
