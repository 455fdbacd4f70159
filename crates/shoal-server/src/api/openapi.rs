//! The OpenAPI 3.1 description of the REST API, generated from the handlers' `#[utoipa::path]`
//! annotations and the `ToSchema` derives of `shoal_types::api`. Served at
//! `/api/v1/openapi.json` (authenticated like every endpoint but `/healthz`), printed by
//! `shoal openapi`, and committed as `web/openapi.json`, from which the console's TypeScript
//! types are generated; a test fails when that snapshot drifts from [`openapi`].
//!
//! Every operation answers errors with [`ErrorBody`] (its `code` is one of [`ErrorCode`]); this
//! is added to every operation here, in one place, rather than repeated in each annotation.

use super::{audit, events, files, hosts, jobs, session, sso, tokens, users};
use shoal_types::api::{ErrorBody, ErrorCode};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The name of the bearer token scheme in the description.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shoal API",
        description = "The REST API of a Shoal server. Every endpoint but `/healthz` and \
                       sign-in (`/auth/config`, `/auth/login`, `/auth/token`) needs \
                       `Authorization: Bearer <token>` or the console's session cookie (with \
                       `x-csrf-token` on state-changing requests), and the permission the \
                       README's API table names. Errors answer with a JSON body \
                       `{\"error\": {\"code\", \"message\"}}`; branch on `code`.",
        license(name = "Apache-2.0")
    ),
    paths(
        health,
        super::metrics,
        serve,
        tokens::list_scopes,
        tokens::create_scope,
        tokens::list,
        tokens::create,
        tokens::revoke,
        tokens::whoami,
        hosts::list,
        hosts::summary,
        hosts::get,
        hosts::set_labels,
        hosts::revoke,
        hosts::list_groups,
        hosts::create_group,
        hosts::get_group,
        hosts::update_group,
        hosts::delete_group,
        hosts::preview,
        jobs::execute_script,
        files::upload,
        files::get_upload,
        files::transfer,
        files::list,
        files::summary,
        jobs::list,
        jobs::detail,
        jobs::terminate,
        events::stream,
        jobs::hosts,
        jobs::groups,
        jobs::log,
        jobs::retry,
        users::list,
        users::create,
        users::get,
        users::update,
        users::revoke_sessions,
        users::change_password,
        users::list_bindings,
        users::put_binding,
        users::delete_binding,
        audit::list,
        audit::export,
        session::config,
        session::login,
        session::token,
        session::logout,
        sso::start,
        sso::callback,
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&Contract),
    security(("bearer" = [])),
    tags(
        (name = "scopes"), (name = "tokens"), (name = "hosts"), (name = "groups"),
        (name = "jobs"), (name = "steps"), (name = "files"), (name = "users"),
        (name = "audit"), (name = "auth"), (name = "server")
    )
)]
struct ApiDoc;

/// The bearer scheme, and the error responses of every operation.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`shoal token create`)"))
                    .build(),
            ),
        );
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                // Handler names repeat across modules (`list`, `revoke`): the tag makes the
                // operation id unique.
                if let (Some(tag), Some(id)) = (
                    op.tags.as_ref().and_then(|t| t.first()),
                    op.operation_id.as_ref(),
                ) {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
                let responses = &mut op.responses.responses;
                responses.insert(
                    "4XX".into(),
                    error("The request was refused; `code` says why").into(),
                );
                responses.insert(
                    "5XX".into(),
                    error("INTERNAL or UNAVAILABLE; the server log has the cause").into(),
                );
            }
        }
        describe_event_stream(doc);
    }
}

/// `GET /jobs/{id}/events` sends server-sent events: the schema of `text/event-stream` describes
/// one event (as OpenAPI 3.2 does and schemathesis reads it): `event:` the variant name,
/// `data:` a [`JobEvent`](shoal_types::api::JobEvent) as JSON.
fn describe_event_stream(doc: &mut utoipa::openapi::OpenApi) {
    let content = doc
        .paths
        .paths
        .get_mut("/api/v1/jobs/{id}/events")
        .and_then(|item| item.get.as_mut())
        .and_then(|op| op.responses.responses.get_mut("200"))
        .and_then(|resp| match resp {
            RefOr::T(resp) => resp.content.get_mut("text/event-stream"),
            RefOr::Ref(_) => None,
        });
    let Some(content) = content else {
        return;
    };
    let mut payload = Extensions::default();
    payload.insert(
        "contentSchema".into(),
        serde_json::json!({ "$ref": "#/components/schemas/JobEvent" }),
    );
    let data = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/json")
        .description(Some("The event as JSON (`JobEvent`)"))
        .extensions(Some(payload));
    let event = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["job", "step", "log", "task"]));
    content.schema = Some(
        ObjectBuilder::new()
            .property("event", event)
            .property("data", data)
            .required("event")
            .required("data")
            .into(),
    );
}

/// The description as pretty JSON, ending in a newline (as committed in `web/openapi.json`).
pub fn openapi() -> String {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(doc) => doc,
        Err(e) => return format!("{{\"error\": \"{e}\"}}\n"),
    };
    inline_aliases(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Fields typed with an alias (`HostId` is `i64`, `Labels` a `BTreeMap`) come out of utoipa
/// as references to components named after the aliased type (`i64`, `BTreeMap`); they are
/// written in place instead, as fields typed `i64` directly are.
fn inline_aliases(doc: &mut serde_json::Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let is_alias =
        |name: &str| name == "BTreeMap" || name.starts_with(|c: char| c.is_ascii_lowercase());
    let names: Vec<String> = schemas.keys().filter(|n| is_alias(n)).cloned().collect();
    let mut aliases = serde_json::Map::new();
    for name in names {
        if let Some(schema) = schemas.remove(&name) {
            aliases.insert(name, schema);
        }
    }
    replace_refs(doc, &aliases);
}

fn replace_refs(v: &mut serde_json::Value, aliases: &serde_json::Map<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| aliases.get(name))
                .and_then(|schema| schema.as_object());
            if let Some(schema) = target {
                map.remove("$ref");
                for (k, val) in schema {
                    map.entry(k.clone()).or_insert_with(|| val.clone());
                }
            }
            for child in map.values_mut() {
                replace_refs(child, aliases);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                replace_refs(item, aliases);
            }
        }
        _ => {}
    }
}

/// `GET /healthz`: liveness, without a token.
#[utoipa::path(get, path = "/healthz", tag = "server", security(()),
    responses((status = 200, description = "The server is up", body = String, content_type = "text/plain")))]
pub(super) async fn health() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "This description (OpenAPI 3.1)", body = Object)))]
pub(super) async fn serve() -> impl axum::response::IntoResponse {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        TEXT.get_or_init(openapi).as_str(),
    )
}
