"""Schemathesis hooks for api_fuzz.rs: keep the fuzzer's requests harmless to the machine the
sandbox runs on and to the fuzzing itself, without narrowing what the API is tested with.

- Scripts and file transfers run on real agents, which share this machine's file system: every
  request body that names an account (or could) names `nobody`, so nothing generated runs or
  writes as root.
- The fuzzer's own token is never revoked (the rest of the run would only see 401s).
"""

import os

import schemathesis

LAUNCHES = ("/script-executions", "/file-transfers")
OWN_TOKEN_ID = os.environ.get("SHOAL_FUZZ_TOKEN_ID", "")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    if path.endswith(LAUNCHES) and isinstance(case.body, dict):
        case.body["account"] = "nobody"
        for source in case.body.get("file_source_list") or []:
            if isinstance(source, dict):
                source["account"] = "nobody"
    if (
        case.method.upper() == "DELETE"
        and path.endswith("/tokens/{id}")
        and str((case.path_parameters or {}).get("id")) == OWN_TOKEN_ID
    ):
        case.path_parameters["id"] = int(OWN_TOKEN_ID) + 1_000_000
