/**
 * A strict reader for the small YAML subset the shipped Prometheus rules use: block mappings, block
 * sequences (of mappings or scalars), plain, "double-" and 'single-quoted' scalars, comments. Anything
 * else (flow collections, block scalars, anchors, tags, tabs, duplicate keys) throws instead of being
 * read differently from a real YAML parser. Scalars stay strings.
 */
export function parseYamlSubset(src: string): unknown {
  const lines: Line[] = [];
  src.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new YamlSubsetError(i + 1, 'tab character');
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '') return;
    lines.push({ no: i + 1, indent: text.length - text.trimStart().length, text: text.trimStart() });
  });
  let pos = 0;
  if (lines.length === 0) return null;
  const doc = block();
  if (pos < lines.length) throw new YamlSubsetError(lines[pos]!.no, 'unexpected indentation');
  return doc;

  function block(): unknown {
    const first = lines[pos]!;
    return isItem(first) ? sequence(first.indent) : mapping(first.indent);
  }

  function mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (pos < lines.length && lines[pos]!.indent === indent && !isItem(lines[pos]!)) {
      const line = lines[pos]!;
      const m = KEY.exec(line.text);
      if (m === null) throw new YamlSubsetError(line.no, `expected "key: value", got ${JSON.stringify(line.text)}`);
      const key = m[1]!;
      const rest = line.text.slice(m[0].length).trim();
      if (Object.hasOwn(out, key)) throw new YamlSubsetError(line.no, `duplicate key ${key}`);
      pos++;
      if (rest !== '') {
        out[key] = scalar(rest, line.no);
        continue;
      }
      const next = lines[pos];
      const nested = next !== undefined && (next.indent > indent || (next.indent === indent && isItem(next)));
      out[key] = nested ? block() : null;
    }
    if (pos < lines.length && lines[pos]!.indent > indent) throw new YamlSubsetError(lines[pos]!.no, 'unexpected indentation');
    return out;
  }

  function sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    while (pos < lines.length && lines[pos]!.indent === indent && isItem(lines[pos]!)) {
      const line = lines[pos]!;
      const content = line.text.slice(1).trimStart();
      if (content === '') {
        pos++;
        if (pos >= lines.length || lines[pos]!.indent <= indent) throw new YamlSubsetError(line.no, 'empty sequence item');
        out.push(block());
      } else if (KEY.test(content)) {
        // "- key: value": a mapping whose first key sits on the dash line.
        lines[pos] = { no: line.no, indent: indent + (line.text.length - content.length), text: content };
        out.push(mapping(lines[pos]!.indent));
      } else {
        out.push(scalar(content, line.no));
        pos++;
      }
    }
    return out;
  }
}

interface Line {
  readonly no: number;
  readonly indent: number;
  readonly text: string;
}

export class YamlSubsetError extends Error {
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

const KEY = /^([A-Za-z_][A-Za-z0-9_.-]*):(?=\s|$)/;

function isItem(line: Line): boolean {
  return line.text === '-' || line.text.startsWith('- ');
}

function scalar(text: string, no: number): string {
  if (text.startsWith('"')) {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(text)) throw new YamlSubsetError(no, 'unterminated or trailing text after a double-quoted scalar');
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(text)) throw new YamlSubsetError(no, 'unterminated or trailing text after a single-quoted scalar');
    return text.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[[\]{}|>&*!%@`,?]/.test(text) || text.startsWith('- ')) throw new YamlSubsetError(no, `outside the subset: ${JSON.stringify(text)}`);
  if (/:\s/.test(text)) throw new YamlSubsetError(no, `": " inside a plain scalar (quote it): ${JSON.stringify(text)}`);
  return text;
}

/** The line without its comment: `#` at the start or after a blank, outside quotes. */
function stripComment(raw: string): string {
  let quote: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      // A quote only opens a quoted scalar at the start of a value; inside a plain scalar it is a character.
      const before = raw.slice(0, i).trimEnd();
      if (before === '' || before.endsWith(':') || before.endsWith('-')) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(raw[i - 1]!))) {
      return raw.slice(0, i);
    }
  }
  return raw;
}
