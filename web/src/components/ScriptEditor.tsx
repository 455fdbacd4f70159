// The script editor: CodeMirror with syntax highlighting for the chosen language.

import { StreamLanguage, type StreamParser } from '@codemirror/language';
import { perl } from '@codemirror/legacy-modes/mode/perl';
import { powerShell } from '@codemirror/legacy-modes/mode/powershell';
import { python } from '@codemirror/legacy-modes/mode/python';
import { shell } from '@codemirror/legacy-modes/mode/shell';
import CodeMirror, { EditorView } from '@uiw/react-codemirror';
import { useMemo } from 'react';
import type { LanguageName } from '../api/types';

/** A small highlighter for Windows batch files (no legacy mode exists for them). */
const batch: StreamParser<unknown> = {
  name: 'batch',
  token(stream) {
    if (stream.sol() && stream.match(/^\s*(rem\b|::).*/i)) return 'comment';
    if (stream.sol() && stream.match(/^\s*:[A-Za-z_][\w]*/)) return 'labelName';
    if (stream.eatSpace()) return null;
    if (stream.match(/^%%?~?[A-Za-z0-9_]+%?/) || stream.match(/^![A-Za-z0-9_]+!/)) return 'variableName';
    if (stream.match(/^"[^"]*"?/)) return 'string';
    if (
      stream.match(
        /^(echo|set|if|else|for|in|do|goto|call|exit|setlocal|endlocal|not|exist|defined|errorlevel|equ|neq|lss|leq|gtr|geq|shift|pushd|popd|cd|dir|del|copy|move|type|start)\b/i,
      )
    )
      return 'keyword';
    if (stream.match(/^@?echo\s+off/i)) return 'keyword';
    stream.next();
    return null;
  },
};

const MODES: Record<LanguageName, StreamParser<unknown>> = {
  shell,
  python,
  perl,
  powershell: powerShell,
  bat: batch,
};

export default function ScriptEditor({
  language,
  value,
  onChange,
  height = '320px',
  maxHeight,
  readOnly = false,
}: {
  language: LanguageName;
  value: string;
  onChange?: (v: string) => void;
  height?: string;
  maxHeight?: string;
  /** Shows a script that ran: highlighted, selectable, not editable. */
  readOnly?: boolean;
}) {
  const extensions = useMemo(() => [StreamLanguage.define(MODES[language]), EditorView.lineWrapping], [language]);
  return (
    <div className="cm-editor-wrap" data-testid="script-editor" data-language={language}>
      <CodeMirror
        value={value}
        height={height}
        maxHeight={maxHeight}
        extensions={extensions}
        onChange={onChange}
        editable={!readOnly}
        readOnly={readOnly}
        basicSetup={{ lineNumbers: true, foldGutter: false, highlightActiveLine: true }}
      />
    </div>
  );
}
