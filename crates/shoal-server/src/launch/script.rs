//! `POST /script-executions` as a launch: the request checked and turned into a script step.

use crate::checks::{self, Rejected};
use base64::Engine as _;
use shoal_types::api::{ErrorCode, ExecuteScriptRequest};
use shoal_types::{Language, ScriptSpec, limits};

/// Checks a quick-execution request: the script step it asks for, and the job's name.
pub fn script_step(req: &ExecuteScriptRequest) -> Result<(ScriptSpec, String), Rejected> {
    let content = match (&req.script, &req.script_base64) {
        (Some(s), None) => s.clone(),
        (None, Some(b)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| {
                    Rejected::invalid(format!("script_base64 is not valid base64: {e}"))
                })?;
            String::from_utf8(bytes)
                .map_err(|_| Rejected::invalid("script_base64 must decode to UTF-8 text"))?
        }
        (Some(_), Some(_)) => {
            return Err(Rejected::invalid(
                "give either script or script_base64, not both",
            ));
        }
        (None, None) => return Err(Rejected::invalid("script is required")),
    };
    if content.len() > limits::SCRIPT_MAX_BYTES {
        return Err(Rejected::new(
            ErrorCode::ScriptTooLarge,
            format!(
                "the script is {} bytes; the limit is {}",
                content.len(),
                limits::SCRIPT_MAX_BYTES
            ),
        ));
    }
    if content.trim().is_empty() {
        return Err(Rejected::invalid("the script is empty"));
    }
    let language = match &req.language {
        serde_json::Value::String(s) => Language::parse(s),
        serde_json::Value::Number(n) => n
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .and_then(Language::from_code),
        _ => None,
    }
    .ok_or_else(|| {
        Rejected::new(
            ErrorCode::UnknownLanguage,
            format!(
                "unknown language {}; use shell, python, perl, powershell or bat (or 1-5)",
                req.language
            ),
        )
    })?;
    let timeout_secs = checks::timeout_secs(req.timeout)?;
    let params = req.params.as_deref().unwrap_or("");
    if params.len() > limits::PARAMS_MAX_BYTES {
        return Err(Rejected::new(
            ErrorCode::InvalidParams,
            "params are longer than 64 KiB",
        ));
    }
    let args = shlex::split(params).ok_or_else(|| {
        Rejected::new(
            ErrorCode::InvalidParams,
            "params have an unterminated quote or escape",
        )
    })?;
    for k in req.env.keys() {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Rejected::invalid(format!(
                "invalid environment variable name {k:?}"
            )));
        }
    }
    let account = checks::account(req.account.as_deref())?;
    let workdir = req.workdir.clone().unwrap_or_default();
    if !workdir.is_empty() && !workdir.starts_with('/') {
        return Err(Rejected::invalid("workdir must be an absolute path"));
    }
    let name = checks::job_name(req.name.as_deref(), "quick script")?;
    let spec = ScriptSpec {
        language,
        content,
        args,
        env: req
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        account,
        login_env: req.login_env,
        workdir,
        timeout_secs,
    };
    // The spec travels to agents in one frame; escaping can grow it well past the script.
    let encoded = serde_json::to_vec(&spec)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    let room = shoal_proto::MAX_FRAME_BYTES - 4096;
    if encoded > room {
        return Err(Rejected::new(
            ErrorCode::ScriptTooLarge,
            format!(
                "the script, params and environment take {encoded} bytes once encoded; the limit is {room}"
            ),
        ));
    }
    Ok((spec, name))
}
