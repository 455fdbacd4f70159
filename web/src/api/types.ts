// JSON shapes of the Shoal REST API (`/api/v1`), as aliases of the types generated from the
// server's OpenAPI description: `schema.d.ts` is written by `openapi-typescript` from
// `web/openapi.json` before every build (`npm run gen:api`), and a Rust test fails when that
// snapshot differs from what the server's code describes. Nothing here is copied by hand: a
// change of the API that the console does not follow fails `tsc`. Status fields are bk-job
// numeric codes (see `status.ts`).

import type { components } from './schema';

type Schemas = components['schemas'];

export type AgentStatus = Schemas['AgentStatus'];
export type Labels = Record<string, string>;

/** One page of a list (the description has one per item type: `Paged_Host`, ...). */
export type Paged<T> = Omit<Schemas['Paged_Host'], 'data'> & { data: T[] };

export type Host = Schemas['Host'];
export type HostSummary = Schemas['HostSummary'];
export type Group = Schemas['Group'];
export type Targets = Schemas['Targets'];
export type PreviewResponse = Schemas['PreviewResponse'];
export type LanguageName = Schemas['Language'];

/** The request as the console sends it: `language` by name (the API also takes bk-job codes). */
export type ExecuteScriptRequest = Omit<Schemas['ExecuteScriptRequest'], 'language'> & { language: LanguageName };
export type ExecuteScriptResponse = Schemas['ExecuteScriptResponse'];
export type Job = Schemas['Job'];
export type ScriptSpec = Schemas['ScriptStepSpec'];
export type Step = Schemas['Step'];
export type StatusCount = Schemas['StatusCount'];
export type JobDetail = Schemas['JobDetail'];
export type TaskRow = Schemas['TaskRow'];
export type ResultGroup = Schemas['ResultGroup'];

/** How result groups are formed: `status` (status, exit code, tag) or `output` (also identical output). */
export type GroupBy = Schemas['GroupBy'];
export type GroupsResponse = Schemas['ResultGroups'];

/** A file step's spec as shown; inline text is stored as an upload. */
export type FileSourceSpec = Schemas['FileSource'];
export type FileSpec = Schemas['FileStepSpec'];
export type UploadInfo = Schemas['Upload'];
export type TokenRecord = Schemas['Token'];
export type CreateTokenResponse = Schemas['CreateTokenResponse'];
export type LogResponse = Schemas['LogResponse'];
export type RetryResponse = Schemas['RetryResponse'];
export type JobEvent = Schemas['JobEvent'];

/** One source of `POST /api/v1/file-transfers`: paths on hosts, an upload, or inline text. */
export type FileSourceRequest = Schemas['FileSourceRequest'];
export type DuplicateHandling = Schemas['DuplicateMode'];

/** The request as the console sends it: `transfer_mode` by name (the API also takes 1 and 2). */
export type FileTransferRequest = Omit<Schemas['FileTransferRequest'], 'transfer_mode'> & {
  transfer_mode?: 'strict' | 'force';
};
export type FileTransferResponse = Schemas['FileTransferResponse'];
export type UploadResponse = Schemas['UploadResponse'];

/** Status of one file transfer (bk-job file log codes): 1 waiting, 2 uploading, 3 downloading, 4 success, 5 failed. */
export type FileStatusCode = Schemas['FileStatus'];

/** A row of `GET /api/v1/steps/{id}/files`: one file on one host (mode 0 upload at a source, 1 download at a target). */
export type FileTaskRow = Schemas['FileTaskRow'];

export type WhoAmI = Schemas['WhoAmI'];

/** The error codes the server sends (`ErrorBody.error.code`). */
export type ServerErrorCode = Schemas['ErrorCode'];

export type AuthConfig = Schemas['AuthConfig'];
export type SignedIn = Schemas['SignedIn'];
export type ScopeAccess = Schemas['ScopeAccess'];
export type Permission = Schemas['Permission'];
export type Role = Schemas['Role'];
export type User = Schemas['User'];
export type CreateUserRequest = Schemas['CreateUserRequest'];
export type UpdateUserRequest = Schemas['UpdateUserRequest'];
export type Scope = Schemas['Scope'];
export type RoleBinding = Schemas['RoleBinding'];
export type PutRoleBindingRequest = Schemas['PutRoleBindingRequest'];
export type AuditRecord = Schemas['AuditRecord'];
export type AuditPage = Schemas['AuditPage'];
