// Status codes (bk-job numbering, from `shoal_types::status`) with their label keys and colours.

import type { Key } from './i18n/dict';

/** Job and step run status (`RunStatus`). */
export const RUN_STATUS: Record<number, { key: Key; color: string }> = {
  1: { key: 'run.1', color: 'default' },
  2: { key: 'run.2', color: 'processing' },
  3: { key: 'run.3', color: 'success' },
  4: { key: 'run.4', color: 'error' },
  5: { key: 'run.5', color: 'default' },
  6: { key: 'run.6', color: 'warning' },
  7: { key: 'run.7', color: 'warning' },
  8: { key: 'run.8', color: 'warning' },
  9: { key: 'run.9', color: 'error' },
  10: { key: 'run.10', color: 'processing' },
  11: { key: 'run.11', color: 'warning' },
  13: { key: 'run.13', color: 'default' },
  14: { key: 'run.14', color: 'default' },
  15: { key: 'run.15', color: 'default' },
};

/** Run statuses that are final. */
export const RUN_TERMINAL = [3, 4, 5, 6, 8, 9, 11, 13, 14];
/** Run statuses shown as filters in history (8 also matches 11: both read "Terminated"). */
export const RUN_FILTERABLE = [1, 2, 3, 4, 8, 9, 10];

export function runTerminal(status: number): boolean {
  return RUN_TERMINAL.includes(status);
}

/** Per-host task status (`HostTaskStatus`). */
export const TASK_STATUS: Record<number, { key: Key; color: string }> = {
  0: { key: 'task.0', color: 'error' },
  1: { key: 'task.1', color: 'error' },
  2: { key: 'task.2', color: 'error' },
  3: { key: 'task.3', color: 'success' },
  5: { key: 'task.5', color: 'default' },
  7: { key: 'task.7', color: 'processing' },
  9: { key: 'task.9', color: 'success' },
  11: { key: 'task.11', color: 'error' },
  12: { key: 'task.12', color: 'error' },
  13: { key: 'task.13', color: 'error' },
  18: { key: 'task.18', color: 'error' },
  101: { key: 'task.101', color: 'error' },
  102: { key: 'task.102', color: 'error' },
  103: { key: 'task.103', color: 'warning' },
  104: { key: 'task.104', color: 'error' },
  202: { key: 'task.202', color: 'error' },
  203: { key: 'task.203', color: 'error' },
  301: { key: 'task.301', color: 'error' },
  303: { key: 'task.303', color: 'error' },
  311: { key: 'task.311', color: 'error' },
  399: { key: 'task.399', color: 'error' },
};

export function taskTerminal(status: number): boolean {
  return status !== 5 && status !== 7;
}

export function taskSuccess(status: number): boolean {
  return status === 9 || status === 3;
}

/** Per-file transfer status (`FileStatus`, bk-job file log codes). */
export const FILE_STATUS: Record<number, { key: Key; color: string }> = {
  1: { key: 'fileStatus.1', color: 'default' },
  2: { key: 'fileStatus.2', color: 'processing' },
  3: { key: 'fileStatus.3', color: 'processing' },
  4: { key: 'fileStatus.4', color: 'success' },
  5: { key: 'fileStatus.5', color: 'error' },
};

export const AGENT_STATUS: Record<string, { key: Key; color: string }> = {
  online: { key: 'agent.online', color: 'success' },
  offline: { key: 'agent.offline', color: 'default' },
  abnormal: { key: 'agent.abnormal', color: 'error' },
};
