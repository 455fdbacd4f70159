// Log text with ANSI colours rendered as styled spans (React text nodes only, never HTML), and
// optional search marks over the text as shown (escapes removed).

import type { CSSProperties, ReactNode } from 'react';
import { hasStyle, type AnsiSegment, type AnsiStyle } from '../ansi';

function css(s: AnsiStyle): CSSProperties {
  return {
    color: s.fg,
    backgroundColor: s.bg,
    fontWeight: s.bold ? 'bold' : undefined,
    opacity: s.dim ? 0.7 : undefined,
    fontStyle: s.italic ? 'italic' : undefined,
    textDecoration: s.underline ? 'underline' : undefined,
  };
}

/**
 * The segments as nodes; `matches` are start offsets (ascending) of `len`-character marks in the
 * plain text, `current` the index of the highlighted one.
 */
export function renderAnsi(segments: AnsiSegment[], matches: number[] = [], len = 0, current = -1): ReactNode[] {
  const out: ReactNode[] = [];
  let pos = 0;
  let mi = 0;
  let key = 0;
  for (const seg of segments) {
    const end = pos + seg.text.length;
    const pieces: ReactNode[] = [];
    let at = pos;
    while (at < end) {
      while (mi < matches.length && matches[mi] + len <= at) mi++;
      const m = mi < matches.length ? matches[mi] : Infinity;
      if (m > at) {
        const stop = Math.min(end, m);
        pieces.push(seg.text.slice(at - pos, stop - pos));
        at = stop;
        continue;
      }
      const stop = Math.min(end, m + len);
      pieces.push(
        <mark key={key++} className={mi === current ? 'current' : undefined}>
          {seg.text.slice(at - pos, stop - pos)}
        </mark>,
      );
      at = stop;
    }
    if (hasStyle(seg.style)) {
      out.push(
        <span key={key++} className="ansi" style={css(seg.style)}>
          {pieces}
        </span>,
      );
    } else out.push(...pieces);
    pos = end;
  }
  return out;
}
