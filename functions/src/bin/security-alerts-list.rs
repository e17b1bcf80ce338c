#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::security::alerts::SECURITY_ALERTS_LIST).await
}
