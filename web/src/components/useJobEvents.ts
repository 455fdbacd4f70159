// Subscribes to a job's Server-Sent Events (`/api/v1/jobs/{id}/events`), reconnecting after
// errors. The stream opens with the job's current state, so a reconnect loses nothing.

import { useEffect, useRef, useState } from 'react';
import { eventsUrl } from '../api/client';
import type { JobEvent } from '../api/types';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'off';

export function useJobEvents(
  jobId: number,
  opts: { hostId?: number; enabled: boolean; onEvent: (e: JobEvent | { event: 'resync' }) => void },
): LiveState {
  const [state, setState] = useState<LiveState>('off');
  const handler = useRef(opts.onEvent);
  handler.current = opts.onEvent;

  useEffect(() => {
    if (!opts.enabled || !Number.isFinite(jobId)) {
      setState('off');
      return;
    }
    let es: EventSource | null = null;
    let timer: number | undefined;
    let closed = false;
    const open = () => {
      setState((s) => (s === 'reconnecting' ? s : 'connecting'));
      es = new EventSource(eventsUrl(jobId, opts.hostId));
      es.onopen = () => setState('live');
      const on = (ev: MessageEvent) => {
        try {
          handler.current(JSON.parse(ev.data) as JobEvent);
        } catch {
          /* a malformed event: ignore it, the next full refresh corrects the view */
        }
      };
      for (const name of ['job', 'step', 'log', 'task']) es.addEventListener(name, on as EventListener);
      es.addEventListener('resync', () => handler.current({ event: 'resync' }));
      es.onerror = () => {
        if (closed) return;
        setState('reconnecting');
        // EventSource retries by itself unless the server answered with an error status.
        if (es && es.readyState === EventSource.CLOSED) {
          es.close();
          timer = window.setTimeout(() => {
            if (!closed) {
              open();
              handler.current({ event: 'resync' });
            }
          }, 2000);
        }
      };
    };
    open();
    return () => {
      closed = true;
      window.clearTimeout(timer);
      es?.close();
    };
  }, [jobId, opts.hostId, opts.enabled]);

  return state;
}
