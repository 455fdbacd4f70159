//! `shoal run`: start a script execution, follow it, print its result groups.

use crate::Ctx;
use crate::cli::RunArgs;
use crate::exit::{Exit, usage};
use crate::follow::{self, JobResults};
use crate::{launch, output};
use anyhow::Context as _;
use base64::Engine as _;
use shoal_client::{ExecuteScriptRequest, JobDetail, Targets};
use std::io::{IsTerminal as _, Read as _};

pub async fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<Exit> {
    let script = read_script(&args)?;
    let req = build_request(&args, script)?;
    let resp = ctx
        .client
        .execute_script(&req)
        .await
        .context("cannot start the job")?;
    launch::started(ctx, &resp, "host", args.no_wait, report).await
}

/// Prints a finished job's results; exit 1 unless every host succeeded. Also the report of
/// `shoal job retry --wait`.
pub async fn report(ctx: &Ctx, detail: &JobDetail) -> anyhow::Result<Exit> {
    let groups = follow::load_groups(&ctx.client, detail).await?;
    if ctx.json {
        output::print_json(&JobResults { detail, groups })?;
    } else {
        launch::print_ended(detail);
        follow::print_groups(&ctx.client, detail, &groups, true).await?;
    }
    Ok(launch::exit_for(detail))
}

fn read_script(args: &RunArgs) -> anyhow::Result<Vec<u8>> {
    let bytes = if let Some(text) = &args.command {
        text.as_bytes().to_vec()
    } else if let Some(path) = args.file.as_ref().filter(|p| p.as_os_str() != "-") {
        std::fs::read(path)
            .map_err(|e| usage(format!("cannot read the script {}: {e}", path.display())))?
    } else {
        read_stdin()?
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(usage("the script is empty"));
    }
    Ok(bytes)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        eprintln!("shoal: reading the script from stdin (end with Ctrl-D)");
    }
    let mut buf = Vec::new();
    stdin
        .read_to_end(&mut buf)
        .context("cannot read the script from stdin")?;
    Ok(buf)
}

pub fn build_request(args: &RunArgs, script: Vec<u8>) -> anyhow::Result<ExecuteScriptRequest> {
    let selector = match args.label.as_slice() {
        [] => None,
        parts => Some(parts.join(",")),
    };
    let targets = Targets {
        host_ids: args.hosts.clone(),
        ips: args.ip.iter().map(|s| s.trim().to_string()).collect(),
        selector,
        group_ids: args.group.clone(),
    };
    if targets == Targets::default() {
        return Err(usage("no targets: give --hosts, --ip, --label or --group"));
    }
    let (script, script_base64) = match String::from_utf8(script) {
        Ok(text) => (Some(text), None),
        Err(e) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
            (None, Some(b64))
        }
    };
    Ok(ExecuteScriptRequest {
        scope_id: None,
        name: args.name.clone(),
        script,
        script_base64,
        language: serde_json::Value::String(args.lang.name().to_string()),
        params: args.params.clone(),
        env: args.env.iter().cloned().collect(),
        timeout: args.timeout,
        account: args.account.clone(),
        login_env: args.login_env,
        workdir: args.workdir.clone(),
        targets,
    })
}

#[cfg(test)]
mod tests {
    //! Pins how `shoal run` flags become the execution request: targets, selector joining,
    //! env, and non-UTF-8 scripts sent as base64.
    use super::*;
    use crate::test_args::run as args;

    #[test]
    fn request_from_flags() {
        let a = args(&[
            "run",
            "-c",
            "x",
            "--hosts",
            "1,2",
            "--label",
            "a=b",
            "--label",
            "c in (d,e)",
            "--env",
            "K=V",
            "--lang",
            "python3",
            "--login-env",
            "--name",
            "n",
        ]);
        let req = build_request(&a, b"echo hi".to_vec()).expect("request");
        assert_eq!(req.targets.host_ids, vec![1, 2]);
        assert_eq!(req.targets.selector.as_deref(), Some("a=b,c in (d,e)"));
        assert_eq!(req.env.get("K").map(String::as_str), Some("V"));
        assert_eq!(req.language, serde_json::json!("python"));
        assert_eq!(req.script.as_deref(), Some("echo hi"));
        assert!(req.script_base64.is_none());
        assert!(req.login_env);
        assert_eq!(req.name.as_deref(), Some("n"));
        // Unset options are not sent at all.
        let json = serde_json::to_value(&req).expect("json");
        assert!(json.get("timeout").is_none());
        assert!(json.get("account").is_none());
    }

    #[test]
    fn binary_script_goes_as_base64() {
        let a = args(&["run", "-", "--ip", "10.0.0.1"]);
        let req = build_request(&a, vec![b'e', 0xff, b'\n']).expect("request");
        assert!(req.script.is_none());
        assert_eq!(req.script_base64.as_deref(), Some("Zf8K"));
        assert_eq!(req.targets.ips, vec!["10.0.0.1"]);
    }

    #[test]
    fn no_target_is_a_usage_error() {
        let a = args(&["run", "-c", "x"]);
        let err = build_request(&a, b"x".to_vec()).expect_err("no targets");
        assert_eq!(crate::exit::exit_for(&err), Exit::Usage);
    }
}
