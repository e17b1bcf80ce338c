#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::handlers::AUTH_TOKEN_REFRESH).await
}
