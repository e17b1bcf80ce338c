//! The Lambda entry points: one runner per trigger kind, chosen by the
//! function's trigger. A binary in `functions/` is `run(&<module>::<NAME>)`, which links
//! that function's handler and no other.

use std::convert::Infallible;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::App;
use crate::platform::function::{Function, Trigger};
use crate::platform::{http, telemetry};

/// Runs one function under the Lambda runtime.
pub async fn run(function: &'static Function) -> Result<(), lambda_runtime::Error> {
    telemetry::init_lambda();
    let app = App::from_env().await.map_err(|e| format!("{e:#}"))?;
    match &function.trigger {
        Trigger::Http(_) => {
            lambda_http::run(lambda_http::service_fn(move |req| async move {
                Ok::<_, Infallible>(http::dispatch(app, function, req).await)
            }))
            .await
        }
        Trigger::Queue { handler, .. } => {
            let handler = *handler;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
                Ok::<_, Infallible>(handler(app, event.payload).await)
            }))
            .await
        }
        Trigger::IotRule { handler, .. } => {
            let handler = *handler;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
                handler(app, event.payload).await.map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
            }))
            .await
        }
        Trigger::Schedule { handler, .. } => {
            let handler = *handler;
            lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
                handler(app, event.payload).await.map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
            }))
            .await
        }
    }
}
