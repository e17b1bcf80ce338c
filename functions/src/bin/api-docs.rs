#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    // The docs functions link the API reference; the other functions do not.
    shared::api_doc::install();
    shared::platform::lambda::run(&shared::api_doc::pages::API_DOCS).await
}
