// On-demand paging for virtual tables: rows are fetched one server page at a time (never the
// whole list), only for the pages near what is on screen, and a bounded number of pages is kept.

import { useCallback, useEffect, useRef, useState } from 'react';
import type { Paged } from '../api/types';

export const PAGE_SIZE = 200;
const KEEP_PAGES = 12;

export interface PagedRows<T> {
  total: number | null;
  /** Bumped whenever rows arrive; include it in memo deps. */
  version: number;
  loading: boolean;
  error: unknown;
  row: (index: number) => T | undefined;
  /** Makes sure the pages covering rows [first, last] are loaded (or loading). */
  ensure: (first: number, last: number) => void;
  reload: () => void;
}

export function usePagedRows<T>(
  fetchPage: (start: number, length: number, signal: AbortSignal) => Promise<Paged<T>>,
  key: string,
): PagedRows<T> {
  const pages = useRef(new Map<number, T[]>());
  const inflight = useRef(new Map<number, AbortController>());
  const generation = useRef(0);
  const lastWanted = useRef<[number, number]>([0, 0]);
  const [total, setTotal] = useState<number | null>(null);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;

  const load = useCallback((page: number) => {
    if (pages.current.has(page) || inflight.current.has(page)) return;
    const gen = generation.current;
    const ctl = new AbortController();
    inflight.current.set(page, ctl);
    setLoading(true);
    fetchRef
      .current(page * PAGE_SIZE, PAGE_SIZE, ctl.signal)
      .then((res) => {
        if (gen !== generation.current) return;
        pages.current.set(page, res.data);
        // Evict the pages farthest from what is wanted now.
        if (pages.current.size > KEEP_PAGES) {
          const center = Math.floor((lastWanted.current[0] + lastWanted.current[1]) / 2 / PAGE_SIZE);
          const sorted = [...pages.current.keys()].sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
          for (const p of sorted.slice(0, pages.current.size - KEEP_PAGES)) pages.current.delete(p);
        }
        setTotal(res.total);
        setError(null);
        setVersion((v) => v + 1);
      })
      .catch((e) => {
        if (gen !== generation.current || (e as Error).name === 'AbortError') return;
        setError(e);
      })
      .finally(() => {
        if (inflight.current.get(page) === ctl) inflight.current.delete(page);
        if (inflight.current.size === 0) setLoading(false);
      });
  }, []);

  const ensure = useCallback(
    (first: number, last: number) => {
      lastWanted.current = [first, last];
      const lo = Math.max(0, Math.floor(first / PAGE_SIZE));
      const hi = Math.max(lo, Math.floor(Math.max(first, last) / PAGE_SIZE));
      // Pages scrolled far away are not worth finishing.
      for (const [p, ctl] of inflight.current) {
        if (p < lo - 1 || p > hi + 1) {
          ctl.abort();
          inflight.current.delete(p);
        }
      }
      for (let p = lo; p <= hi; p++) load(p);
    },
    [load],
  );

  const reset = useCallback(() => {
    generation.current += 1;
    for (const ctl of inflight.current.values()) ctl.abort();
    inflight.current.clear();
    pages.current.clear();
    setError(null);
    setVersion((v) => v + 1);
  }, []);

  useEffect(() => {
    reset();
    setTotal(null);
    load(0);
  }, [key, reset, load]);

  const reload = useCallback(() => {
    const [first, last] = lastWanted.current;
    reset();
    ensure(first, last);
  }, [reset, ensure]);

  const row = useCallback((index: number) => pages.current.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE], []);

  return { total, version, loading, error, row, ensure, reload };
}
