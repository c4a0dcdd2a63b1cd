/**
 * A small XML writer with correct escaping. It appends to an internal buffer; long documents
 * (feature collections, catalogue pages) call take() to hand what is written so far to a stream.
 */

// Characters not allowed in XML 1.0 (C0 controls except tab, LF, CR; lone surrogates; U+FFFE/U+FFFF).
// eslint-disable-next-line no-control-regex
const INVALID =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeText(s: string): string {
  return s.replace(INVALID, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttr(s: string): string {
  return s
    .replace(INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

export type Attrs = Record<string, string | number | boolean | null | undefined>;

function attrString(attrs?: Attrs): string {
  if (!attrs) return '';
  let s = '';
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    s += ` ${k}="${escapeAttr(String(v))}"`;
  }
  return s;
}

export class XmlWriter {
  private buf: string[] = [];
  private stack: string[] = [];
  private open = false; // last start tag not yet closed with '>'

  constructor(opts: { declaration?: boolean } = {}) {
    if (opts.declaration !== false) this.buf.push('<?xml version="1.0" encoding="UTF-8"?>\n');
  }

  private closeStart(): void {
    if (this.open) {
      this.buf.push('>');
      this.open = false;
    }
  }

  /** Open an element; close it with end(). */
  start(name: string, attrs?: Attrs): this {
    this.closeStart();
    this.buf.push(`<${name}${attrString(attrs)}`);
    this.stack.push(name);
    this.open = true;
    return this;
  }

  end(): this {
    const name = this.stack.pop();
    if (name === undefined) throw new Error('XmlWriter.end() with no open element');
    if (this.open) {
      this.buf.push('/>');
      this.open = false;
    } else {
      this.buf.push(`</${name}>`);
    }
    return this;
  }

  /** A complete element with optional text content. Null/undefined text writes nothing at all. */
  el(name: string, attrsOrText?: Attrs | string | number | null, text?: string | number | null): this {
    let attrs: Attrs | undefined;
    let content: string | number | null | undefined;
    if (typeof attrsOrText === 'object' && attrsOrText !== null) {
      attrs = attrsOrText;
      content = text;
    } else {
      content = attrsOrText;
    }
    this.closeStart();
    if (content === undefined || content === null || content === '') {
      this.buf.push(`<${name}${attrString(attrs)}/>`);
    } else {
      this.buf.push(`<${name}${attrString(attrs)}>${escapeText(String(content))}</${name}>`);
    }
    return this;
  }

  /** Element written only when the value is present. */
  opt(name: string, value: string | number | null | undefined, attrs?: Attrs): this {
    if (value === undefined || value === null || value === '') return this;
    return this.el(name, attrs ?? {}, value);
  }

  text(s: string): this {
    this.closeStart();
    this.buf.push(escapeText(s));
    return this;
  }

  /** Already-serialised XML (e.g. GML from ST_AsGML). The caller vouches for it. */
  raw(s: string): this {
    this.closeStart();
    this.buf.push(s);
    return this;
  }

  get depth(): number {
    return this.stack.length;
  }

  /** Return what was written so far and clear the buffer (for streaming). */
  take(): string {
    this.closeStart();
    const s = this.buf.join('');
    this.buf = [];
    return s;
  }

  toString(): string {
    while (this.stack.length) this.end();
    return this.take();
  }
}
