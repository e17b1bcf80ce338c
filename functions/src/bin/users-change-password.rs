#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::USERS_CHANGE_PASSWORD).await
}
