/**
 * TWKB decoding without a database: geometries are written by a small encoder that follows the
 * TWKB specification (header, metadata, zigzag varint deltas), then read back. The property test
 * draws random geometries of every type, precision and size.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTwkb, splitTwkb, twkbBounds, VarintReader } from '../../src/render/twkb.js';

function varint(n: number, out: number[]): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}
const zigzag = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1);

type Geom = { type: 1; pts: number[][] } | { type: 2; pts: number[][] } | { type: 3; rings: number[][][] };

/** Write one geometry as TWKB (2D), optionally with its size (as ST_AsTWKB(..., include_size => true)). */
function encode(g: Geom, precision: number, withSize = false): number[] {
  const body: number[] = [];
  const last = [0, 0];
  const scale = 10 ** precision;
  const pts = (list: number[][]) => {
    for (const p of list) {
      for (let d = 0; d < 2; d++) {
        const q = Math.round(p[d] * scale);
        varint(zigzag(q - last[d]), body);
        last[d] = q;
      }
    }
  };
  if (g.type === 1) pts(g.pts);
  else if (g.type === 2) {
    varint(g.pts.length, body);
    pts(g.pts);
  } else {
    varint(g.rings.length, body);
    for (const r of g.rings) {
      varint(r.length, body);
      pts(r);
    }
  }
  const head = [(zigzag(precision) << 4) | g.type, withSize ? 0x02 : 0];
  if (withSize) varint(body.length, head);
  return [...head, ...body];
}

describe('TWKB', () => {
  it('reads a point, a line and a polygon with a hole at their precision', () => {
    const [p] = decodeTwkb(Uint8Array.from(encode({ type: 1, pts: [[652469.3, 6862035.7]] }, 1)));
    expect(p.kind).toBe(1);
    expect(p.rings[0][0]).toBeCloseTo(652469.3, 6);
    expect(p.rings[0][1]).toBeCloseTo(6862035.7, 6);
    const [l] = decodeTwkb(
      Uint8Array.from(
        encode(
          {
            type: 2,
            pts: [
              [0, 0],
              [10.5, -3.25],
              [-7, 2],
            ],
          },
          2,
        ),
      ),
    );
    expect(l).toEqual({ kind: 2, rings: [[0, 0, 10.5, -3.25, -7, 2]] });
    const poly: Geom = {
      type: 3,
      rings: [
        [
          [0, 0],
          [100, 0],
          [100, 100],
          [0, 100],
          [0, 0],
        ],
        [
          [10, 10],
          [20, 10],
          [20, 20],
          [10, 10],
        ],
      ],
    };
    const [q] = decodeTwkb(Uint8Array.from(encode(poly, 0)));
    expect(q.kind).toBe(3);
    expect(q.rings).toEqual([
      [0, 0, 100, 0, 100, 100, 0, 100, 0, 0],
      [10, 10, 20, 10, 20, 20, 10, 10],
    ]);
  });

  it('reads negative precisions (coordinates rounded to tens)', () => {
    const [p] = decodeTwkb(Uint8Array.from(encode({ type: 1, pts: [[1234, -5678]] }, -1)));
    expect(p.rings[0]).toEqual([1230, -5680]);
  });

  it('varints and zigzag integers round-trip across the 32-bit boundary', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (n) => {
        const b: number[] = [];
        varint(zigzag(n), b);
        expect(new VarintReader(Uint8Array.from(b)).zigzag()).toBe(n);
      }),
    );
  });

  it('any geometry written at any precision reads back to its rounded coordinates', () => {
    const coord = fc.tuple(fc.double({ min: -1e7, max: 1e7, noNaN: true }), fc.double({ min: -1e7, max: 1e7, noNaN: true }));
    const geom: fc.Arbitrary<Geom> = fc.oneof(
      coord.map((c) => ({ type: 1 as const, pts: [c] })),
      fc.array(coord, { minLength: 2, maxLength: 50 }).map((pts) => ({ type: 2 as const, pts })),
      fc
        .array(fc.array(coord, { minLength: 4, maxLength: 20 }), { minLength: 1, maxLength: 4 })
        .map((rings) => ({ type: 3 as const, rings })),
    );
    fc.assert(
      fc.property(geom, fc.integer({ min: -2, max: 3 }), (g, precision) => {
        const [part] = decodeTwkb(Uint8Array.from(encode(g, precision)));
        const scale = 10 ** precision;
        const want = (g.type === 3 ? g.rings : [g.pts]).map((r) => r.flatMap((p) => p.map((v) => Math.round(v * scale) / scale)));
        expect(part.kind).toBe(g.type);
        expect(part.rings.length).toBe(want.length);
        part.rings.forEach((r, i) => r.forEach((v, j) => expect(v).toBeCloseTo(want[i][j], Math.max(0, precision) + 1)));
      }),
      { numRuns: 300 },
    );
  });

  it('splits geometries written with their sizes without decoding them', () => {
    const a = encode({ type: 1, pts: [[1, 2]] }, 0, true);
    const b = encode(
      {
        type: 2,
        pts: [
          [0, 0],
          [300, 400],
        ],
      },
      0,
      true,
    );
    const buf = Uint8Array.from([...a, ...b]);
    expect(twkbBounds(buf)).toEqual([0, a.length, a.length, a.length + b.length]);
    const parts = splitTwkb(buf).map((x) => decodeTwkb(x)[0]);
    expect(parts).toEqual([
      { kind: 1, rings: [[1, 2]] },
      { kind: 2, rings: [[0, 0, 300, 400]] },
    ]);
    expect(() => twkbBounds(Uint8Array.from(encode({ type: 1, pts: [[1, 2]] }, 0, false)))).toThrow(/size/);
  });
});
