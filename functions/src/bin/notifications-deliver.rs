#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::notifications::deliver::NOTIFICATIONS_DELIVER).await
}
