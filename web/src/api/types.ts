// JSON shapes of the Shoal REST API (`/api/v1`), mirroring `shoal_types::api` and the records of
// `shoal_store`. Status fields are bk-job numeric codes (see `status.ts`).

export type AgentStatus = 'online' | 'offline' | 'abnormal';
export type Labels = Record<string, string>;

export interface Paged<T> {
  start: number;
  length: number;
  total: number;
  data: T[];
}

export interface Host {
  id: number;
  scope_id: number;
  agent_id: string;
  hostname: string;
  ip: string;
  ips: string[];
  os: string;
  os_version: string;
  arch: string;
  agent_version: string;
  labels: Labels;
  agent_labels: Labels;
  user_labels: Labels;
  status: AgentStatus;
  generation: number;
  last_seen: number | null;
  created_at: number;
  revoked_at: number | null;
}

export interface HostSummary {
  total: number;
  online: number;
  offline: number;
  abnormal: number;
}

export interface Group {
  id: number;
  scope_id: number;
  name: string;
  selector: string;
  created_at: number;
  updated_at: number;
}

export interface Targets {
  host_ids?: number[];
  ips?: string[];
  selector?: string;
  group_ids?: number[];
}

export interface PreviewResponse {
  total: number;
  online: number;
  offline: number;
  abnormal: number;
  not_online_ids: number[];
}

export type LanguageName = 'shell' | 'bat' | 'perl' | 'python' | 'powershell';

export interface ExecuteScriptRequest {
  scope_id?: number;
  name?: string;
  script?: string;
  language: LanguageName;
  params?: string;
  env?: Record<string, string>;
  timeout?: number;
  account?: string;
  login_env?: boolean;
  workdir?: string;
  targets: Targets;
}

export interface ExecuteScriptResponse {
  job_instance_id: number;
  job_instance_name: string;
  step_instance_id: number;
  host_count: number;
  abnormal_count: number;
}

export interface Job {
  id: number;
  scope_id: number;
  name: string;
  job_type: string;
  launch_mode: string;
  operator: string;
  status: number;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  host_count: number;
}

export interface ScriptSpec {
  language: LanguageName;
  content: string;
  args?: string[];
  /** Names of the environment variables; the API never shows their values. */
  env_names: string[];
  account?: string;
  login_env?: boolean;
  workdir?: string;
  timeout_secs: number;
}

export interface Step {
  id: number;
  job_id: number;
  ordinal: number;
  name: string;
  step_type: string;
  spec: ScriptSpec | FileSpec | Record<string, unknown>;
  status: number;
  attempt: number;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  host_count: number;
}

export interface StatusCount {
  status: number;
  count: number;
}

export interface JobDetail {
  job: Job;
  finished: boolean;
  steps: { step: Step; counts: StatusCount[] }[];
}

export interface TaskRow {
  step_id: number;
  attempt: number;
  host_id: number;
  ip: string;
  hostname: string;
  status: number;
  exit_code: number | null;
  tag: string | null;
  digest: string | null;
  started_at: number | null;
  ended_at: number | null;
  log_len: number;
  truncated: boolean;
  error: string | null;
}

export interface ResultGroup {
  status: number;
  exit_code: number | null;
  tag: string | null;
  digest: string | null;
  host_count: number;
  sample_host_id: number;
}

/** How result groups are formed: `status` (status, exit code, tag) or `output` (also identical output). */
export type GroupBy = 'status' | 'output';

export interface GroupsResponse {
  attempt?: number;
  by?: GroupBy;
  groups: ResultGroup[];
}

/** A file step's spec as stored (`shoal_types::files::FileSpec`); inline text is stored as an upload. */
export type FileSourceSpec =
  | { kind: 'host'; host_ids: number[]; paths: string[]; account?: string }
  | { kind: 'upload'; upload_id: string; name: string };

export interface FileSpec {
  sources: FileSourceSpec[];
  target_dir: string;
  account?: string;
  dir_mode?: 'strict' | 'force';
  duplicate?: DuplicateHandling;
  upload_limit_mbps?: number | null;
  download_limit_mbps?: number | null;
  timeout_secs: number;
  peer_to_peer?: boolean;
}

export interface UploadInfo {
  id: string;
  name: string;
  size: number;
}

export interface TokenRecord {
  id: number;
  name: string;
  kind: 'api' | 'enroll';
  scope_id: number;
  created_by: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface CreateTokenResponse {
  id: number;
  name: string;
  kind: string;
  token: string;
  expires_at: number | null;
}

export interface LogResponse {
  step_instance_id: number;
  host_id: number;
  attempt: number;
  offset: number;
  next_offset: number;
  total: number;
  finished: boolean;
  truncated: boolean;
  content: string;
  content_base64: string;
}

export interface RetryResponse {
  step_instance_id: number;
  attempt: number;
  rerun_count: number;
}

export type JobEvent =
  | { event: 'job'; job_id: number; status: number }
  | { event: 'step'; job_id: number; step_id: number; attempt: number; status: number; counts: StatusCount[] }
  | { event: 'log'; job_id: number; step_id: number; attempt: number; host_id: number; total: number }
  | { event: 'task'; job_id: number; step_id: number; attempt: number; host_id: number; status: number };

/** One source of `POST /api/v1/file-transfers`: paths on hosts, an upload, or inline text. */
export interface FileSourceRequest {
  file_list?: string[];
  targets?: Targets;
  account?: string;
  upload_id?: string;
  name?: string;
  inline_content_base64?: string;
}

export type DuplicateHandling = 'overwrite' | 'by_source_ip' | 'by_date_and_source_ip';

export interface FileTransferRequest {
  scope_id?: number;
  name?: string;
  file_source_list: FileSourceRequest[];
  file_target_path: string;
  account?: string;
  targets: Targets;
  transfer_mode?: 'strict' | 'force';
  duplicate_handling?: DuplicateHandling;
  /** MB/s per host (1 MB = 1,048,576 bytes). */
  upload_speed_limit?: number;
  download_speed_limit?: number;
  timeout?: number;
  peer_to_peer?: boolean;
}

export interface UploadResponse {
  upload_id: string;
  name: string;
  size: number;
  expires_at: number;
}

/** Status of one file transfer (bk-job file log codes): 1 waiting, 2 uploading, 3 downloading, 4 success, 5 failed. */
export type FileStatusCode = 1 | 2 | 3 | 4 | 5;

/** A row of `GET /api/v1/steps/{id}/files`: one file on one host (mode 0 upload at a source, 1 download at a target). */
export interface FileTaskRow {
  step_id: number;
  attempt: number;
  mode: number;
  host_id: number;
  source_host_id: number | null;
  source_path: string;
  dest_path: string;
  ip: string;
  hostname: string;
  source_ip: string | null;
  source_hostname: string | null;
  size: number;
  bytes_done: number;
  /** Bytes per second, as last reported. */
  speed: number;
  status: FileStatusCode;
  error: string | null;
  started_at: number | null;
  ended_at: number | null;
}

export interface WhoAmI {
  token_id: number;
  name: string;
}
