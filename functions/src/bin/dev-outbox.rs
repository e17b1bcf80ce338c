#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::notifications::inbox::DEV_OUTBOX).await
}
