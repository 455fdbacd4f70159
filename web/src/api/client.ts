// The console's only door to the server: `fetch` against the console's mount of the REST API,
// with the session cookie (and the CSRF header on every state-changing request), JSON bodies and the error contract `{"error":{"code","message"}}` turned into `ApiError`.

import type {
  AuditPage,
  AuthConfig,
  CreateUserRequest,
  PutRoleBindingRequest,
  RoleBinding,
  Scope,
  SignedIn,
  UpdateUserRequest,
  User,
  CreateTokenResponse,
  ExecuteScriptRequest,
  ExecuteScriptResponse,
  FileTaskRow,
  FileTransferRequest,
  Group,
  GroupBy,
  GroupsResponse,
  Host,
  HostSummary,
  Job,
  JobDetail,
  LogResponse,
  Paged,
  PreviewResponse,
  RetryResponse,
  TaskRow,
  Targets,
  TokenRecord,
  UploadInfo,
  UploadResponse,
  ServerErrorCode,
  WhoAmI,
} from './types';

/**
 * Every error code the server sends, checked against the generated `ErrorCode` union: a code the
 * server adds or drops fails `tsc` here until the console (and its messages) follow.
 */
const SERVER_CODES = {
  UNAUTHENTICATED: true,
  PERMISSION_DENIED: true,
  NOT_FOUND: true,
  INVALID_ARGUMENT: true,
  MALFORMED_JSON: true,
  UNKNOWN_HOST: true,
  UNKNOWN_GROUP: true,
  EMPTY_TARGET: true,
  UNKNOWN_LANGUAGE: true,
  SCRIPT_TOO_LARGE: true,
  TIMEOUT_OUT_OF_RANGE: true,
  INVALID_SELECTOR: true,
  INVALID_PARAMS: true,
  INVALID_PATH: true,
  UNKNOWN_UPLOAD: true,
  INVALID_STATE: true,
  CONFLICT: true,
  PAYLOAD_TOO_LARGE: true,
  URI_TOO_LONG: true,
  HEADERS_TOO_LARGE: true,
  UNKNOWN_SCOPE: true,
  TOO_MANY_ATTEMPTS: true,
  INTERNAL: true,
  UNAVAILABLE: true,
} as const satisfies Record<ServerErrorCode, true>;

/** The closed set of error codes: the server's, plus the console's own network/parse codes. */
export const ERROR_CODES = [...(Object.keys(SERVER_CODES) as ServerErrorCode[]), 'NETWORK', 'BAD_RESPONSE'] as const;
export type ErrorCode = ServerErrorCode | 'NETWORK' | 'BAD_RESPONSE';

export class ApiError extends Error {
  code: ErrorCode;
  status: number;
  detail: string;
  constructor(code: ErrorCode, status: number, detail: string) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.status = status;
    this.detail = detail;
  }
}

/**
 * Whether the console holds a session (set by the session provider): a 401 while signed in ends
 * it; failures once it has ended are not reported.
 */
let signedIn = false;
export function isSignedIn(): boolean {
  return signedIn;
}
export function setSignedIn(v: boolean) {
  signedIn = v;
}

/** The CSRF token of the session: the readable `shoal_csrf` cookie the server set at sign-in. */
export function csrfToken(): string | null {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'shoal_csrf') return decodeURIComponent(v.join('='));
  }
  return null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Called when any request answers 401, so the app can return to the sign-in page. */
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(f: (() => void) | null) {
  onUnauthenticated = f;
}

type Query = Record<string, string | number | boolean | null | undefined>;

export function qs(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

function statusToCode(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 503:
      return 'UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL' : status >= 400 ? 'INVALID_ARGUMENT' : 'BAD_RESPONSE';
  }
}

/** The `ApiError` of an answer with an error status (and the sign-out hook on 401). */
function errorOf(status: number, statusText: string, text: string): ApiError {
  let code: ErrorCode = statusToCode(status);
  let detail = text.slice(0, 500) || statusText;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code && (ERROR_CODES as readonly string[]).includes(body.error.code)) {
      code = body.error.code as ErrorCode;
    }
    if (body.error?.message) detail = body.error.message;
  } catch {
    /* not JSON: keep the status-derived code */
  }
  if (code === 'UNAUTHENTICATED' && signedIn && onUnauthenticated) onUnauthenticated();
  return new ApiError(code, status, detail);
}

/**
 * `POST /api/v1/uploads?name=NAME` with the file as the raw body. Uses XMLHttpRequest because
 * `fetch` reports no upload progress; `onProgress` gets the bytes sent so far.
 */
export function uploadFile(file: Blob, name: string, onProgress: (sent: number) => void, signal?: AbortSignal): Promise<UploadResponse> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${V1}/uploads${qs({ name })}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const csrf = csrfToken();
    if (csrf) xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 200 || xhr.status >= 300) return reject(errorOf(xhr.status, xhr.statusText, xhr.responseText));
      try {
        resolve(JSON.parse(xhr.responseText) as UploadResponse);
      } catch {
        reject(new ApiError('BAD_RESPONSE', xhr.status, 'the server answered with something that is not JSON'));
      }
    };
    xhr.onerror = () => reject(new ApiError('NETWORK', 0, 'network error'));
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(file);
  });
}

export async function request<T>(
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  if (!SAFE_METHODS.has(method)) {
    const csrf = csrfToken();
    if (csrf) headers['x-csrf-token'] = csrf;
  }
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('NETWORK', 0, (e as Error).message || 'network error');
  }
  const text = await resp.text();
  if (!resp.ok) throw errorOf(resp.status, resp.statusText, text);
  if (resp.status === 204 || text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError('BAD_RESPONSE', resp.status, 'the server answered with something that is not JSON');
  }
}

// The console's mount of the API: the server records launches made here as console launches.
export const V1 = '/api/web/v1';

export const api = {
  whoami: () => request<WhoAmI>('GET', `${V1}/whoami`),
  authConfig: () => request<AuthConfig>('GET', `${V1}/auth/config`),
  login: (name: string, password: string) => request<SignedIn>('POST', `${V1}/auth/login`, { body: { name, password } }),
  logout: () => request<void>('POST', `${V1}/auth/logout`),
  changePassword: (current: string, next: string) =>
    request<void>('POST', `${V1}/me/password`, { body: { current, new: next } }),
  revokeSessions: (userId: number) => request<unknown>('POST', `${V1}/users/${userId}/sessions/revoke`),
  users: () => request<User[]>('GET', `${V1}/users`),
  createUser: (body: CreateUserRequest) => request<User>('POST', `${V1}/users`, { body }),
  updateUser: (id: number, body: UpdateUserRequest) => request<User>('PATCH', `${V1}/users/${id}`, { body }),
  scopes: () => request<Scope[]>('GET', `${V1}/scopes`),
  createScope: (name: string) => request<Scope>('POST', `${V1}/scopes`, { body: { name } }),
  bindings: (q: { scope_id?: number; user_id?: number }) => request<RoleBinding[]>('GET', `${V1}/role-bindings${qs(q)}`),
  putBinding: (body: PutRoleBindingRequest) => request<RoleBinding>('PUT', `${V1}/role-bindings`, { body }),
  deleteBinding: (id: number) => request<void>('DELETE', `${V1}/role-bindings/${id}`),
  audit: (q: AuditQuery) => request<AuditPage>('GET', `${V1}/audit${qs(q)}`),
  hostSummary: () => request<HostSummary>('GET', `${V1}/hosts/summary`),
  hosts: (q: {
    status?: string;
    ip?: string;
    q?: string;
    os?: string;
    selector?: string;
    group_id?: number;
    start?: number;
    length?: number;
  }, signal?: AbortSignal) => request<Paged<Host>>('GET', `${V1}/hosts${qs(q)}`, { signal }),
  host: (id: number) => request<Host>('GET', `${V1}/hosts/${id}`),
  revokeHost: (id: number) => request<Host>('POST', `${V1}/hosts/${id}/revoke`),
  tokens: () => request<TokenRecord[]>('GET', `${V1}/tokens`),
  createToken: (body: {
    name: string;
    kind: 'api' | 'enroll';
    ttl_secs?: number;
    read_only?: boolean;
    only_scope_id?: number;
    user_id?: number;
  }) =>
    request<CreateTokenResponse>('POST', `${V1}/tokens`, { body }),
  revokeToken: (id: number) => request<void>('DELETE', `${V1}/tokens/${id}`),
  upload: (id: string) => request<UploadInfo>('GET', `${V1}/uploads/${id}`),
  setLabels: (id: number, labels: Record<string, string>) =>
    request<Host>('PUT', `${V1}/hosts/${id}/labels`, { body: { labels } }),
  groups: () => request<Group[]>('GET', `${V1}/groups`),
  createGroup: (name: string, selector: string) => request<Group>('POST', `${V1}/groups`, { body: { name, selector } }),
  updateGroup: (id: number, name: string, selector: string) =>
    request<Group>('PUT', `${V1}/groups/${id}`, { body: { name, selector } }),
  deleteGroup: (id: number) => request<void>('DELETE', `${V1}/groups/${id}`),
  preview: (targets: Targets, signal?: AbortSignal, scopeId?: number) =>
    request<PreviewResponse>('POST', `${V1}/targets/preview`, {
      body: scopeId === undefined ? { targets } : { targets, scope_id: scopeId },
      signal,
    }),
  execute: (req: ExecuteScriptRequest) =>
    request<ExecuteScriptResponse>('POST', `${V1}/script-executions`, { body: req }),
  jobs: (q: {
    from?: number;
    to?: number;
    status?: string;
    operator?: string;
    name?: string;
    ip?: string;
    start?: number;
    length?: number;
  }) => request<Paged<Job>>('GET', `${V1}/jobs${qs(q)}`),
  job: (id: number) => request<JobDetail>('GET', `${V1}/jobs/${id}`),
  terminate: (id: number) => request<unknown>('POST', `${V1}/jobs/${id}/terminate`),
  stepHosts: (
    stepId: number,
    q: {
      attempt?: number;
      status?: string;
      ip?: string;
      keyword?: string;
      group_status?: number;
      group_exit_code?: number | null;
      group_tag?: string | null;
      group_digest?: string | null;
      start?: number;
      length?: number;
    },
    signal?: AbortSignal,
  ) => request<Paged<TaskRow>>('GET', `${V1}/steps/${stepId}/hosts${qs(q)}`, { signal }),
  stepGroups: (stepId: number, attempt?: number, by?: GroupBy) =>
    request<GroupsResponse>('GET', `${V1}/steps/${stepId}/groups${qs({ attempt, by })}`),
  log: (stepId: number, hostId: number, q: { attempt?: number; offset?: number; limit?: number }) =>
    request<LogResponse>('GET', `${V1}/steps/${stepId}/hosts/${hostId}/log${qs(q)}`),
  retry: (stepId: number, mode: 'failed' | 'all') =>
    request<RetryResponse>('POST', `${V1}/steps/${stepId}/retry`, { body: { mode } }),
  transferFiles: (req: FileTransferRequest) =>
    request<ExecuteScriptResponse>('POST', `${V1}/file-transfers`, { body: req }),
  stepFiles: (
    stepId: number,
    q: { attempt?: number; mode?: 'upload' | 'download'; host_id?: number; status?: number; start?: number; length?: number },
    signal?: AbortSignal,
  ) => request<Paged<FileTaskRow>>('GET', `${V1}/steps/${stepId}/files${qs(q)}`, { signal }),
};

/** The URL of a job's event stream (EventSource sends the session cookie: same origin). */
export function eventsUrl(jobId: number, hostId?: number): string {
  return `${V1}/jobs/${jobId}/events${qs({ host_id: hostId })}`;
}

/** The filters of the audit trail (`GET /audit` and its export). */
export type AuditQuery = {
  from?: number;
  to?: number;
  actor?: string;
  action?: string;
  scope_id?: number;
  resource?: string;
  outcome?: string;
  before_id?: number;
  limit?: number;
};

/** The URL of the audit trail's export with the same filters. */
export function auditExportUrl(q: AuditQuery): string {
  return `${V1}/audit/export${qs({ ...q, before_id: undefined, limit: undefined })}`;
}
