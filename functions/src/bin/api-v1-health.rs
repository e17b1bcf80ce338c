#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::API_V1_HEALTH).await
}
