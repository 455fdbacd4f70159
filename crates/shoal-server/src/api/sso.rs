//! Single sign-on routes: `GET /api/web/v1/auth/oidc/start` sends the browser to the provider;
//! `GET /api/web/v1/auth/oidc/callback` comes back with a code, signs the account in
//! (`auth::sso_sign_in`: created on first sign-in, roles from group claims) and sends the browser
//! to the console with a session. Failures go back to the sign-in page with a message.

use super::ApiError;
use super::extract::{ClientAddress, Query};
use crate::app::App;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shoal_types::api::ErrorCode;

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Back to the console's sign-in page, saying why.
fn back_with(message: &str) -> Response {
    let q: String = url_escape(message);
    redirect(&format!("/login?sso_error={q}"))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/start", tag = "auth", security(()),
    responses((status = 302, description = "To the single sign-on provider"),
              (status = 404, description = "Single sign-on is not configured")))]
pub async fn start(State(app): State<App>) -> Result<Response, ApiError> {
    let oidc = crate::auth::sso::provider(&app).await?;
    let begun = oidc.begin();
    Ok(redirect(&begun.url))
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", tag = "auth", security(()),
    params(("code" = Option<String>, Query, description = "the provider's authorization code"),
           ("state" = Option<String>, Query, description = "the state sent at the start")),
    responses((status = 302, description = "To the console, signed in (session cookies set), or back to the sign-in page with `sso_error`")))]
pub async fn callback(
    State(app): State<App>,
    ClientAddress(address): ClientAddress,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return back_with(&format!("the sign-on provider refused: {why}"));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return back_with("the sign-on provider sent no code");
    };
    match crate::auth::sso::sign_in(&app, &state, &code, &address).await {
        Ok(user) => match super::session::signed_in(&app, &user, &address).await {
            Ok(signed) => {
                let mut r = redirect("/");
                for c in signed.headers().get_all(header::SET_COOKIE) {
                    r.headers_mut().append(header::SET_COOKIE, c.clone());
                }
                r
            }
            Err(e) => back_with(&e.message),
        },
        Err(e) => {
            let e: ApiError = e.into();
            if e.code == ErrorCode::Internal {
                return back_with("single sign-on failed; see the server log");
            }
            back_with(&e.message)
        }
    }
}
