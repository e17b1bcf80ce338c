#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("users-change-password").await
}
