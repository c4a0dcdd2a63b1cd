/**
 * Offline OGC schema validation through ../shared/tools/validate-ogc-xml, used when
 * OGC_SCHEMAS_DIR is set. Elsewhere the callers skip with a visible message.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const schemasDir = process.env.OGC_SCHEMAS_DIR ? path.resolve(process.env.OGC_SCHEMAS_DIR) : undefined;
export const validatorPath = schemasDir ? path.join(schemasDir, '..', 'tools', 'validate-ogc-xml') : undefined;
export const canValidate = Boolean(validatorPath && existsSync(validatorPath) && existsSync('/usr/bin/python3'));
export const skipReason = schemasDir
  ? `OGC schema validation skipped: validator not found at ${validatorPath} or /usr/bin/python3 missing`
  : 'OGC schema validation skipped: OGC_SCHEMAS_DIR is not set';

export interface ValidationResult {
  valid: boolean;
  output: string;
}

/** Validate one or more XML documents; returns per-document results. */
export function validateXml(docs: string[]): ValidationResult[] {
  if (!canValidate) throw new Error(skipReason);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogcxml-'));
  try {
    const files = docs.map((d, i) => {
      const f = path.join(dir, `doc${i}.xml`);
      writeFileSync(f, d);
      return f;
    });
    const r = spawnSync('/usr/bin/python3', [validatorPath!, '--catalog', path.join(schemasDir!, 'catalog.xml'), ...files], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    // one 'valid: F' / 'invalid: F' (+ indented errors) / 'unsupported: F: why' block per file
    return files.map((f) => {
      const lines = out.split('\n');
      const i = lines.findIndex((l) => /^(valid|invalid|unsupported): /.test(l) && l.includes(f));
      if (i < 0) return { valid: false, output: `no verdict for ${f}:\n${out}` };
      const block = [lines[i]];
      for (let j = i + 1; j < lines.length && !/^(valid|invalid|unsupported): /.test(lines[j]); j++) block.push(lines[j]);
      return { valid: lines[i].startsWith('valid: '), output: block.join('\n') };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
