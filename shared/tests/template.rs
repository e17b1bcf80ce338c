//! `template.yaml` against the catalog, the queues and the table definition.
//!
//! [`check`] lists every mismatch both ways; the first test runs it on the real
//! files, the others prove it notices what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};
use shared::catalog;
use shared::platform::function::{Function, Trigger};
use shared::platform::queue::QueueDef;
use shared::platform::store::{TABLE, TableDef};

const RUNTIME: &str = "provided.al2023";
const ARCHITECTURE: &str = "arm64";
const HANDLER: &str = "bootstrap";
const BUILD_METHOD: &str = "rust-cargolambda";
/// The package holding every function binary. Not the workspace root: its
/// default-members is the local stack, where `cargo lambda build --bin <name>`
/// (what `sam build` runs) finds no function binary.
const CODE_URI: &str = "functions";

// ------------------------------------------------------------------ helpers

fn load_template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `health` → `Health`, `api-v1-health` → `ApiV1Health`.
fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|first| first.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn function_id(name: &str) -> String {
    pascal(name) + "Function"
}

fn queue_id(name: &str) -> String {
    pascal(name) + "Queue"
}

fn dlq_id(name: &str) -> String {
    pascal(name) + "DeadLetterQueue"
}

/// `bank-transactions` → `PREMISES_QUEUE_URL_BANK_TRANSACTIONS` (what `Config` reads).
fn queue_url_var(name: &str) -> String {
    format!("PREMISES_QUEUE_URL_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// A CloudFormation intrinsic function: the short form (`!Ref X`, a YAML tag)
/// or the long form (`{Ref: X}`, `{Fn::GetAtt: …}`), as (name without `Fn::`, argument).
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_string(), &t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.trim_start_matches("Fn::").to_string(), arg))
        }
        _ => None,
    }
}

/// A literal string (not an intrinsic function).
fn literal(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// A literal number, written as a number or a string.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A literal boolean, written as a boolean or a string.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The logical id of `!Ref X`.
fn ref_to(v: Option<&Value>) -> Option<&str> {
    match intrinsic(v?)? {
        (name, arg) if name == "Ref" => literal(Some(arg)),
        _ => None,
    }
}

/// `!GetAtt X.Attr` (or `[X, Attr]`) as (X, Attr).
fn get_att(v: Option<&Value>) -> Option<(String, String)> {
    let (name, arg) = intrinsic(v?)?;
    if name != "GetAtt" {
        return None;
    }
    match arg {
        Value::String(s) => s.split_once('.').map(|(a, b)| (a.to_string(), b.to_string())),
        Value::Sequence(seq) if seq.len() == 2 => {
            Some((literal(seq.first())?.to_string(), literal(seq.get(1))?.to_string()))
        }
        _ => None,
    }
}

/// A string written literally or as `!Sub "…"` (the template text, unsubstituted).
fn sub_or_literal(v: Option<&Value>) -> Option<&str> {
    let v = v?;
    match intrinsic(v) {
        Some((name, arg)) if name == "Sub" => literal(Some(arg)),
        Some(_) => None,
        None => literal(Some(v)),
    }
}

/// The function a `!Ref F`, `!GetAtt F.Arn` or `!Sub "${F.Arn}"` points at.
fn function_target(v: Option<&Value>) -> Option<String> {
    if let Some(id) = ref_to(v) {
        return Some(id.to_string());
    }
    if let Some((id, attr)) = get_att(v) {
        return (attr == "Arn").then_some(id);
    }
    None
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_sequence).map(|s| s.iter().filter_map(|x| literal(Some(x))).collect()).unwrap_or_default()
}

fn resources(template: &Value) -> Vec<(&str, &Value)> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?, v))).collect())
        .unwrap_or_default()
}

fn resources_of_type<'t>(template: &'t Value, ty: &str) -> Vec<(&'t str, &'t Value)> {
    resources(template).into_iter().filter(|(_, r)| literal(r.get("Type")) == Some(ty)).collect()
}

fn props(resource: &Value) -> Option<&Value> {
    resource.get("Properties")
}

/// The function's events as (event id, type, properties).
fn events(resource: &Value) -> Vec<(&str, &str, Option<&Value>)> {
    props(resource)
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, e)| Some((k.as_str()?, literal(e.get("Type")).unwrap_or("?"), e.get("Properties"))))
                .collect()
        })
        .unwrap_or_default()
}

// -------------------------------------------------------------------- check

/// Every difference between `template` and the catalog's functions, queues and table.
fn check(template: &Value, functions: &[Function], table: &TableDef, queues: &[QueueDef]) -> Vec<String> {
    let mut out = Vec::new();
    let globals = template.get("Globals").and_then(|g| g.get("Function"));
    let table_id = check_table(template, table, &mut out);
    check_globals(globals, table_id.as_deref(), &mut out);
    check_device_policy(template, globals, &mut out);
    check_queues(template, globals, queues, &mut out);

    let apis = resources_of_type(template, "AWS::Serverless::HttpApi");
    if apis.len() != 1 {
        out.push(format!("expected one AWS::Serverless::HttpApi, found {}", apis.len()));
    }
    let api_id = apis.first().map(|(id, _)| *id);

    // The template's functions by binary.
    let mut by_binary: BTreeMap<&str, (&str, &Value)> = BTreeMap::new();
    for (id, r) in resources_of_type(template, "AWS::Serverless::Function") {
        let Some(binary) =
            literal(r.get("Metadata").and_then(|m| m.get("BuildProperties")).and_then(|b| b.get("Binary")))
        else {
            out.push(format!("template function {id} has no Metadata.BuildProperties.Binary"));
            continue;
        };
        if let Some((other, _)) = by_binary.insert(binary, (id, r)) {
            out.push(format!("template functions {other} and {id} both build binary {binary}"));
        }
        if functions.iter().all(|f| f.name != binary) {
            out.push(format!("template function {id} (binary {binary}) has no catalog entry"));
        }
    }

    for f in functions {
        let Some(&(id, r)) = by_binary.get(f.name) else {
            out.push(format!("catalog function {} has no template function (binary {})", f.name, f.name));
            continue;
        };
        let mut bad = |what: String| out.push(format!("{} ({id}): {what}", f.name));
        if id != function_id(f.name) {
            bad(format!("logical id should be {}", function_id(f.name)));
        }
        let meta = r.get("Metadata");
        if literal(meta.and_then(|m| m.get("BuildMethod"))) != Some(BUILD_METHOD) {
            bad(format!("Metadata.BuildMethod should be {BUILD_METHOD}"));
        }
        if literal(props(r).and_then(|p| p.get("CodeUri"))) != Some(CODE_URI) {
            bad(format!("CodeUri should be {CODE_URI} (the package of the function binaries)"));
        }
        for key in ["Runtime", "Architectures", "Handler"] {
            if props(r).and_then(|p| p.get(key)).is_some() {
                bad(format!("{key} is set per function; Globals.Function sets it for all"));
            }
        }
        let evs = events(r);
        let expected_type = match &f.trigger {
            Trigger::Http(_) => Some("HttpApi"),
            Trigger::Queue { .. } => Some("SQS"),
            Trigger::Schedule { .. } => Some("Schedule"),
            Trigger::IotRule { .. } => None,
        };
        for (ev, ty, _) in &evs {
            if Some(*ty) != expected_type {
                bad(format!("event {ev} of type {ty} does not match the catalog trigger {:?}", f.trigger));
            }
        }
        if expected_type.is_some() && evs.len() != 1 {
            bad(format!("expected exactly one {} event, found {}", expected_type.unwrap_or_default(), evs.len()));
        }
        let ev_props = evs.first().and_then(|(_, _, p)| *p);
        let ev_prop = |key: &str| ev_props.and_then(|p| p.get(key));
        match &f.trigger {
            Trigger::Http(route) => {
                let (method, path) = (&route.method, &route.path);
                if literal(ev_prop("Path")) != Some(path) {
                    bad(format!("HttpApi Path should be {path}, is {:?}", literal(ev_prop("Path"))));
                }
                if literal(ev_prop("Method")).map(str::to_ascii_uppercase).as_deref() != Some(method) {
                    bad(format!("HttpApi Method should be {method}, is {:?}", literal(ev_prop("Method"))));
                }
                if api_id.is_some() && ref_to(ev_prop("ApiId")) != api_id {
                    bad(format!("HttpApi ApiId should be !Ref {}", api_id.unwrap_or_default()));
                }
                // Least privilege: a GET changes nothing, so it may only read the table.
                let policies = props(r).and_then(|p| p.get("Policies")).and_then(Value::as_sequence);
                let writes = policies.into_iter().flatten().any(|p| p.get("DynamoDBCrudPolicy").is_some());
                if *method == "GET" && writes {
                    bad("a GET route gets DynamoDBReadPolicy, not DynamoDBCrudPolicy".into());
                }
            }
            Trigger::Queue { queue, batch_size, .. } => {
                if get_att(ev_prop("Queue")) != Some((queue_id(queue.name), "Arn".into())) {
                    bad(format!("SQS event Queue should be !GetAtt {}.Arn", queue_id(queue.name)));
                }
                if number(ev_prop("BatchSize")) != Some(u64::from(*batch_size)) {
                    bad(format!("SQS event BatchSize should be {batch_size}"));
                }
                if !strings(ev_prop("FunctionResponseTypes")).contains(&"ReportBatchItemFailures") {
                    bad("SQS event FunctionResponseTypes should be [ReportBatchItemFailures]".into());
                }
                let timeout = number(props(r).and_then(|p| p.get("Timeout")))
                    .or_else(|| number(globals.and_then(|g| g.get("Timeout"))));
                if timeout.is_some_and(|t| t > u64::from(queue.visibility_timeout_secs)) {
                    bad(format!(
                        "Timeout {} exceeds the visibility timeout {} of queue {}",
                        timeout.unwrap_or_default(),
                        queue.visibility_timeout_secs,
                        queue.name
                    ));
                }
            }
            Trigger::Schedule { expression, .. } => {
                // Literal, or `!Ref` of a parameter (operators may change it) whose default it is.
                let schedule = ev_prop("Schedule");
                let written = literal(schedule).or_else(|| {
                    let parameter = template.get("Parameters")?.get(ref_to(schedule)?)?;
                    literal(parameter.get("Default"))
                });
                if written != Some(expression) {
                    bad(format!(
                        "Schedule should be {expression} (or !Ref a parameter defaulting to it), is {written:?}"
                    ));
                }
            }
            Trigger::IotRule { .. } => {}
        }
    }

    check_iot_rules(template, functions, &by_binary, &mut out);
    out
}

fn check_globals(globals: Option<&Value>, table_id: Option<&str>, out: &mut Vec<String>) {
    let Some(g) = globals else {
        out.push("Globals.Function is missing".into());
        return;
    };
    if literal(g.get("Runtime")) != Some(RUNTIME) {
        out.push(format!("Globals.Function.Runtime should be {RUNTIME}"));
    }
    if strings(g.get("Architectures")) != [ARCHITECTURE] {
        out.push(format!("Globals.Function.Architectures should be [{ARCHITECTURE}]"));
    }
    if literal(g.get("Handler")) != Some(HANDLER) {
        out.push(format!("Globals.Function.Handler should be {HANDLER}"));
    }
    if literal(g.get("LoggingConfig").and_then(|l| l.get("LogFormat"))) != Some("JSON") {
        out.push("Globals.Function.LoggingConfig.LogFormat should be JSON".into());
    }
    let vars = g.get("Environment").and_then(|e| e.get("Variables"));
    if table_id.is_some() && ref_to(vars.and_then(|v| v.get("PREMISES_TABLE"))) != table_id {
        out.push(format!(
            "Globals.Function.Environment PREMISES_TABLE should be !Ref {}",
            table_id.unwrap_or_default()
        ));
    }
}

/// Provisioning attaches the policy `PREMISES_IOT_POLICY` names to device certificates.
fn check_device_policy(template: &Value, globals: Option<&Value>, out: &mut Vec<String>) {
    let var = globals
        .and_then(|g| g.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("PREMISES_IOT_POLICY"));
    let policies = resources_of_type(template, "AWS::IoT::Policy");
    if !policies.iter().any(|(id, _)| Some(*id) == ref_to(var)) {
        out.push(
            "Globals.Function.Environment PREMISES_IOT_POLICY should be !Ref the AWS::IoT::Policy of device \
             certificates"
                .into(),
        );
    }
}

/// A key schema as (HASH attribute, RANGE attribute).
fn key_schema(v: Option<&Value>) -> (Option<&str>, Option<&str>) {
    let mut hash = None;
    let mut range = None;
    for k in v.and_then(Value::as_sequence).into_iter().flatten() {
        match literal(k.get("KeyType")) {
            Some("HASH") => hash = literal(k.get("AttributeName")),
            Some("RANGE") => range = literal(k.get("AttributeName")),
            _ => {}
        }
    }
    (hash, range)
}

/// Checks the one table; returns its logical id.
fn check_table(template: &Value, table: &TableDef, out: &mut Vec<String>) -> Option<String> {
    let tables = resources_of_type(template, "AWS::DynamoDB::Table");
    let [(id, t)] = tables.as_slice() else {
        out.push(format!("expected one AWS::DynamoDB::Table, found {}", tables.len()));
        return None;
    };
    let mut bad = |what: String| out.push(format!("table {id}: {what}"));
    let p = props(t);
    let get = |k: &str| p.and_then(|p| p.get(k));

    if key_schema(get("KeySchema")) != (Some(table.pk), Some(table.sk)) {
        bad(format!("KeySchema should be {} HASH, {} RANGE", table.pk, table.sk));
    }

    let mut want_attrs: BTreeSet<&str> = [table.pk, table.sk].into();
    let declared: BTreeMap<&str, &Value> = get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|i| Some((literal(i.get("IndexName"))?, i)))
        .collect();
    for index in table.indexes {
        want_attrs.extend([index.pk, index.sk]);
        let Some(i) = declared.get(index.name) else {
            bad(format!("global secondary index {} is missing", index.name));
            continue;
        };
        if key_schema(i.get("KeySchema")) != (Some(index.pk), Some(index.sk)) {
            bad(format!("{} KeySchema should be {} HASH, {} RANGE", index.name, index.pk, index.sk));
        }
        if literal(i.get("Projection").and_then(|p| p.get("ProjectionType"))) != Some("ALL") {
            bad(format!("{} Projection should be ALL", index.name));
        }
    }
    for name in declared.keys() {
        if table.indexes.iter().all(|i| i.name != *name) {
            bad(format!("global secondary index {name} is not in TABLE"));
        }
    }

    let attrs: BTreeMap<&str, Option<&str>> = get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((literal(a.get("AttributeName"))?, literal(a.get("AttributeType")))))
        .collect();
    for a in &want_attrs {
        if attrs.get(a) != Some(&Some("S")) {
            bad(format!("AttributeDefinitions should declare {a} as S"));
        }
    }
    for a in attrs.keys() {
        if !want_attrs.contains(a) {
            bad(format!("AttributeDefinitions declares {a}, which is no key of TABLE"));
        }
    }

    let ttl = get("TimeToLiveSpecification");
    if literal(ttl.and_then(|t| t.get("AttributeName"))) != Some(table.ttl_attribute)
        || boolean(ttl.and_then(|t| t.get("Enabled"))) != Some(true)
    {
        bad(format!("TimeToLiveSpecification should enable {}", table.ttl_attribute));
    }
    if literal(get("BillingMode")) != Some("PAY_PER_REQUEST") {
        bad("BillingMode should be PAY_PER_REQUEST".into());
    }
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        if literal(t.get(policy)) != Some("Retain") {
            bad(format!("{policy} should be Retain"));
        }
    }
    Some(id.to_string())
}

fn check_queues(template: &Value, globals: Option<&Value>, queues: &[QueueDef], out: &mut Vec<String>) {
    let sqs: BTreeMap<&str, &Value> = resources_of_type(template, "AWS::SQS::Queue").into_iter().collect();
    let vars = globals.and_then(|g| g.get("Environment")).and_then(|e| e.get("Variables"));
    let suffix = |q: &QueueDef| if q.fifo { ".fifo" } else { "" };
    let mut known = BTreeSet::new();
    for q in queues {
        let (qid, did) = (queue_id(q.name), dlq_id(q.name));
        known.extend([qid.clone(), did.clone()]);
        let mut bad = |what: String| out.push(format!("queue {}: {what}", q.name));
        let Some(queue) = sqs.get(qid.as_str()) else {
            bad(format!("no AWS::SQS::Queue {qid}"));
            continue;
        };
        let p = props(queue);
        let get = |k: &str| p.and_then(|p| p.get(k));
        let want_name = format!("${{AWS::StackName}}-{}{}", q.name, suffix(q));
        if sub_or_literal(get("QueueName")) != Some(want_name.as_str()) {
            bad(format!("{qid} QueueName should be !Sub \"{want_name}\""));
        }
        if number(get("VisibilityTimeout")) != Some(u64::from(q.visibility_timeout_secs)) {
            bad(format!("{qid} VisibilityTimeout should be {}", q.visibility_timeout_secs));
        }
        if boolean(get("FifoQueue")).unwrap_or(false) != q.fifo {
            bad(format!("{qid} FifoQueue should be {}", q.fifo));
        }
        let redrive = get("RedrivePolicy");
        if get_att(redrive.and_then(|r| r.get("deadLetterTargetArn"))) != Some((did.clone(), "Arn".into())) {
            bad(format!(
                "{qid} has no dead-letter queue: RedrivePolicy.deadLetterTargetArn should be !GetAtt {did}.Arn"
            ));
        }
        if number(redrive.and_then(|r| r.get("maxReceiveCount"))) != Some(u64::from(q.max_receive_count)) {
            bad(format!("{qid} RedrivePolicy.maxReceiveCount should be {}", q.max_receive_count));
        }
        match sqs.get(did.as_str()) {
            None => bad(format!("no dead-letter queue {did} ({})", q.dlq_name())),
            Some(dlq) => {
                let want = format!("${{AWS::StackName}}-{}{}", q.dlq_name(), suffix(q));
                if sub_or_literal(props(dlq).and_then(|p| p.get("QueueName"))) != Some(want.as_str()) {
                    bad(format!("{did} QueueName should be !Sub \"{want}\""));
                }
                if boolean(props(dlq).and_then(|p| p.get("FifoQueue"))).unwrap_or(false) != q.fifo {
                    bad(format!("{did} FifoQueue should be {}", q.fifo));
                }
            }
        }
        let var = queue_url_var(q.name);
        if ref_to(vars.and_then(|v| v.get(var.as_str()))) != Some(qid.as_str()) {
            bad(format!("Globals.Function.Environment {var} should be !Ref {qid}"));
        }
    }
    for id in sqs.keys() {
        if !known.contains(*id) {
            out.push(format!("template queue {id} is not in the catalog's queues"));
        }
    }
}

fn check_iot_rules(
    template: &Value,
    functions: &[Function],
    by_binary: &BTreeMap<&str, (&str, &Value)>,
    out: &mut Vec<String>,
) {
    let rules = resources_of_type(template, "AWS::IoT::TopicRule");
    // (rule id, SQL, target function ids)
    let rules: Vec<(&str, Option<&str>, Vec<String>)> = rules
        .iter()
        .map(|(id, r)| {
            let payload = props(r).and_then(|p| p.get("TopicRulePayload"));
            let sql = literal(payload.and_then(|p| p.get("Sql")));
            let targets = payload
                .and_then(|p| p.get("Actions"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|a| function_target(a.get("Lambda").and_then(|l| l.get("FunctionArn"))))
                .collect();
            (*id, sql, targets)
        })
        .collect();
    let permissions: Vec<(Option<String>, Option<&str>)> = resources_of_type(template, "AWS::Lambda::Permission")
        .into_iter()
        .map(|(_, p)| {
            let p = props(p);
            (function_target(p.and_then(|p| p.get("FunctionName"))), literal(p.and_then(|p| p.get("Principal"))))
        })
        .collect();

    let iot_functions: BTreeMap<String, &str> = functions
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::IotRule { sql, .. } => {
                Some((by_binary.get(f.name).map_or(function_id(f.name), |(id, _)| id.to_string()), *sql))
            }
            _ => None,
        })
        .collect();

    for f in functions {
        let Trigger::IotRule { sql, .. } = &f.trigger else { continue };
        let id = by_binary.get(f.name).map_or(function_id(f.name), |(id, _)| id.to_string());
        let targeting: Vec<_> = rules.iter().filter(|(_, _, t)| t.contains(&id)).collect();
        if targeting.is_empty() {
            out.push(format!("{} ({id}): no AWS::IoT::TopicRule with a Lambda action on !GetAtt {id}.Arn", f.name));
        }
        for (rule, rule_sql, _) in targeting {
            if *rule_sql != Some(*sql) {
                out.push(format!("{} ({id}): topic rule {rule} Sql should be {sql:?}, is {rule_sql:?}", f.name));
            }
        }
        if !permissions
            .iter()
            .any(|(target, principal)| target.as_deref() == Some(&id) && *principal == Some("iot.amazonaws.com"))
        {
            out.push(format!("{} ({id}): no AWS::Lambda::Permission for iot.amazonaws.com on {id}", f.name));
        }
    }
    for (rule, _, targets) in &rules {
        for t in targets {
            if !iot_functions.contains_key(t) {
                out.push(format!("topic rule {rule} targets {t}, which is no IoT-rule function of the catalog"));
            }
        }
        if targets.is_empty() {
            out.push(format!("topic rule {rule} has no Lambda action"));
        }
    }
}

// ----------------------------------------------------------------- snippets

/// The YAML to paste into template.yaml for a catalog function.
fn function_snippet(f: &Function) -> String {
    let id = function_id(f.name);
    // Least privilege: health touches nothing; adjust to what the handler uses (docs/deploy.md).
    let policies = if f.name.ends_with("health") {
        ""
    } else {
        "      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n"
    };
    let mut s = format!(
        "  {id}:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildMethod: {BUILD_METHOD}\n      \
         BuildProperties:\n        Binary: {name}\n    Properties:\n      CodeUri: {CODE_URI}\n      Description: {summary}\n{policies}",
        name = f.name,
        summary = f.summary,
    );
    match &f.trigger {
        Trigger::Http(route) => {
            let (method, path) = (route.method, route.path);
            s += &format!(
                "      Events:\n        Http:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref Api\n            \
             Path: {path}\n            Method: {method}\n"
            )
        }
        Trigger::Queue { queue, batch_size, .. } => {
            s += &format!(
                "      Timeout: {timeout}\n      Events:\n        Queue:\n          Type: SQS\n          Properties:\n            \
             Queue: !GetAtt {q}.Arn\n            BatchSize: {batch_size}\n            FunctionResponseTypes:\n              \
             - ReportBatchItemFailures\n",
                timeout = queue.visibility_timeout_secs.min(900),
                q = queue_id(queue.name),
            )
        }
        Trigger::Schedule { expression, .. } => {
            s += &format!(
                "      Events:\n        Schedule:\n          Type: Schedule\n          Properties:\n            Schedule: {expression}\n"
            )
        }
        Trigger::IotRule { sql, .. } => {
            s += &format!(
                "  {p}Rule:\n    Type: AWS::IoT::TopicRule\n    Properties:\n      TopicRulePayload:\n        Sql: {sql:?}\n        \
             AwsIotSqlVersion: \"2016-03-23\"\n        RuleDisabled: false\n        Actions:\n          - Lambda:\n              \
             FunctionArn: !GetAtt {id}.Arn\n  {p}RulePermission:\n    Type: AWS::Lambda::Permission\n    Properties:\n      \
             Action: lambda:InvokeFunction\n      FunctionName: !Ref {id}\n      Principal: iot.amazonaws.com\n      \
             SourceAccount: !Ref AWS::AccountId\n      SourceArn: !GetAtt {p}Rule.Arn\n",
                p = pascal(f.name),
            )
        }
    }
    s
}

const GLOBALS_NOTE: &str = "# and under Globals.Function.Environment.Variables:";

/// The YAML to paste into template.yaml for a queue (and, under Globals, its URL variable).
fn queue_snippet(q: &QueueDef) -> String {
    let (qid, did) = (queue_id(q.name), dlq_id(q.name));
    let (fifo, suffix) = if q.fifo { ("      FifoQueue: true\n", ".fifo") } else { ("", "") };
    format!(
        "  {qid}:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub \"${{AWS::StackName}}-{name}{suffix}\"\n\
         {fifo}      VisibilityTimeout: {vt}\n      SqsManagedSseEnabled: true\n      RedrivePolicy:\n        \
         deadLetterTargetArn: !GetAtt {did}.Arn\n        maxReceiveCount: {mrc}\n  {did}:\n    Type: AWS::SQS::Queue\n    \
         Properties:\n      QueueName: !Sub \"${{AWS::StackName}}-{dlq}{suffix}\"\n{fifo}      MessageRetentionPeriod: 1209600\n      \
         SqsManagedSseEnabled: true\n{GLOBALS_NOTE}\n        {var}: !Ref {qid}\n",
        name = q.name,
        dlq = q.dlq_name(),
        vt = q.visibility_timeout_secs,
        mrc = q.max_receive_count,
        var = queue_url_var(q.name),
    )
}

// -------------------------------------------------------------------- tests

fn catalog_with(extra: Function) -> Vec<Function> {
    catalog::functions().iter().copied().chain([extra]).collect()
}

fn insert_resource(template: &mut Value, id: &str, yaml: &str) {
    let resource: Value = serde_yaml_ng::from_str(yaml).unwrap();
    let resources: &mut Mapping = template["Resources"].as_mapping_mut().unwrap();
    resources.insert(Value::from(id), resource);
}

fn mentions(mismatches: &[String], words: &[&str]) -> bool {
    mismatches.iter().any(|m| words.iter().all(|w| m.contains(w)))
}

#[test]
fn the_template_matches_the_catalog() {
    let template = load_template();
    let mismatches = check(&template, catalog::functions(), &TABLE, catalog::queues());
    if !mismatches.is_empty() {
        let mut help = String::new();
        let resources = template.get("Resources");
        for f in catalog::functions() {
            if resources.and_then(|r| r.get(function_id(f.name).as_str())).is_none() {
                help += &function_snippet(f);
            }
        }
        for q in catalog::queues() {
            if resources.and_then(|r| r.get(queue_id(q.name).as_str())).is_none() {
                help += &queue_snippet(q);
            }
        }
        panic!(
            "template.yaml does not match the catalog:\n  - {}\n\nMissing resources to paste under Resources: in template.yaml \
             (see docs/deploy.md):\n\n{help}",
            mismatches.join("\n  - ")
        );
    }
}

#[test]
fn a_catalog_entry_missing_from_the_template_fails_the_check() {
    let functions = catalog_with(Function::http("fake-thing", "GET", "/fake-thing/", "Not deployed", |_, _| {
        Box::pin(async { shared::platform::http::ok(&()) })
    }));
    let mismatches = check(&load_template(), &functions, &TABLE, catalog::queues());
    assert!(mentions(&mismatches, &["fake-thing", "no template function"]), "{mismatches:#?}");
    assert!(function_snippet(&functions[functions.len() - 1]).contains("FakeThingFunction:"));
}

#[test]
fn a_template_function_missing_from_the_catalog_fails_the_check() {
    let mut template = load_template();
    insert_resource(
        &mut template,
        "OrphanFunction",
        "Type: AWS::Serverless::Function\nMetadata:\n  BuildMethod: rust-cargolambda\n  BuildProperties:\n    Binary: orphan\n\
         Properties:\n  CodeUri: functions\n",
    );
    let mismatches = check(&template, catalog::functions(), &TABLE, catalog::queues());
    assert!(mentions(&mismatches, &["OrphanFunction", "orphan", "no catalog entry"]), "{mismatches:#?}");
}

#[test]
fn a_wrong_http_path_or_method_fails_the_check() {
    let mut template = load_template();
    let http = &mut template["Resources"]["HealthFunction"]["Properties"]["Events"]["Http"]["Properties"];
    http["Path"] = Value::from("/healthz/");
    http["Method"] = Value::from("POST");
    let mismatches = check(&template, catalog::functions(), &TABLE, catalog::queues());
    assert!(mentions(&mismatches, &["health (HealthFunction)", "Path should be /health/"]), "{mismatches:#?}");
    assert!(mentions(&mismatches, &["health (HealthFunction)", "Method should be GET"]), "{mismatches:#?}");
}

#[test]
fn a_schedule_expression_differing_from_the_catalog_fails_the_check() {
    let functions = catalog_with(Function::schedule("nightly-sweep", "Sweeps", "cron(0 3 * * ? *)", |_, _| {
        Box::pin(async { Ok(()) })
    }));
    let mut template = load_template();
    insert_resource(
        &mut template,
        "NightlySweepFunction",
        "Type: AWS::Serverless::Function\nMetadata:\n  BuildMethod: rust-cargolambda\n  BuildProperties:\n    Binary: nightly-sweep\n\
         Properties:\n  CodeUri: functions\n  Events:\n    Schedule:\n      Type: Schedule\n      Properties:\n        Schedule: rate(1 day)\n",
    );
    let mismatches = check(&template, &functions, &TABLE, catalog::queues());
    assert_eq!(mismatches.len(), 1, "{mismatches:#?}");
    assert!(mentions(&mismatches, &["nightly-sweep", "Schedule should be cron(0 3 * * ? *)"]), "{mismatches:#?}");
}

#[test]
fn a_get_route_that_may_write_the_table_fails_the_check() {
    let mut template = load_template();
    let policies = &mut template["Resources"]["AdminRoomsListFunction"]["Properties"]["Policies"][0];
    let read = policies.as_mapping_mut().unwrap().remove("DynamoDBReadPolicy").unwrap();
    policies.as_mapping_mut().unwrap().insert("DynamoDBCrudPolicy".into(), read);
    let mismatches = check(&template, catalog::functions(), &TABLE, catalog::queues());
    assert!(mentions(&mismatches, &["admin-rooms-list", "DynamoDBReadPolicy"]), "{mismatches:#?}");
}

#[test]
fn a_template_without_the_device_policy_fails_the_check() {
    let mut template = load_template();
    template["Resources"].as_mapping_mut().unwrap().remove("DevicePolicy");
    let mismatches = check(&template, catalog::functions(), &TABLE, catalog::queues());
    assert!(mentions(&mismatches, &["PREMISES_IOT_POLICY"]), "{mismatches:#?}");
}

static EXAMPLE_QUEUE: QueueDef =
    QueueDef { name: "example-jobs", visibility_timeout_secs: 60, max_receive_count: 5, fifo: false };

/// The catalog's queues and the example.
fn with_example_queue() -> Vec<QueueDef> {
    [catalog::queues(), &[EXAMPLE_QUEUE]].concat()
}

#[test]
fn a_queue_declared_as_the_snippet_says_passes_and_one_without_its_dead_letter_queue_fails() {
    let mut template = load_template();
    paste(&mut template, &queue_snippet(&EXAMPLE_QUEUE));
    let queues = with_example_queue();
    assert_eq!(check(&template, catalog::functions(), &TABLE, &queues), Vec::<String>::new());

    template["Resources"].as_mapping_mut().unwrap().remove("ExampleJobsDeadLetterQueue");
    template["Resources"]["ExampleJobsQueue"]["Properties"].as_mapping_mut().unwrap().remove("RedrivePolicy");
    let mismatches = check(&template, catalog::functions(), &TABLE, &queues);
    assert!(mentions(&mismatches, &["example-jobs", "no dead-letter queue"]), "{mismatches:#?}");
    assert!(mentions(&mismatches, &["maxReceiveCount should be 5"]), "{mismatches:#?}");
}

#[test]
fn a_queue_consumer_and_an_iot_rule_declared_as_the_snippets_say_pass() {
    let functions =
        catalog_with(Function::queue("example-import", "Imports example jobs", &EXAMPLE_QUEUE, 10, |_, _| {
            Box::pin(async { Default::default() })
        }));
    let mut functions = functions;
    functions.push(Function::iot(
        "device-telemetry",
        "Device telemetry",
        "SELECT topic(2) AS device_id, * FROM 'premises/+/telemetry'",
        |_, _| Box::pin(async { Ok(()) }),
    ));
    let mut template = load_template();
    for f in &functions[functions.len() - 2..] {
        paste(&mut template, &function_snippet(f));
    }
    paste(&mut template, &queue_snippet(&EXAMPLE_QUEUE));
    assert_eq!(check(&template, &functions, &TABLE, &with_example_queue()), Vec::<String>::new());

    // The rule's SQL drifts from the catalog.
    template["Resources"]["DeviceTelemetryRule"]["Properties"]["TopicRulePayload"]["Sql"] =
        Value::from("SELECT * FROM 'premises/+/telemetry'");
    let mismatches = check(&template, &functions, &TABLE, &with_example_queue());
    assert!(mentions(&mismatches, &["device-telemetry", "Sql should be"]), "{mismatches:#?}");
}

/// Does what the snippet says: its resources under `Resources`, a queue's URL variable under Globals.
fn paste(template: &mut Value, snippet: &str) {
    let (resources, globals) = snippet.split_once(GLOBALS_NOTE).unwrap_or((snippet, ""));
    // Snippets are indented for pasting under `Resources:`.
    let resources: String = resources.lines().map(|l| l.strip_prefix("  ").unwrap_or(l).to_string() + "\n").collect();
    let parsed: Mapping = serde_yaml_ng::from_str(&resources).unwrap();
    for (id, r) in parsed {
        template["Resources"].as_mapping_mut().unwrap().insert(id, r);
    }
    for line in globals.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (var, value) = line.trim().split_once(": ").unwrap();
        template["Globals"]["Function"]["Environment"]["Variables"][var] = serde_yaml_ng::from_str(value).unwrap();
    }
}

#[test]
fn intrinsic_functions_read_in_short_and_long_form() {
    let v: Value = serde_yaml_ng::from_str(
        "a: !Ref Table\nb: {Ref: Table}\nc: !GetAtt Q.Arn\nd: {'Fn::GetAtt': [Q, Arn]}\ne: !Sub '${X}-y'\nf: Table",
    )
    .unwrap();
    assert_eq!(ref_to(v.get("a")), Some("Table"));
    assert_eq!(ref_to(v.get("b")), Some("Table"));
    assert_eq!(ref_to(v.get("f")), None, "a literal is no reference");
    assert_eq!(get_att(v.get("c")), Some(("Q".into(), "Arn".into())));
    assert_eq!(get_att(v.get("d")), Some(("Q".into(), "Arn".into())));
    assert_eq!(sub_or_literal(v.get("e")), Some("${X}-y"));
    assert_eq!(pascal("api-v1-health"), "ApiV1Health");
    assert_eq!(queue_url_var("bank-transactions"), "PREMISES_QUEUE_URL_BANK_TRANSACTIONS");
}
