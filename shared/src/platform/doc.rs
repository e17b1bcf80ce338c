//! How an HTTP operation is described in the API document beyond its route: query parameters,
//! headers, request body and responses ([`Op`], built next to each handler with `.doc(…)`).
//! Schemas come from the handlers' types (`#[derive(utoipa::ToSchema)]`); the examples are the
//! seeds' own. The pipeline's errors (400 bad body, 401/403 auth, 404 unknown path parameter or
//! page, 413) are added from the route's facts; `errors` lists only what the handler itself
//! answers beyond those.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::ToSchema;

const JSON: &[&str] = &["application/json"];

/// The component schemas an operation refers to, by name.
pub type Components = BTreeMap<String, Value>;

/// Registers `T` (and the schemas it refers to) and returns a reference to it.
pub fn schema_of<T: ToSchema>(components: &mut Components) -> Value {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    for (name, schema) in nested {
        components.insert(name, to_json(&schema));
    }
    let name = T::name().to_string();
    components.insert(name.clone(), to_json(&T::schema()));
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A DRF page of `T`: `{count, next, previous, results}`.
pub fn page_of<T: ToSchema>(components: &mut Components) -> Value {
    json!({
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer", "minimum": 0},
            "next": {"type": ["string", "null"], "description": "This path and query with the next page number."},
            "previous": {"type": ["string", "null"]},
            "results": {"type": "array", "items": schema_of::<T>(components)},
        },
    })
}

/// SmartLock's page of `T`: `{count, next, previous, total_pages, current_page, results}`.
pub fn numbered_page_of<T: ToSchema>(components: &mut Components) -> Value {
    let mut page = page_of::<T>(components);
    page["required"] = json!(["count", "next", "previous", "total_pages", "current_page", "results"]);
    page["properties"]["total_pages"] = json!({"type": "integer", "minimum": 1});
    page["properties"]["current_page"] = json!({"type": "integer", "minimum": 1});
    page
}

/// Circle Time's success envelope around `T`: `{success: true, data}`.
pub fn envelope_of<T: ToSchema>(components: &mut Components) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": true}, "data": schema_of::<T>(components)},
    })
}

fn to_json<S: serde::Serialize>(schema: &S) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// A schema (usually a `$ref`) registering what it refers to.
pub type SchemaFn = fn(&mut Components) -> Value;

/// One operation's description beyond its route.
#[derive(Default)]
pub struct Op {
    pub description: &'static str,
    pub query: &'static [QueryParam],
    /// Request headers the operation reads (beyond `Authorization`).
    pub headers: &'static [QueryParam],
    /// `?page=&page_size=`, and a 404 for a page past the end.
    pub paginated: bool,
    /// Paged in the store: `?cursor=` and `?before=` (what `next` and `previous` carry) too.
    pub cursors: bool,
    pub body: Option<Body>,
    pub responses: Vec<Reply>,
    pub errors: &'static [u16],
}

pub struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
}

pub struct Body {
    pub required: bool,
    /// Media type and schema.
    pub content: Vec<(&'static str, SchemaFn)>,
    pub example: Option<Value>,
}

impl Body {
    pub fn render(&self, components: &mut Components) -> Value {
        let mut content = serde_json::Map::new();
        for (media, schema) in &self.content {
            let mut media_type = json!({"schema": schema(components)});
            if let (Some(example), true) = (&self.example, *media == "application/json") {
                media_type["example"] = example.clone();
            }
            content.insert(media.to_string(), media_type);
        }
        json!({"required": self.required, "content": content})
    }
}

pub struct Reply {
    pub status: u16,
    /// The media types the body comes in.
    pub media: &'static [&'static str],
    pub description: &'static str,
    pub schema: Option<SchemaFn>,
    pub example: Option<Value>,
}

impl Op {
    pub fn new() -> Op {
        Op::default()
    }
    pub fn describe(mut self, description: &'static str) -> Op {
        self.description = description;
        self
    }
    /// A required JSON body.
    pub fn json(mut self, schema: SchemaFn) -> Op {
        self.body = Some(Body { required: true, content: vec![("application/json", schema)], example: None });
        self
    }
    pub fn body(mut self, body: Body) -> Op {
        self.body = Some(body);
        self
    }
    /// The example request body (seed text).
    pub fn example(mut self, example: Value) -> Op {
        if let Some(body) = &mut self.body {
            body.example = Some(example);
        }
        self
    }
    pub fn reply(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Op {
        self.responses.push(Reply { status, media: JSON, schema: Some(schema), description, example: None });
        self
    }
    /// The media types of the last reply (JSON unless said).
    pub fn media(mut self, media: &'static [&'static str]) -> Op {
        if let Some(reply) = self.responses.last_mut() {
            reply.media = media;
        }
        self
    }
    /// The example of the last reply (seed text).
    pub fn reply_example(mut self, example: Value) -> Op {
        if let Some(reply) = self.responses.last_mut() {
            reply.example = Some(example);
        }
        self
    }
    pub fn empty(mut self, status: u16, description: &'static str) -> Op {
        self.responses.push(Reply { status, media: JSON, schema: None, description, example: None });
        self
    }
    /// 200 with one page of items.
    pub fn page(mut self, schema: SchemaFn) -> Op {
        self.paginated = true;
        self.reply(200, "One page, newest or by key as the operation says", schema)
    }
    /// 200 with one page of items read from the store, `next` and `previous` carrying cursors.
    pub fn store_page(mut self, schema: SchemaFn) -> Op {
        self.cursors = true;
        self.page(schema)
    }
    pub fn query(mut self, query: &'static [QueryParam]) -> Op {
        self.query = query;
        self
    }
    pub fn headers(mut self, headers: &'static [QueryParam]) -> Op {
        self.headers = headers;
        self
    }
    pub fn errors(mut self, errors: &'static [u16]) -> Op {
        self.errors = errors;
        self
    }
}

pub fn string() -> Value {
    json!({"type": "string"})
}

pub fn date() -> Value {
    json!({"type": "string", "description": "YYYY-MM-DD"})
}
pub fn boolean_text() -> Value {
    json!({"type": "string", "enum": ["true", "false", "1", "0"]})
}
pub fn schema_format() -> Value {
    json!({"type": "string", "enum": ["json", "yaml"]})
}
/// Any JSON document (a Fio statement, the API document itself).
pub fn any_object(_: &mut Components) -> Value {
    json!({"type": "object"})
}
pub fn xml_text(_: &mut Components) -> Value {
    json!({"type": "string", "description": "A camt.053 statement."})
}
pub fn html(_: &mut Components) -> Value {
    json!({"type": "string"})
}

/// The schema of a type used as a parameter (a role, a status).
pub fn enum_schema<T: utoipa::PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}
