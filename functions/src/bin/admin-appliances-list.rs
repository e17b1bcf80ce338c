#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::appliances::admin::ADMIN_APPLIANCES_LIST).await
}
