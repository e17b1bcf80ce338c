#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("appliance-auth-challenge").await
}
