/**
 * No import cycle in src/ (no database needed): madge's dependency graph of the TypeScript sources,
 * with the options of .madgerc (the same as `npx madge --circular src/`), `import type` lines
 * included: not even the types go round in a circle.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import madge from 'madge';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const rc = JSON.parse(readFileSync(path.join(root, '.madgerc'), 'utf8'));
const options = { ...rc, baseDir: root, tsConfig: path.join(root, rc.tsConfig) };

let graph: Awaited<ReturnType<typeof madge>>;
beforeAll(async () => {
  graph = await madge(path.join(root, 'src'), options);
}, 120_000);

describe('module structure', () => {
  it('src/ has no circular import', () => {
    const deps = graph.obj();
    // the graph is real: every module of src/ is in it, with its imports
    expect(Object.keys(deps).length).toBeGreaterThan(100);
    expect(deps['src/main.ts']).toContain('src/context.ts');
    expect(deps['src/context.ts']).toContain('src/runtime.ts');
    expect(graph.circular()).toEqual([]);
  });

  it('the renderer reads its layer source from its context: it does not import the overviews or the tiles', () => {
    const deps = graph.obj();
    expect(deps['src/render/index.ts'].filter((d: string) => /^src\/(overviews|tiles|changes)\//.test(d))).toEqual([]);
    expect(deps['src/runtime.ts']).toEqual(
      expect.arrayContaining(['src/overviews/index.ts', 'src/tiles/engine.ts', 'src/changes/index.ts']),
    );
  });

  it('the same check reports a cycle, of value imports or of type imports', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cycles-'));
    try {
      writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = () => b;\n");
      writeFileSync(path.join(dir, 'b.ts'), "import { a } from './a.js';\nexport const b = () => a;\n");
      writeFileSync(path.join(dir, 'c.ts'), "import type { D } from './d.js';\nexport interface C { d?: D }\n");
      writeFileSync(path.join(dir, 'd.ts'), "import type { C } from './c.js';\nexport interface D { c?: C }\n");
      writeFileSync(path.join(dir, 'e.ts'), "import { a } from './a.js';\nexport const e = a;\n");
      const g = await madge(dir, { ...options, baseDir: dir });
      expect(g.circular()).toEqual([
        ['a.ts', 'b.ts'],
        ['c.ts', 'd.ts'],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
