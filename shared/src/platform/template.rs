//! The SAM template, generated from the modules: a root stack (`template.yaml`: the table, the
//! queues, the device policy, the HTTP API and every setting) and one nested stack per module
//! (`stacks/<module>.yaml`: its functions with their routes, event sources, topic rules and
//! least-privilege policies, from what each function declares it [`Uses`]).
//!
//! The files are committed; `make generated` rewrites them and a test fails when they are stale.
//! A module stack receives from the root only the values it references, as parameters. HTTP
//! routes are declared on the root's one API (`AWS::ApiGatewayV2::Route` with its integration and
//! invoke permission) rather than as SAM `HttpApi` events, which can only name an API in the
//! same template.

use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};

use crate::platform::function::{Function, Module, Param, Trigger, Uses};
use crate::platform::queue::QueueDef;
use crate::platform::store::TableDef;

/// Where the module stacks live, relative to the root template.
pub const STACKS_DIR: &str = "stacks";
/// The package of the function binaries, relative to a module stack (`sam build` runs
/// `cargo lambda build --bin <name>` there; the workspace root's default member is the local stack).
const CODE_URI: &str = "../functions";
/// CloudFormation's limit of resources per stack.
pub const MAX_RESOURCES: usize = 500;

const HEADER: &str =
    "# Generated from the modules by `make generated` (shared/src/platform/template.rs): do not edit.\n";

/// One generated file: its path from the repository root and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub text: String,
    /// Resources once SAM has expanded it (each function brings its role, each schedule an
    /// EventBridge rule and permission, each queue consumer an event source mapping).
    pub resources: usize,
}

/// The settings of the platform itself, beside those the modules declare.
const LOG_LEVEL: Param =
    Param::global("LogLevel", "RUST_LOG", "RUST_LOG filter of every function (for example info or info,shared=debug).")
        .default("info");
const CORS_ORIGIN: Param = Param::global(
    "CorsOrigin",
    "PREMISES_CORS_ORIGIN",
    "Origin allowed by CORS (the API's CorsConfiguration and PREMISES_CORS_ORIGIN).",
)
.default("*");
const IOT_ENDPOINT: Param = Param::global(
    "IotDataEndpoint",
    "PREMISES_IOT_ENDPOINT",
    "AWS IoT data endpoint (aws iot describe-endpoint --endpoint-type iot:Data-ATS); empty means the functions look it up with DescribeEndpoint on first use.",
)
.default("");
const MEMORY_SIZE: &str = "FunctionMemorySize";

/// Every file of the template: the root first, then one stack per module.
pub fn render(modules: &[&Module], table: &TableDef) -> Vec<File> {
    let queues: Vec<&QueueDef> = modules.iter().flat_map(|m| m.queues.iter()).collect();
    let functions = || modules.iter().flat_map(|m| m.functions.iter());
    let device_prefixes: Vec<&str> = dedup(functions().flat_map(|f| f.uses).filter_map(|u| match u {
        Uses::Publish(prefix) => Some(*prefix),
        _ => None,
    }));
    let shadows = functions().any(|f| f.uses.contains(&Uses::Shadow));
    let settings: Vec<&Param> =
        [&LOG_LEVEL, &CORS_ORIGIN, &IOT_ENDPOINT].into_iter().chain(modules.iter().flat_map(|m| m.params)).collect();

    let mut stacks = Vec::new();
    let mut root_resources = Mapping::new();
    root_resources.insert("Table".into(), table_resource(table));
    for q in &queues {
        let (queue, dlq) = queue_resources(q);
        root_resources.insert(queue_id(q).into(), queue);
        root_resources.insert(dlq_id(q).into(), dlq);
    }
    let device_policy = !device_prefixes.is_empty() || shadows;
    if device_policy {
        root_resources.insert("DevicePolicy".into(), device_policy_resource(&device_prefixes, shadows));
    }
    for (id, resource) in api_resources() {
        root_resources.insert(id.into(), resource);
    }
    for module in modules {
        let mut stack = Stack::default();
        let mut resources = Mapping::new();
        let globals = globals(&mut stack, &settings, &queues, device_policy);
        for f in module.functions {
            function_resources(&mut stack, &mut resources, f);
        }
        let path = format!("{STACKS_DIR}/{}.yaml", module.name);
        let mut doc = Mapping::new();
        doc.insert("AWSTemplateFormatVersion".into(), s("2010-09-09"));
        doc.insert("Transform".into(), s("AWS::Serverless-2016-10-31"));
        doc.insert(
            "Description".into(),
            s(&format!("Premises module {}: {} (nested in template.yaml)", module.name, module.description)),
        );
        doc.insert("Parameters".into(), Value::Mapping(stack.declarations()));
        doc.insert("Globals".into(), globals);
        let count = expanded_count(&resources, module.functions);
        doc.insert("Resources".into(), Value::Mapping(resources));
        let mut props = Mapping::new();
        props.insert("Location".into(), s(&path));
        props.insert("Parameters".into(), Value::Mapping(stack.values()));
        root_resources.insert(
            format!("{}Stack", pascal(module.name)).into(),
            typed("AWS::Serverless::Application", Value::Mapping(props)),
        );
        stacks.push(File { path, text: yaml(doc), resources: count });
    }

    let mut doc = Mapping::new();
    doc.insert("AWSTemplateFormatVersion".into(), s("2010-09-09"));
    doc.insert("Transform".into(), s("AWS::Serverless-2016-10-31"));
    doc.insert(
        "Description".into(),
        s("Premises: one arm64 Lambda per function, one nested stack per module (stacks/), one HTTP API, one DynamoDB table."),
    );
    let mut params = Mapping::new();
    params.insert(
        MEMORY_SIZE.into(),
        map([
            ("Type", s("Number")),
            ("Default", Value::Number(256.into())),
            ("MinValue", Value::Number(128.into())),
            ("MaxValue", Value::Number(10240.into())),
            ("Description", s("MB per function; CPU share grows with it, which shortens cold starts.")),
        ]),
    );
    for p in &settings {
        params.insert(p.name.into(), param_declaration(p, true));
    }
    doc.insert("Parameters".into(), Value::Mapping(params));
    let count = root_resources.len();
    doc.insert("Resources".into(), Value::Mapping(root_resources));
    doc.insert(
        "Outputs".into(),
        map([
            (
                "ApiUrl",
                map([
                    ("Description", s("Base URL of the HTTP API")),
                    ("Value", sub("https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")),
                ]),
            ),
            ("TableName", map([("Description", s("The DynamoDB table (PREMISES_TABLE)")), ("Value", r("Table"))])),
        ]),
    );
    let mut files = vec![File { path: "template.yaml".into(), text: yaml(doc), resources: count }];
    files.extend(stacks);
    files
}

// ------------------------------------------------------------------ a stack

/// The parameters a module stack receives from the root, in first-use order.
#[derive(Default)]
struct Stack {
    params: Vec<(String, Value, Value)>,
}

impl Stack {
    /// `!Ref name` in the module stack, declared once, passed `value` by the root.
    fn need(&mut self, name: &str, value: Value, declaration: Value) -> Value {
        if !self.params.iter().any(|(n, ..)| n == name) {
            self.params.push((name.to_string(), value, declaration));
        }
        r(name)
    }

    /// A value of a root resource.
    fn resource(&mut self, name: &str, value: Value, description: &str) -> Value {
        self.need(name, value, map([("Type", s("String")), ("Description", s(description))]))
    }

    fn setting(&mut self, p: &Param) -> Value {
        self.need(p.name, r(p.name), param_declaration(p, false))
    }

    fn declarations(&self) -> Mapping {
        self.params.iter().map(|(n, _, d)| (s(n), d.clone())).collect()
    }

    fn values(&self) -> Mapping {
        self.params.iter().map(|(n, v, _)| (s(n), v.clone())).collect()
    }

    fn table(&mut self) -> Value {
        self.resource("TableName", r("Table"), "The table (root stack)")
    }

    fn queue_url(&mut self, id: &str) -> Value {
        self.resource(&format!("{id}Url"), r(id), "A queue's URL (root stack)")
    }

    fn queue_arn(&mut self, id: &str) -> Value {
        self.resource(&format!("{id}Arn"), get_att(id, "Arn"), "A queue's ARN (root stack)")
    }

    fn queue_name(&mut self, id: &str) -> Value {
        self.resource(&format!("{id}Name"), get_att(id, "QueueName"), "A queue's name (root stack)")
    }
}

fn param_declaration(p: &Param, root: bool) -> Value {
    let mut m = Mapping::new();
    m.insert("Type".into(), s("String"));
    if p.secret {
        m.insert("NoEcho".into(), Value::Bool(true));
    }
    if let (true, Some(default)) = (root, p.default) {
        m.insert("Default".into(), s(default));
    }
    if let Some(pattern) = p.pattern {
        m.insert("AllowedPattern".into(), s(pattern));
    }
    m.insert("Description".into(), s(p.description));
    Value::Mapping(m)
}

/// What every function of a stack shares: runtime, memory, timeout, logs and the environment
/// every process's configuration reads.
fn globals(stack: &mut Stack, settings: &[&Param], queues: &[&QueueDef], device_policy: bool) -> Value {
    let mut env = Mapping::new();
    env.insert("PREMISES_ENV".into(), s("prod"));
    env.insert("PREMISES_TABLE".into(), stack.table());
    for p in settings.iter().filter(|p| p.global) {
        if let Some(var) = p.env {
            env.insert(var.into(), stack.setting(p));
        }
    }
    if device_policy {
        let policy = stack.resource("DevicePolicyName", r("DevicePolicy"), "The device policy (root stack)");
        env.insert("PREMISES_IOT_POLICY".into(), policy);
    }
    for q in queues {
        env.insert(queue_url_var(q.name).into(), stack.queue_url(&queue_id(q)));
        env.insert(queue_url_var(&q.dlq_name()).into(), stack.queue_url(&dlq_id(q)));
    }
    let memory = stack.need(
        MEMORY_SIZE,
        r(MEMORY_SIZE),
        map([("Type", s("Number")), ("Description", s("MB per function (root stack)"))]),
    );
    map([(
        "Function",
        map([
            ("Runtime", s("provided.al2023")),
            ("Architectures", seq([s("arm64")])),
            ("Handler", s("bootstrap")),
            ("MemorySize", memory),
            ("Timeout", Value::Number(Function::DEFAULT_TIMEOUT_SECS.into())),
            ("LoggingConfig", map([("LogFormat", s("JSON"))])),
            ("Environment", map([("Variables", Value::Mapping(env))])),
        ]),
    )])
}

fn function_resources(stack: &mut Stack, resources: &mut Mapping, f: &Function) {
    let id = format!("{}Function", pascal(f.name));
    let mut props = Mapping::new();
    props.insert("CodeUri".into(), s(CODE_URI));
    props.insert("Description".into(), s(f.summary));
    if f.timeout_secs != Function::DEFAULT_TIMEOUT_SECS {
        props.insert("Timeout".into(), Value::Number(f.timeout_secs.into()));
    }
    let mut env = Mapping::new();
    for u in f.uses {
        if let Uses::Param(p) = u
            && let Some(var) = p.env
        {
            env.insert(var.into(), stack.setting(p));
        }
    }
    if !env.is_empty() {
        props.insert("Environment".into(), map([("Variables", Value::Mapping(env))]));
    }
    let policies = policies(stack, f.uses);
    if !policies.is_empty() {
        props.insert("Policies".into(), Value::Sequence(policies));
    }
    let mut extra = Vec::new();
    match &f.trigger {
        Trigger::Http(route) => {
            let api = stack.resource("ApiId", r("Api"), "The HTTP API (root stack)");
            let integration = format!("{}Integration", pascal(f.name));
            extra.push((
                integration.clone(),
                typed(
                    "AWS::ApiGatewayV2::Integration",
                    map([
                        ("ApiId", api.clone()),
                        ("IntegrationType", s("AWS_PROXY")),
                        ("IntegrationUri", get_att(&id, "Arn")),
                        ("PayloadFormatVersion", s("2.0")),
                    ]),
                ),
            ));
            extra.push((
                format!("{}Route", pascal(f.name)),
                typed(
                    "AWS::ApiGatewayV2::Route",
                    map([
                        ("ApiId", api),
                        ("RouteKey", s(&format!("{} {}", route.method, route.path))),
                        ("Target", sub(&format!("integrations/${{{integration}}}"))),
                    ]),
                ),
            ));
            let source = format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiId}}/*/{}{}",
                route.method,
                arn_path(route.path)
            );
            extra.push((
                format!("{}Permission", pascal(f.name)),
                invoke_permission(&id, "apigateway.amazonaws.com", sub(&source), false),
            ));
        }
        Trigger::Queue { queue, batch_size, .. } => {
            let arn = stack.queue_arn(&queue_id(queue));
            let event = typed(
                "SQS",
                map([
                    ("Queue", arn),
                    ("BatchSize", Value::Number((*batch_size).into())),
                    ("FunctionResponseTypes", seq([s("ReportBatchItemFailures")])),
                ]),
            );
            props.insert("Events".into(), map([("Queue", event)]));
        }
        Trigger::Schedule { expression, param, .. } => {
            let schedule = match param {
                Some(p) => stack.setting(p),
                None => s(expression),
            };
            let event = typed("Schedule", map([("Schedule", schedule)]));
            props.insert("Events".into(), map([("Schedule", event)]));
        }
        Trigger::IotRule { sql, .. } => {
            let rule = format!("{}Rule", pascal(f.name));
            extra.push((
                rule.clone(),
                typed(
                    "AWS::IoT::TopicRule",
                    map([(
                        "TopicRulePayload",
                        map([
                            ("Sql", s(sql)),
                            ("AwsIotSqlVersion", s("2016-03-23")),
                            ("RuleDisabled", Value::Bool(false)),
                            ("Actions", seq([map([("Lambda", map([("FunctionArn", get_att(&id, "Arn"))]))])])),
                        ]),
                    )]),
                ),
            ));
            let permission = invoke_permission(&id, "iot.amazonaws.com", get_att(&rule, "Arn"), true);
            extra.push((format!("{rule}Permission"), permission));
        }
    }
    let function = map([
        ("Type", s("AWS::Serverless::Function")),
        ("Metadata", map([("BuildMethod", s("rust-cargolambda")), ("BuildProperties", map([("Binary", s(f.name))]))])),
        ("Properties", Value::Mapping(props)),
    ]);
    resources.insert(id.into(), function);
    for (extra_id, resource) in extra {
        resources.insert(extra_id.into(), resource);
    }
}

/// `{Type: ty, Properties: properties}`: a resource, or a SAM function's event.
fn typed(ty: &str, properties: Value) -> Value {
    map([("Type", s(ty)), ("Properties", properties)])
}

fn invoke_permission(function_id: &str, principal: &str, source_arn: Value, source_account: bool) -> Value {
    let mut props = Mapping::new();
    props.insert("Action".into(), s("lambda:InvokeFunction"));
    props.insert("FunctionName".into(), r(function_id));
    props.insert("Principal".into(), s(principal));
    props.insert("SourceArn".into(), source_arn);
    if source_account {
        props.insert("SourceAccount".into(), r("AWS::AccountId"));
    }
    typed("AWS::Lambda::Permission", Value::Mapping(props))
}

/// A route path as it appears in an execute-api ARN: each `{param}` is `*`.
fn arn_path(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "*" } else { seg }).collect::<Vec<_>>().join("/")
}

/// The IAM policies of what a function uses: SAM policy templates for the table and queue
/// sends, one statement list for the rest.
fn policies(stack: &mut Stack, uses: &[Uses]) -> Vec<Value> {
    let mut policies = Vec::new();
    let mut statements = Vec::new();
    let iot_arn = |rest: &str| sub(&format!("arn:${{AWS::Partition}}:iot:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"));
    for u in uses {
        match u {
            Uses::TableRead => {
                policies.push(map([("DynamoDBReadPolicy", map([("TableName", stack.table())]))]));
            }
            Uses::TableWrite => {
                policies.push(map([("DynamoDBCrudPolicy", map([("TableName", stack.table())]))]));
            }
            Uses::Send(q) => {
                let name = stack.queue_name(&queue_id(q));
                policies.push(map([("SQSSendMessagePolicy", map([("QueueName", name)]))]));
            }
            Uses::QueueDepth(q) => {
                let arns = seq([stack.queue_arn(&queue_id(q)), stack.queue_arn(&dlq_id(q))]);
                statements.push(allow(s("sqs:GetQueueAttributes"), arns));
            }
            Uses::DrainDeadLetters(q) => {
                let arn = stack.queue_arn(&dlq_id(q));
                statements.push(allow(seq([s("sqs:ReceiveMessage"), s("sqs:DeleteMessage")]), arn));
            }
            Uses::Publish(prefix) => statements.push(allow(s("iot:Publish"), iot_arn(&format!("topic/{prefix}/*")))),
            Uses::Shadow => statements.push(allow(s("iot:UpdateThingShadow"), iot_arn("thing/*"))),
            Uses::Provision => statements.push(allow(
                seq([
                    "iot:CreateThing",
                    "iot:DeleteThing",
                    "iot:CreateKeysAndCertificate",
                    "iot:UpdateCertificate",
                    "iot:DeleteCertificate",
                    "iot:AttachPolicy",
                    "iot:DetachPolicy",
                    "iot:ListAttachedPolicies",
                    "iot:AttachThingPrincipal",
                    "iot:DetachThingPrincipal",
                    "iot:ListThingPrincipals",
                    "iot:DescribeEndpoint",
                ]
                .map(s)),
                s("*"),
            )),
            Uses::Deliver => statements.push(allow(seq([s("ses:SendEmail"), s("sns:Publish")]), s("*"))),
            Uses::Param(_) => {}
        }
    }
    if !statements.is_empty() {
        policies.push(map([("Statement", Value::Sequence(statements))]));
    }
    policies
}

fn allow(action: Value, resource: Value) -> Value {
    map([("Effect", s("Allow")), ("Action", action), ("Resource", resource)])
}

/// The resources of a module stack once SAM has expanded its functions.
fn expanded_count(resources: &Mapping, functions: &[Function]) -> usize {
    let implied: usize = functions
        .iter()
        .map(|f| {
            1 + match f.trigger {
                Trigger::Schedule { .. } => 2,
                Trigger::Queue { .. } => 1,
                _ => 0,
            }
        })
        .sum();
    resources.len() + implied
}

// ------------------------------------------------------------ root resources

fn table_resource(table: &TableDef) -> Value {
    let attr = |name: &str| map([("AttributeName", s(name)), ("AttributeType", s("S"))]);
    let key = |pk: &str, sk: &str| {
        seq([
            map([("AttributeName", s(pk)), ("KeyType", s("HASH"))]),
            map([("AttributeName", s(sk)), ("KeyType", s("RANGE"))]),
        ])
    };
    let mut attrs = vec![attr(table.pk), attr(table.sk)];
    for ix in table.indexes {
        attrs.push(attr(ix.pk));
        attrs.push(attr(ix.sk));
    }
    let indexes = table.indexes.iter().map(|ix| {
        map([
            ("IndexName", s(ix.name)),
            ("KeySchema", key(ix.pk, ix.sk)),
            ("Projection", map([("ProjectionType", s("ALL"))])),
        ])
    });
    map([
        ("Type", s("AWS::DynamoDB::Table")),
        ("DeletionPolicy", s("Retain")),
        ("UpdateReplacePolicy", s("Retain")),
        (
            "Properties",
            map([
                ("BillingMode", s("PAY_PER_REQUEST")),
                ("AttributeDefinitions", Value::Sequence(attrs)),
                ("KeySchema", key(table.pk, table.sk)),
                ("GlobalSecondaryIndexes", seq(indexes)),
                (
                    "TimeToLiveSpecification",
                    map([("AttributeName", s(table.ttl_attribute)), ("Enabled", Value::Bool(true))]),
                ),
                ("PointInTimeRecoverySpecification", map([("PointInTimeRecoveryEnabled", Value::Bool(true))])),
                ("SSESpecification", map([("SSEEnabled", Value::Bool(true))])),
            ]),
        ),
    ])
}

/// A queue and its dead-letter queue (which keeps a message 14 days).
fn queue_resources(q: &QueueDef) -> (Value, Value) {
    let suffix = if q.fifo { ".fifo" } else { "" };
    let mut queue = Mapping::new();
    queue.insert("QueueName".into(), sub(&format!("${{AWS::StackName}}-{}{suffix}", q.name)));
    if q.fifo {
        queue.insert("FifoQueue".into(), Value::Bool(true));
    }
    queue.insert("VisibilityTimeout".into(), Value::Number(q.visibility_timeout_secs.into()));
    queue.insert("MessageRetentionPeriod".into(), Value::Number(q.retention_secs.into()));
    queue.insert("SqsManagedSseEnabled".into(), Value::Bool(true));
    queue.insert(
        "RedrivePolicy".into(),
        map([
            ("deadLetterTargetArn", get_att(&dlq_id(q), "Arn")),
            ("maxReceiveCount", Value::Number(q.max_receive_count.into())),
        ]),
    );
    let mut dlq = Mapping::new();
    dlq.insert("QueueName".into(), sub(&format!("${{AWS::StackName}}-{}{suffix}", q.dlq_name())));
    if q.fifo {
        dlq.insert("FifoQueue".into(), Value::Bool(true));
    }
    dlq.insert("MessageRetentionPeriod".into(), Value::Number(QueueDef::MAX_RETENTION_SECS.into()));
    dlq.insert("SqsManagedSseEnabled".into(), Value::Bool(true));
    let queue_resource = |props| typed("AWS::SQS::Queue", Value::Mapping(props));
    (queue_resource(queue), queue_resource(dlq))
}

/// Attached to every provisioned device certificate (`PREMISES_IOT_POLICY`): the thing-name
/// policy variable pins a certificate to its own client id and to its own topics under each
/// prefix a function publishes to (and its shadow). `${!…}` is a literal `${…}` in `!Sub`,
/// expanded by AWS IoT.
fn device_policy_resource(prefixes: &[&str], shadows: bool) -> Value {
    let arn = |kind: &str, rest: &str| {
        sub(&format!("arn:${{AWS::Partition}}:iot:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{rest}"))
    };
    let thing = "${!iot:Connection.Thing.ThingName}";
    let mut topics: Vec<String> = prefixes.iter().map(|p| format!("{p}/{thing}/*")).collect();
    if shadows {
        topics.push(format!("$aws/things/{thing}/shadow/*"));
    }
    let statement = seq([
        map([
            ("Effect", s("Allow")),
            ("Action", s("iot:Connect")),
            ("Resource", arn("client", thing)),
            ("Condition", map([("Bool", map([("iot:Connection.Thing.IsAttached", s("true"))]))])),
        ]),
        allow(seq([s("iot:Publish"), s("iot:Receive")]), seq(topics.iter().map(|t| arn("topic", t)))),
        allow(s("iot:Subscribe"), seq(topics.iter().map(|t| arn("topicfilter", t)))),
    ]);
    typed(
        "AWS::IoT::Policy",
        map([
            ("PolicyName", sub("${AWS::StackName}-device")),
            ("PolicyDocument", map([("Version", s("2012-10-17")), ("Statement", statement)])),
        ]),
    )
}

/// The one HTTP API every module stack adds its routes to, its auto-deployed default stage
/// and the stage's access log.
fn api_resources() -> Vec<(&'static str, Value)> {
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map(s);
    let api = typed(
        "AWS::ApiGatewayV2::Api",
        map([
            ("Name", sub("${AWS::StackName}-http")),
            ("ProtocolType", s("HTTP")),
            (
                "CorsConfiguration",
                map([
                    ("AllowOrigins", seq([r("CorsOrigin")])),
                    ("AllowMethods", seq(methods)),
                    ("AllowHeaders", seq([s("authorization"), s("content-type")])),
                    ("MaxAge", Value::Number(600.into())),
                ]),
            ),
        ]),
    );
    let format = concat!(
        r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","#,
        r#""requestTime":"$context.requestTime","routeKey":"$context.routeKey","#,
        r#""status":"$context.status","responseLength":"$context.responseLength","#,
        r#""latencyMs":"$context.responseLatency","integrationError":"$context.integrationErrorMessage"}"#
    );
    let stage = typed(
        "AWS::ApiGatewayV2::Stage",
        map([
            ("ApiId", r("Api")),
            ("StageName", s("$default")),
            ("AutoDeploy", Value::Bool(true)),
            ("AccessLogSettings", map([("DestinationArn", get_att("ApiAccessLogs", "Arn")), ("Format", s(format))])),
        ]),
    );
    let logs = typed("AWS::Logs::LogGroup", map([("RetentionInDays", Value::Number(30.into()))]));
    vec![("Api", api), ("ApiStage", stage), ("ApiAccessLogs", logs)]
}

// ------------------------------------------------------------------- naming

/// `health` → `Health`, `api-v1-health` → `ApiV1Health`: logical ids.
pub fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|first| first.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn queue_id(q: &QueueDef) -> String {
    pascal(q.name) + "Queue"
}

fn dlq_id(q: &QueueDef) -> String {
    pascal(q.name) + "DeadLetterQueue"
}

/// `bank-transactions` → `PREMISES_QUEUE_URL_BANK_TRANSACTIONS` (what the configuration reads).
fn queue_url_var(name: &str) -> String {
    format!("PREMISES_QUEUE_URL_{}", name.to_ascii_uppercase().replace('-', "_"))
}

// -------------------------------------------------------------------- YAML

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn tagged(tag: &str, value: Value) -> Value {
    Value::Tagged(Box::new(TaggedValue { tag: Tag::new(tag), value }))
}

/// `!Ref id`.
fn r(id: &str) -> Value {
    tagged("Ref", s(id))
}

/// `!GetAtt id.attr`.
fn get_att(id: &str, attr: &str) -> Value {
    tagged("GetAtt", s(&format!("{id}.{attr}")))
}

/// `!Sub text`.
fn sub(text: &str) -> Value {
    tagged("Sub", s(text))
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Mapping(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

fn seq(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Sequence(items.into_iter().collect())
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn yaml(doc: Mapping) -> String {
    let body = serde_yaml_ng::to_string(&Value::Mapping(doc)).expect("a template serializes");
    // YAML 1.1 readers (cfn-lint's among them) would take an unquoted version for a date.
    let body = body.replacen("AWSTemplateFormatVersion: 2010-09-09", "AWSTemplateFormatVersion: '2010-09-09'", 1);
    format!("{HEADER}{body}")
}
