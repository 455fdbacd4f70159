//! The REST API (`/api/v1`, and the same routes for the console under `/api/web/v1`): routers, extractors that turn every malformed request into the
//! error contract, and the handlers, one module per resource.

mod actions;
mod audit;
mod authn;
mod console;
mod convert;
mod error;
mod events;
mod extract;
mod files;
mod hosts;
mod jobs;
mod openapi;
mod session;
mod sso;
mod tokens;
mod users;

#[cfg(test)]
pub(crate) use authn::is_event_stream;
pub use error::ApiError;
pub use openapi::openapi;

use crate::app::App;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

/// Largest request body: a 5 MiB script plus JSON escaping.
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Longest request URI (path and query).
const URI_LIMIT: usize = 8 * 1024;
/// Most request header bytes (names, values and separators) and headers.
const HEADER_BYTES_LIMIT: usize = 32 * 1024;
const HEADER_COUNT_LIMIT: usize = 100;
/// A request body that sends nothing for this long is abandoned.
const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router(app: App) -> Router {
    router_with(app, None)
}

/// The router; with `fixed` (the authorization benchmark only), every request acts as that
/// caller without looking up a token, an account or its roles.
fn router_with(app: App, fixed: Option<crate::auth::Caller>) -> Router {
    let api = Router::new()
        .route(
            "/scopes",
            get(tokens::list_scopes).post(tokens::create_scope),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/hosts", get(hosts::list))
        .route("/hosts/summary", get(hosts::summary))
        .route("/hosts/{id}", get(hosts::get))
        .route("/hosts/{id}/labels", put(hosts::set_labels))
        .route("/hosts/{id}/revoke", post(hosts::revoke))
        .route("/groups", get(hosts::list_groups).post(hosts::create_group))
        .route(
            "/groups/{id}",
            get(hosts::get_group)
                .put(hosts::update_group)
                .delete(hosts::delete_group),
        )
        .route("/targets/preview", post(hosts::preview))
        .route("/script-executions", post(jobs::execute_script))
        .route(
            "/uploads",
            post(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads/{id}", get(files::get_upload))
        .route("/file-transfers", post(files::transfer))
        .route("/steps/{id}/files", get(files::list))
        .route("/steps/{id}/files/summary", get(files::summary))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::detail))
        .route("/jobs/{id}/terminate", post(jobs::terminate))
        .route("/jobs/{id}/events", get(events::stream))
        .route("/steps/{id}/hosts", get(jobs::hosts))
        .route("/steps/{id}/groups", get(jobs::groups))
        .route("/steps/{id}/hosts/{host_id}/log", get(jobs::log))
        .route("/steps/{id}/retry", post(jobs::retry))
        .route("/whoami", get(tokens::whoami))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::get).patch(users::update))
        .route("/users/{id}/sessions/revoke", post(users::revoke_sessions))
        .route("/me/password", post(users::change_password))
        .route(
            "/role-bindings",
            get(users::list_bindings).put(users::put_binding),
        )
        .route(
            "/role-bindings/{id}",
            axum::routing::delete(users::delete_binding),
        )
        .route("/audit", get(audit::list))
        .route("/audit/export", get(audit::export))
        .route("/auth/logout", post(session::logout))
        .route("/openapi.json", get(openapi::serve))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            authn::audit_request,
        ))
        // Signing in needs no credentials (see `authn::is_public`).
        .route("/auth/config", get(session::config))
        .route("/auth/login", post(session::login))
        .route("/auth/token", post(session::token))
        .route("/auth/oidc/start", get(sso::start))
        .route("/auth/oidc/callback", get(sso::callback))
        .fallback(not_found);
    // One set of routes, mounted twice: the route tells where a request came from.
    let authed = Router::new()
        .nest(
            "/api/v1",
            api.clone()
                .layer(axum::Extension(shoal_types::LaunchMode::Api)),
        )
        .nest(
            "/api/web/v1",
            api.layer(axum::Extension(shoal_types::LaunchMode::Web)),
        )
        .route("/metrics", get(metrics));
    let authed = match fixed {
        None => authed.layer(axum::middleware::from_fn_with_state(
            app.clone(),
            authn::require_caller,
        )),
        Some(caller) => authed.layer(axum::Extension(caller)),
    };
    Router::new()
        .route("/healthz", get(openapi::health))
        .merge(authed)
        .fallback(console::serve)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_IDLE_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(request_limits))
        // Compresses the console's assets and large JSON pages; event streams are left alone.
        .layer(tower_http::compression::CompressionLayer::new())
        // Spans name the path only: a query string may carry a token (`access_token`).
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(app)
}

/// Answers over-long URIs (414) and oversized headers (431) in the error format, before any
/// routing or authentication.
async fn request_limits(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = req.uri();
    let uri_len = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    if uri_len > URI_LIMIT {
        return ApiError::new(
            shoal_types::api::ErrorCode::UriTooLong,
            format!("the request URI is {uri_len} bytes; the limit is {URI_LIMIT}"),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > HEADER_COUNT_LIMIT || bytes > HEADER_BYTES_LIMIT {
        return ApiError::new(
            shoal_types::api::ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} headers of {bytes} bytes; the limits are \
                 {HEADER_COUNT_LIMIT} headers and {HEADER_BYTES_LIMIT} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// The router acting as `caller` for every request (benchmarks).
#[cfg(test)]
pub(crate) fn router_as(app: App, caller: crate::auth::Caller) -> Router {
    router_with(app, Some(caller))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain")))]
async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(),
    )
}
