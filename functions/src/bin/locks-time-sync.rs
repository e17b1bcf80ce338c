#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::locks::jobs::LOCKS_TIME_SYNC).await
}
