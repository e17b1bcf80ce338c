//! The generated template (`template.yaml` and `stacks/*.yaml`): the committed files are what
//! the modules generate (`PREMISES_BLESS=1`, or `make generated`, rewrites them), and what is
//! generated says what the catalog says: every function once, with its route, event source,
//! topic rule and schedule; policies from what it uses; every reference of a module stack
//! declared and passed by the root; each stack under CloudFormation's resource limit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use shared::catalog::{self, MODULES};
use shared::platform::function::{Trigger, Uses};
use shared::platform::store::TABLE;
use shared::platform::template::{self, File, MAX_RESOURCES, STACKS_DIR, pascal};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn generated() -> Vec<File> {
    template::render(MODULES, &TABLE)
}

fn parse(file: &File) -> Value {
    serde_yaml_ng::from_str(&file.text).unwrap_or_else(|e| panic!("{}: {e}", file.path))
}

fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    get(v, path)?.as_str()
}

/// `!Ref X` (short form, as generated) → `X`.
fn ref_to(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

/// Every `!Ref` target and every `${X}` of a `!Sub` in `v`.
fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => {
            out.extend(t.value.as_str().map(str::to_string));
        }
        Value::Tagged(t) if t.tag == "GetAtt" => {
            out.extend(t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_string));
        }
        Value::Tagged(t) if t.tag == "Sub" => {
            let text = t.value.as_str().unwrap_or_default();
            for part in text.split("${").skip(1) {
                let name = part.split('}').next().unwrap_or_default();
                if !name.starts_with('!') {
                    out.insert(name.split('.').next().unwrap_or_default().to_string());
                }
            }
        }
        Value::Tagged(t) => references(&t.value, out),
        Value::Mapping(m) => m.values().for_each(|v| references(v, out)),
        Value::Sequence(s) => s.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn resources(doc: &Value) -> &Mapping {
    get(doc, &["Resources"]).and_then(Value::as_mapping).expect("Resources")
}

fn of_type<'d>(doc: &'d Value, ty: &str) -> Vec<(&'d str, &'d Value)> {
    resources(doc)
        .iter()
        .filter(|(_, r)| str_at(r, &["Type"]) == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap_or_default(), r))
        .collect()
}

// ------------------------------------------------------------------ the files

#[test]
fn the_committed_template_is_what_the_modules_generate() {
    let files = generated();
    let bless = std::env::var_os("PREMISES_BLESS").is_some();
    let mut stale = Vec::new();
    for file in &files {
        let path = root().join(&file.path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(file.text.as_str()) {
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &file.text).unwrap();
            } else {
                stale.push(file.path.clone());
            }
        }
    }
    // A stack of a module that no longer exists.
    let expected: BTreeSet<_> = files.iter().map(|f| f.path.clone()).collect();
    for entry in std::fs::read_dir(root().join(STACKS_DIR)).into_iter().flatten().flatten() {
        let path = format!("{STACKS_DIR}/{}", entry.file_name().to_string_lossy());
        if !expected.contains(&path) {
            if bless {
                std::fs::remove_file(entry.path()).unwrap();
            } else {
                stale.push(path);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `make generated` (PREMISES_BLESS=1 cargo test -p shared --test template)"
    );
}

#[test]
fn every_stack_stays_under_the_resource_limit() {
    for file in generated() {
        println!("{}: {} resources after the SAM transform", file.path, file.resources);
        assert!(file.resources < MAX_RESOURCES, "{} has {} resources", file.path, file.resources);
        let declared = resources(&parse(&file)).len();
        assert!(declared <= file.resources, "{}: {declared} declared, {} counted", file.path, file.resources);
    }
}

#[test]
fn every_module_stack_is_nested_in_the_root_with_exactly_the_parameters_it_declares() {
    let files = generated();
    let root = parse(&files[0]);
    let apps = of_type(&root, "AWS::Serverless::Application");
    assert_eq!(apps.len(), MODULES.len());
    let root_ids: BTreeSet<String> = resources(&root).keys().filter_map(|k| k.as_str()).map(String::from).collect();
    let root_params: BTreeSet<String> = get(&root, &["Parameters"])
        .and_then(Value::as_mapping)
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .map(String::from)
        .collect();
    for (module, file) in MODULES.iter().zip(&files[1..]) {
        assert_eq!(file.path, format!("{STACKS_DIR}/{}.yaml", module.name));
        let (_, app) = apps
            .iter()
            .find(|(id, _)| *id == format!("{}Stack", pascal(module.name)))
            .unwrap_or_else(|| panic!("no stack for module {}", module.name));
        assert_eq!(str_at(app, &["Properties", "Location"]), Some(file.path.as_str()));
        let doc = parse(file);
        let declared: BTreeSet<String> = get(&doc, &["Parameters"])
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(|k| k.as_str()).map(String::from).collect())
            .unwrap_or_default();
        let passed = get(app, &["Properties", "Parameters"]).and_then(Value::as_mapping).unwrap();
        let passed_names: BTreeSet<String> = passed.keys().filter_map(|k| k.as_str()).map(String::from).collect();
        assert_eq!(declared, passed_names, "{}: declared vs passed", file.path);
        // What the root passes exists in the root.
        let mut refs = BTreeSet::new();
        passed.values().for_each(|v| references(v, &mut refs));
        for r in &refs {
            assert!(root_ids.contains(r) || root_params.contains(r), "{}: root passes unknown {r}", file.path);
        }
        // What the module stack references is a parameter, a resource of its own or a pseudo parameter.
        let own: BTreeSet<String> = resources(&doc).keys().filter_map(|k| k.as_str()).map(String::from).collect();
        let mut used = BTreeSet::new();
        references(get(&doc, &["Resources"]).unwrap(), &mut used);
        references(get(&doc, &["Globals"]).unwrap(), &mut used);
        for u in &used {
            assert!(
                declared.contains(u) || own.contains(u) || u.starts_with("AWS::"),
                "{}: {u} is neither a parameter nor a resource",
                file.path
            );
        }
        for d in &declared {
            assert!(used.contains(d), "{}: parameter {d} is never used", file.path);
        }
    }
}

// ------------------------------------------------------------ the functions

/// Every generated function by binary name, with its stack's document.
fn functions_by_binary(files: &[File]) -> BTreeMap<String, (Value, String)> {
    let mut out = BTreeMap::new();
    for file in &files[1..] {
        let doc = parse(file);
        for (id, f) in of_type(&doc, "AWS::Serverless::Function") {
            let binary = str_at(f, &["Metadata", "BuildProperties", "Binary"]).expect("Binary").to_string();
            assert_eq!(id, format!("{}Function", pascal(&binary)));
            assert_eq!(str_at(f, &["Metadata", "BuildMethod"]), Some("rust-cargolambda"));
            assert!(out.insert(binary.clone(), (doc.clone(), id.to_string())).is_none(), "{binary} twice");
        }
    }
    out
}

#[test]
fn every_catalog_function_is_generated_once_with_its_trigger() {
    let files = generated();
    let by_binary = functions_by_binary(&files);
    assert_eq!(by_binary.len(), catalog::functions().len());
    for f in catalog::functions() {
        let (doc, id) = by_binary.get(f.name).unwrap_or_else(|| panic!("{} not generated", f.name));
        let res = &resources(doc)[id.as_str()];
        assert_eq!(str_at(res, &["Properties", "Description"]), Some(f.summary));
        match &f.trigger {
            Trigger::Http(route) => {
                let r = &resources(doc)[format!("{}Route", pascal(f.name)).as_str()];
                let key = format!("{} {}", route.method, route.path);
                assert_eq!(str_at(r, &["Properties", "RouteKey"]), Some(key.as_str()), "{}", f.name);
                let integration = &resources(doc)[format!("{}Integration", pascal(f.name)).as_str()];
                assert_eq!(str_at(integration, &["Properties", "PayloadFormatVersion"]), Some("2.0"));
                let permission = &resources(doc)[format!("{}Permission", pascal(f.name)).as_str()];
                assert_eq!(str_at(permission, &["Properties", "Principal"]), Some("apigateway.amazonaws.com"));
                assert!(
                    route.method != "GET" || !f.uses.contains(&Uses::TableWrite),
                    "GET {} may write the table",
                    route.path
                );
            }
            Trigger::Queue { queue, batch_size, .. } => {
                let event = get(res, &["Properties", "Events", "Queue", "Properties"]).expect("SQS event");
                let arn = ref_to(event.get("Queue").unwrap()).unwrap();
                assert_eq!(arn, format!("{}QueueArn", pascal(queue.name)));
                assert_eq!(event.get("BatchSize").and_then(Value::as_u64), Some(*batch_size as u64));
            }
            Trigger::Schedule { expression, param, .. } => {
                let schedule = get(res, &["Properties", "Events", "Schedule", "Properties", "Schedule"]).unwrap();
                match param {
                    None => assert_eq!(schedule.as_str(), Some(*expression)),
                    Some(p) => {
                        assert_eq!(ref_to(schedule), Some(p.name));
                        assert_eq!(
                            p.default,
                            Some(*expression),
                            "{}: the parameter's default is the local schedule",
                            f.name
                        );
                    }
                }
            }
            Trigger::IotRule { sql, .. } => {
                let rule = &resources(doc)[format!("{}Rule", pascal(f.name)).as_str()];
                assert_eq!(str_at(rule, &["Properties", "TopicRulePayload", "Sql"]), Some(*sql));
                let permission = &resources(doc)[format!("{}RulePermission", pascal(f.name)).as_str()];
                assert_eq!(str_at(permission, &["Properties", "Principal"]), Some("iot.amazonaws.com"));
            }
        }
    }
}

/// The policy names and statement actions of a generated function.
fn grants(doc: &Value, id: &str) -> (Vec<String>, Vec<String>) {
    let f = &resources(doc)[id];
    let mut templates = Vec::new();
    let mut actions = Vec::new();
    for p in get(f, &["Properties", "Policies"]).and_then(Value::as_sequence).into_iter().flatten() {
        for (k, v) in p.as_mapping().unwrap() {
            if k.as_str() == Some("Statement") {
                for s in v.as_sequence().unwrap() {
                    match s.get("Action").unwrap() {
                        Value::Sequence(a) => actions.extend(a.iter().filter_map(Value::as_str).map(String::from)),
                        a => actions.extend(a.as_str().map(String::from)),
                    }
                }
            } else {
                templates.push(k.as_str().unwrap().to_string());
            }
        }
    }
    (templates, actions)
}

#[test]
fn a_function_is_granted_what_it_declares_and_nothing_else() {
    let files = generated();
    let by_binary = functions_by_binary(&files);
    let grants_of = |name: &str| {
        let (doc, id) = &by_binary[name];
        grants(doc, id)
    };
    assert_eq!(grants_of("health"), (vec![], vec![]), "health touches nothing");
    assert_eq!(grants_of("users-profile-get").0, ["DynamoDBReadPolicy"]);
    let (templates, actions) = grants_of("devices-lock");
    assert_eq!(templates, ["DynamoDBCrudPolicy"]);
    assert_eq!(actions, ["iot:Publish", "iot:UpdateThingShadow"]);
    let (templates, actions) = grants_of("admin-bank-redrive");
    assert_eq!(templates, ["DynamoDBCrudPolicy", "SQSSendMessagePolicy"]);
    assert_eq!(actions, ["sqs:ReceiveMessage", "sqs:DeleteMessage"]);
    // The bank token reaches the functions that call the bank, and no other.
    for (name, (doc, id)) in &by_binary {
        let env = get(&resources(doc)[id.as_str()], &["Properties", "Environment", "Variables", "PREMISES_BANK_TOKEN"]);
        let declared = catalog::get(name).unwrap().uses.contains(&Uses::Param(&shared::bank::BANK_TOKEN));
        assert_eq!(env.is_some(), declared, "{name}");
    }
    // The bank token never sits in a stack's shared environment.
    for file in &files[1..] {
        let env = get(&parse(file), &["Globals", "Function", "Environment", "Variables"]).cloned().unwrap();
        assert!(env.get("PREMISES_BANK_TOKEN").is_none(), "{}", file.path);
        assert!(env.get("PREMISES_JWT_KEYS").is_some(), "{}", file.path);
        for q in catalog::queues() {
            let var = format!("PREMISES_QUEUE_URL_{}", q.name.to_ascii_uppercase().replace('-', "_"));
            assert!(env.get(var.as_str()).is_some(), "{}: {var}", file.path);
        }
    }
}

// ---------------------------------------------------------- root resources

#[test]
fn the_root_declares_the_table_the_queues_and_a_device_policy_for_every_published_prefix() {
    let root = parse(&generated()[0]);
    let table = &resources(&root)["Table"];
    let keys = get(table, &["Properties", "KeySchema"]).and_then(Value::as_sequence).unwrap();
    assert_eq!(keys[0].get("AttributeName").and_then(Value::as_str), Some(TABLE.pk));
    assert_eq!(keys[1].get("AttributeName").and_then(Value::as_str), Some(TABLE.sk));
    let indexes = get(table, &["Properties", "GlobalSecondaryIndexes"]).and_then(Value::as_sequence).unwrap();
    let names: Vec<_> = indexes.iter().filter_map(|i| i.get("IndexName").and_then(Value::as_str)).collect();
    assert_eq!(names, TABLE.indexes.iter().map(|i| i.name).collect::<Vec<_>>());
    assert_eq!(str_at(table, &["Properties", "TimeToLiveSpecification", "AttributeName"]), Some(TABLE.ttl_attribute));
    assert_eq!(str_at(table, &["DeletionPolicy"]), Some("Retain"));

    for q in catalog::queues() {
        let queue = &resources(&root)[format!("{}Queue", pascal(q.name)).as_str()];
        let redrive = get(queue, &["Properties", "RedrivePolicy"]).unwrap();
        assert_eq!(redrive.get("maxReceiveCount").and_then(Value::as_u64), Some(q.max_receive_count as u64));
        assert!(resources(&root).contains_key(format!("{}DeadLetterQueue", pascal(q.name)).as_str()));
        assert_eq!(
            get(queue, &["Properties", "VisibilityTimeout"]).and_then(Value::as_u64),
            Some(q.visibility_timeout_secs as u64)
        );
    }
    let bank = &resources(&root)["BankTransactionsQueue"];
    assert_eq!(get(bank, &["Properties", "MessageRetentionPeriod"]).and_then(Value::as_u64), Some(1_209_600));

    let policy = serde_yaml_ng::to_string(&resources(&root)["DevicePolicy"]).unwrap();
    for prefix in ["smartlock", "appliance"] {
        assert!(policy.contains(&format!("topic/{prefix}/${{!iot:Connection.Thing.ThingName}}/*")), "{policy}");
        assert!(policy.contains(&format!("topicfilter/{prefix}/${{!iot:Connection.Thing.ThingName}}/*")));
    }
    assert!(policy.contains("iot:Connection.Thing.IsAttached"));
}
