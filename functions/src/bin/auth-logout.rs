#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::handlers::AUTH_LOGOUT).await
}
