/**
 * Filters to SQL without a database: the same filter written in CQL2 text, CQL2 JSON and FES 2.0
 * compiles to the same SQL; every value from the request is a bind parameter, never SQL text;
 * identifiers come from the layer's fields, quoted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCql2Json, parseCql2Text } from '../../src/filter/cql2.js';
import { parseFesFilterString } from '../../src/filter/fes.js';
import { compileFilter, quoteIdent, type FilterTarget } from '../../src/filter/sql.js';

const target: FilterTarget = {
  fields: [
    { name: 'id', type: 'integer', pgType: 'integer', nullable: false },
    { name: 'nom', type: 'string', pgType: 'text', nullable: true },
    { name: 'surface', type: 'number', pgType: 'double precision', nullable: true },
    { name: 'date maj', type: 'date', pgType: 'date', nullable: true },
  ],
  geometryColumn: 'geom',
  srid: 2154,
  primaryKey: 'id',
  layerName: 'parcels',
};

function compile(node: ReturnType<typeof parseCql2Text>): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const sql = compileFilter(node, target, params);
  return { sql, params };
}

describe('filter compilation', () => {
  it('quotes identifiers, doubling embedded quotes', () => {
    expect(quoteIdent('nom')).toBe('"nom"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('date maj')).toBe('"date maj"');
  });

  it('CQL2 text, CQL2 JSON and FES 2.0 give the same SQL and parameters', () => {
    const text = compile(parseCql2Text("nom = 'Île-de-France' AND surface > 12.5"));
    const json = compile(
      parseCql2Json({
        op: 'and',
        args: [
          { op: '=', args: [{ property: 'nom' }, 'Île-de-France'] },
          { op: '>', args: [{ property: 'surface' }, 12.5] },
        ],
      }),
    );
    const fes = compile(
      parseFesFilterString(
        `<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:And>
          <fes:PropertyIsEqualTo><fes:ValueReference>nom</fes:ValueReference><fes:Literal>Île-de-France</fes:Literal></fes:PropertyIsEqualTo>
          <fes:PropertyIsGreaterThan><fes:ValueReference>surface</fes:ValueReference><fes:Literal>12.5</fes:Literal></fes:PropertyIsGreaterThan>
        </fes:And></fes:Filter>`,
        { version: '2.0' },
      ),
    );
    expect(json).toEqual(text);
    expect(fes.sql).toBe(text.sql);
    expect(fes.params.map(String)).toEqual(text.params.map(String));
    expect(text.sql).toContain('"nom"');
    expect(text.sql).toContain('"surface"');
    expect(text.params).toContain('Île-de-France');
  });

  it('a value never reaches the SQL text, whatever it holds', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (v) => {
        const { sql, params } = compile(parseCql2Json({ op: '=', args: [{ property: 'nom' }, v] }));
        expect(params).toContain(v);
        // the statement is the same for every value: only $n placeholders stand for it
        const { sql: ref } = compile(parseCql2Json({ op: '=', args: [{ property: 'nom' }, 'x'] }));
        expect(sql).toBe(ref);
      }),
      { numRuns: 200 },
    );
  });

  it('an unknown property is refused, not turned into SQL', () => {
    expect(() => compile(parseCql2Text('"nom; DROP TABLE parcels" = 1'))).toThrow();
    expect(() => compile(parseCql2Text('nope = 1'))).toThrow(/nope/);
  });

  it('a spatial filter binds its geometry and transforms it to the layer CRS', () => {
    const { sql, params } = compile(parseCql2Text('S_INTERSECTS(geom, POLYGON((2.3 48.8, 2.4 48.8, 2.4 48.9, 2.3 48.9, 2.3 48.8)))'));
    expect(sql).toMatch(/ST_Intersects|&&/i);
    expect(sql).toContain('"geom"');
    expect(sql).toMatch(/2154/);
    expect(JSON.stringify(params)).toContain('2.3');
  });
});
