//! `client::Error`: what can go wrong talking to the server, split so that callers (the CLI's
//! exit codes, tests) can branch on it: the server answered with an API error, the server could
//! not be reached, or its answer could not be understood.

use shoal_types::api::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error body (`{"error":{"code":..,"message":..}}`).
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server answered with an error status but no recognisable error body (a proxy, or a
    /// route that does not exist on this server version).
    #[error("the server at {url} answered HTTP {status}{}", body_suffix(body))]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    /// No connection could be made, or it broke before an answer came.
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The request did not complete in time.
    #[error("the server at {url} did not answer in time: {message}")]
    Timeout { url: String, message: String },
    /// The answer arrived but is not what this client expects.
    #[error("cannot decode the server's answer from {url}: {message}")]
    Decode { url: String, message: String },
    /// The caller passed something the client cannot send (e.g. an invalid base URL).
    #[error("invalid request: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn body_suffix(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let short: String = body.chars().take(200).collect();
    format!(": {short}")
}

impl Error {
    /// The API error code, if the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, if the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server could not be reached or did not answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::Timeout { .. })
    }

    /// The server refused the credentials (missing, wrong, expired or insufficient token).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
            || matches!(
                self.code(),
                Some(ErrorCode::Unauthenticated | ErrorCode::PermissionDenied)
            )
    }

    /// Builds the error for a non-success answer from its status and body.
    pub fn from_response_body(url: &str, status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => Error::Api {
                status,
                code: parsed.error.code,
                message: parsed.error.message,
            },
            Err(_) => Error::Http {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(body).into_owned(),
            },
        }
    }

    /// Classifies a reqwest failure, keeping the innermost cause (e.g. "Connection refused")
    /// which reqwest's own message hides.
    pub(crate) fn from_reqwest(url: &str, err: reqwest::Error) -> Error {
        let message = error_chain(&err);
        if err.is_timeout() {
            let (url, message) = (origin(url), innermost(&err));
            Error::Timeout { url, message }
        } else if err.is_decode() {
            let url = url.to_string();
            Error::Decode { url, message }
        } else if err.is_builder() {
            Error::Invalid(message)
        } else {
            // Connect errors, resets, and bodies that broke off half-way: either way the
            // server is not (or no longer) there. The innermost cause ("Connection refused")
            // is the useful part; reqwest's own message repeats the URL.
            let (url, message) = (origin(url), innermost(&err));
            Error::Unreachable { url, message }
        }
    }
}

/// `http://host:port` of a URL (the part that names the server), or the URL as given.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.has_host() => u.origin().ascii_serialization(),
        _ => url.to_string(),
    }
}

/// The last message in an error's source chain.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Every message in an error's source chain, deduplicated, joined by ": ".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    //! Pins how error answers become `Error`: the JSON error body becomes `Api` with its code,
    //! anything else keeps status and body, and auth failures are recognisable.
    use super::*;

    #[test]
    fn error_body_becomes_api_error() {
        let body = br#"{"error":{"code":"UNKNOWN_HOST","message":"host 7 does not exist"}}"#;
        let err = Error::from_response_body("http://x/api/v1/jobs", 400, body);
        match &err {
            Error::Api {
                status,
                code,
                message,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(*code, ErrorCode::UnknownHost);
                assert_eq!(message, "host 7 does not exist");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "host 7 does not exist (UNKNOWN_HOST, HTTP 400)"
        );
        assert!(!err.is_auth());
        assert_eq!(err.code(), Some(ErrorCode::UnknownHost));
    }

    #[test]
    fn unauthenticated_is_auth() {
        let body = br#"{"error":{"code":"UNAUTHENTICATED","message":"missing bearer token"}}"#;
        let err = Error::from_response_body("u", 401, body);
        assert!(err.is_auth());
        assert!(!err.is_unreachable());
    }

    #[test]
    fn non_json_body_keeps_status_and_text() {
        let err = Error::from_response_body("http://x/nope", 404, b"Not Found");
        assert!(matches!(err, Error::Http { status: 404, .. }));
        assert_eq!(
            err.to_string(),
            "the server at http://x/nope answered HTTP 404: Not Found"
        );
        let empty = Error::from_response_body("http://x/nope", 403, b"");
        assert_eq!(
            empty.to_string(),
            "the server at http://x/nope answered HTTP 403"
        );
        assert!(empty.is_auth());
    }

    #[test]
    fn unknown_code_is_not_an_api_error() {
        // The code set is closed; a code this client does not know is shown as raw text.
        let body = br#"{"error":{"code":"SOMETHING_NEW","message":"m"}}"#;
        let err = Error::from_response_body("u", 418, body);
        assert!(matches!(err, Error::Http { status: 418, .. }));
    }
}
