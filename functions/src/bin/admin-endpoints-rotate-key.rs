#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::ADMIN_ENDPOINTS_ROTATE_KEY).await
}
