#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("users-profile-put").await
}
