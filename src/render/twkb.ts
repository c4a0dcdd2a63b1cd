/**
 * A TWKB (Tiny Well-Known Binary) decoder for the renderer: PostGIS sends screen-space geometries
 * as ST_AsTWKB (varint, delta-encoded, rounded to the requested precision), which is several times
 * smaller than WKB and cheap to decode.
 */

/** One decoded part: kind 1 point, 2 line, 3 polygon; `rings` are flat [x0,y0,x1,y1,…] arrays. */
export interface TwkbPart {
  kind: 1 | 2 | 3;
  rings: number[][];
}

/** Bytes, unsigned LEB128 varints and zigzag-encoded integers, as TWKB writes them. */
export class VarintReader {
  pos = 0;
  constructor(public buf: Uint8Array = new Uint8Array(0)) {}
  byte(): number {
    return this.buf[this.pos++];
  }
  varint(): number {
    // one or two bytes for almost every value the renderer reads (deltas in tenths of a pixel)
    const buf = this.buf;
    let b = buf[this.pos++];
    if (b < 0x80) return b;
    let result = b & 0x7f;
    b = buf[this.pos++];
    if (b < 0x80) return result | (b << 7);
    result |= (b & 0x7f) << 7;
    let shift = 14;
    do {
      b = buf[this.pos++];
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  }
  zigzag(): number {
    const v = this.varint();
    return v < 0x80000000 ? (v >>> 1) ^ -(v & 1) : v % 2 === 1 ? -(v + 1) / 2 : v / 2;
  }
}

/** Decode one TWKB geometry (any type, collections included) into parts. */
export function decodeTwkb(buf: Uint8Array, out: TwkbPart[] = []): TwkbPart[] {
  const r = new VarintReader(buf);
  readGeometry(r, out);
  return out;
}

function readGeometry(r: VarintReader, out: TwkbPart[]): void {
  const head = r.byte();
  const type = head & 0x0f;
  const precZ = head >> 4;
  const precision = precZ % 2 === 1 ? -(precZ + 1) / 2 : precZ / 2;
  const scale = 10 ** -precision;
  const meta = r.byte();
  let ndims = 2;
  if (meta & 0x08) {
    const ext = r.byte();
    if (ext & 0x01) ndims++;
    if (ext & 0x02) ndims++;
  }
  if (meta & 0x02) r.varint(); // size
  if (meta & 0x01) for (let i = 0; i < ndims * 2; i++) r.zigzag(); // bbox
  if (meta & 0x10) return; // empty
  const last = new Array<number>(ndims).fill(0);
  const readPoints = (n: number): number[] => {
    const pts = new Array<number>(n * 2);
    for (let i = 0; i < n; i++) {
      last[0] += r.zigzag();
      last[1] += r.zigzag();
      for (let d = 2; d < ndims; d++) last[d] += r.zigzag();
      pts[i * 2] = last[0] * scale;
      pts[i * 2 + 1] = last[1] * scale;
    }
    return pts;
  };
  const readPolygon = (): TwkbPart => {
    const nr = r.varint();
    const rings: number[][] = [];
    for (let i = 0; i < nr; i++) rings.push(readPoints(r.varint()));
    return { kind: 3, rings };
  };
  const hasIds = (meta & 0x04) !== 0;
  switch (type) {
    case 1:
      out.push({ kind: 1, rings: [readPoints(1)] });
      return;
    case 2:
      out.push({ kind: 2, rings: [readPoints(r.varint())] });
      return;
    case 3:
      out.push(readPolygon());
      return;
    case 4:
    case 5:
    case 6: {
      const n = r.varint();
      if (hasIds) for (let i = 0; i < n; i++) r.zigzag();
      for (let i = 0; i < n; i++) {
        if (type === 4) out.push({ kind: 1, rings: [readPoints(1)] });
        else if (type === 5) out.push({ kind: 2, rings: [readPoints(r.varint())] });
        else out.push(readPolygon());
      }
      return;
    }
    case 7: {
      const n = r.varint();
      if (hasIds) for (let i = 0; i < n; i++) r.zigzag();
      for (let i = 0; i < n; i++) readGeometry(r, out);
      return;
    }
    default:
      throw new Error(`TWKB: unknown geometry type ${type}`);
  }
}

/**
 * Split concatenated TWKB geometries written with their sizes (ST_AsTWKB(…, include_size =>
 * true)) into views of the buffer, without decoding them.
 */
export function splitTwkb(buf: Uint8Array): Uint8Array[] {
  const b = twkbBounds(buf);
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(buf.subarray(b[i], b[i + 1]));
  return out;
}

/** The same as offsets: [start0, end0, start1, end1, …] (no view per geometry). */
export function twkbBounds(buf: Uint8Array): number[] {
  const out: number[] = [];
  const r = new VarintReader(buf);
  while (r.pos < buf.length) {
    const start = r.pos;
    r.byte(); // type and precision
    const meta = r.byte();
    if (meta & 0x08) r.byte(); // extended dimensions
    if (!(meta & 0x02)) throw new Error('TWKB: geometry without its size');
    const size = r.varint();
    r.pos += size;
    out.push(start, r.pos);
  }
  return out;
}
