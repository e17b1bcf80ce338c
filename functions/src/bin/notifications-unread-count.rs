#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::notifications::inbox::NOTIFICATIONS_UNREAD_COUNT).await
}
