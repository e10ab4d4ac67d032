/**
 * A small XML well-formedness check (no XML parser among the dependencies): elements nest and
 * close, attribute values are quoted and unique per element, text and attribute values use only
 * the predefined entities or numeric references, and there is one root element. Returns the
 * elements in document order, with their attributes and own text, or throws naming the problem.
 */
export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly parent: string | undefined;
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*$/;

export function parseXml(xml: string): XmlElement[] {
  const out: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let roots = 0;
  let i = 0;
  const checkText = (s: string, where: string): string => {
    for (const m of s.matchAll(/&([^;]*);?/g)) {
      if (!m[0].endsWith(';') || !/^(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+)$/.test(m[1]!)) throw new Error(`bad entity ${JSON.stringify(m[0])} in ${where}`);
    }
    if (s.includes('<')) throw new Error(`raw < in ${where}`);
    return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d))).replace(/&amp;/g, '&');
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    if (text.trim() !== '') {
      if (stack.length === 0) throw new Error(`text outside the root: ${JSON.stringify(text.slice(0, 40))}`);
      stack[stack.length - 1]!.text += checkText(text, `<${stack[stack.length - 1]!.name}>`);
    }
    if (lt === -1) break;
    const gt = xml.indexOf('>', lt);
    if (gt === -1) throw new Error('unclosed tag at the end');
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('!--')) {
      const end = xml.indexOf('-->', lt);
      if (end === -1) throw new Error('unclosed comment');
      i = end + 3;
      continue;
    }
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const nameMatch = /^\S+/.exec(body);
    const name = nameMatch?.[0] ?? '';
    if (!NAME.test(name)) throw new Error(`bad element name ${JSON.stringify(name)}`);
    const attrs: Record<string, string> = {};
    let rest = body.slice(name.length);
    const attrRe = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/;
    for (let m = attrRe.exec(rest); m !== null; m = attrRe.exec(rest)) {
      if (m[1]! in attrs) throw new Error(`attribute ${m[1]} twice on <${name}>`);
      attrs[m[1]!] = checkText(m[3] ?? m[4] ?? '', `${name}@${m[1]}`);
      rest = rest.slice(m[0].length);
    }
    if (rest.trim() !== '') throw new Error(`cannot read the attributes of <${name}>: ${JSON.stringify(rest.trim().slice(0, 40))}`);
    if (stack.length === 0 && ++roots > 1) throw new Error('more than one root element');
    const el: XmlElement = { name, attrs, parent: stack[stack.length - 1]?.name, text: '' };
    out.push(el);
    if (!selfClosing) stack.push(el);
  }
  if (stack.length > 0) throw new Error(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (roots !== 1) throw new Error('no root element');
  return out;
}
