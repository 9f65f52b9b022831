/**
 * Finds where a field of a config file's object literal is written, so a config error can name the
 * line. A small scanner, not a parser: it follows braces, brackets and parentheses, skips strings,
 * template literals and comments, and records each `key:` under its path (`workers[0].replicas`).
 * Values built by code are not followed; a field it cannot place falls back to its nearest
 * placed parent, or to no line at all.
 */

export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

interface Frame {
  readonly kind: '{' | '[' | '(';
  readonly path: string;
  /** Array element index, for '['. */
  index: number;
  /** The key whose value is being read, for '{'. */
  key: string | undefined;
}

/** `a.b[0]`-style path text; keys that are not identifiers are quoted (`models["echo@1"]`). */
export function joinPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  const safe = /^[A-Za-z_$][\w$]*$/.test(key) ? key : undefined;
  if (safe === undefined) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? safe : `${parent}.${safe}`;
}

export class ConfigLocator {
  private readonly positions = new Map<string, SourcePosition>();

  constructor(source: string) {
    this.scan(source);
  }

  /** The position of `path`, or of its nearest written parent; undefined when neither is in the file. */
  find(path: string): SourcePosition | undefined {
    let at = path;
    for (;;) {
      const found = this.positions.get(at);
      if (found !== undefined) return found;
      const cut = Math.max(at.lastIndexOf('.'), at.lastIndexOf('['));
      if (cut <= 0) return undefined;
      at = at.slice(0, cut);
    }
  }

  private scan(src: string): void {
    const stack: Frame[] = [];
    let line = 1;
    let lineStart = 0;
    let pending: { key: string; line: number; column: number } | undefined;
    const top = (): Frame | undefined => stack[stack.length - 1];
    const childPath = (): string => {
      const frame = top();
      if (frame === undefined) return '';
      if (frame.kind === '[') return joinPath(frame.path, frame.index);
      if (frame.kind === '{' && frame.key !== undefined) return joinPath(frame.path, frame.key);
      // An object opened where no key or element is pending (a function body, a call's argument): a new root.
      return '';
    };
    let i = 0;
    while (i < src.length) {
      const c = src[i]!;
      if (c === '\n') {
        line++;
        lineStart = i + 1;
        i++;
        continue;
      }
      if (c === '/' && src[i + 1] === '/') {
        while (i < src.length && src[i] !== '\n') i++;
        continue;
      }
      if (c === '/' && src[i + 1] === '*') {
        i += 2;
        while (i < src.length && !(src[i] === '*' && src[i + 1] === '/')) {
          if (src[i] === '\n') {
            line++;
            lineStart = i + 1;
          }
          i++;
        }
        i += 2;
        continue;
      }
      if (c === '"' || c === "'" || c === '`') {
        const start = i;
        const startLine = line;
        const startColumn = i - lineStart + 1;
        i++;
        while (i < src.length && src[i] !== c) {
          if (src[i] === '\\') i++;
          else if (src[i] === '\n') {
            line++;
            lineStart = i + 1;
          }
          i++;
        }
        i++;
        if (c !== '`') {
          let text: string | undefined;
          try {
            text = JSON.parse(c === '"' ? src.slice(start, i) : `"${src.slice(start + 1, i - 1).replace(/"/g, '\\"')}"`) as string;
          } catch {
            text = undefined;
          }
          if (text !== undefined && this.keyFollows(src, i)) pending = { key: text, line: startLine, column: startColumn };
        }
        continue;
      }
      if (/[A-Za-z_$]/.test(c)) {
        const start = i;
        while (i < src.length && /[\w$]/.test(src[i]!)) i++;
        const frame = top();
        if (frame?.kind === '{' && this.keyFollows(src, i)) pending = { key: src.slice(start, i), line, column: start - lineStart + 1 };
        continue;
      }
      if (c === ':' && pending !== undefined) {
        const frame = top();
        if (frame?.kind === '{') {
          frame.key = pending.key;
          const path = joinPath(frame.path, pending.key);
          if (!this.positions.has(path)) this.positions.set(path, { line: pending.line, column: pending.column });
        }
        pending = undefined;
        i++;
        continue;
      }
      if (c === '{' || c === '[' || c === '(') {
        const path = c === '(' ? '' : childPath();
        if (c !== '(' && path !== '' && !this.positions.has(path)) this.positions.set(path, { line, column: i - lineStart + 1 });
        stack.push({ kind: c, path, index: 0, key: undefined });
        pending = undefined;
        i++;
        continue;
      }
      if (c === '}' || c === ']' || c === ')') {
        stack.pop();
        i++;
        continue;
      }
      if (c === ',') {
        const frame = top();
        if (frame?.kind === '[') frame.index++;
        else if (frame?.kind === '{') frame.key = undefined;
        i++;
        continue;
      }
      i++;
    }
  }

  /** Whether `:` comes next (after blanks): what makes a name or string a key. */
  private keyFollows(src: string, from: number): boolean {
    let j = from;
    while (j < src.length && (src[j] === ' ' || src[j] === '\t')) j++;
    return src[j] === ':';
  }
}
