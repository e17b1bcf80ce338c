#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::notifications::inbox::ADMIN_NOTIFICATIONS_GET).await
}
