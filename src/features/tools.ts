/**
 * External programs some formats need (GDAL's ogr2ogr for Shapefile, GeoPackage, FlatGeobuf):
 * where to find them and whether they answer. The running server asks its ToolProbe
 * (ctx.runtime.tools, built in src/runtime.ts), which runs each command once and remembers the
 * answer; commandWorks asks afresh (start-up, tests). Installing is the embedded default's job at
 * start-up (src/db/embedded.ts), never a request's.
 */
import { spawnSync } from 'node:child_process';

/** External programs a format may need on the server. */
export type Tool = 'ogr2ogr';

/** Which tools this machine has (probeTools). */
export type ToolSet = Record<Tool, boolean>;

/** Commands of the tools, as configured (formats.ogr2ogr) or found on the PATH. */
export interface ToolCommands {
  ogr2ogr: string;
}

export const DEFAULT_TOOL_COMMANDS: ToolCommands = { ogr2ogr: 'ogr2ogr' };

/** How messages name each tool. */
export const TOOL_TITLES: Record<Tool, string> = { ogr2ogr: "GDAL's ogr2ogr" };

/** Debian package providing each tool. */
export const TOOL_PACKAGES: Record<Tool, string> = { ogr2ogr: 'gdal-bin' };

/** Does `command --version` run? Asked afresh each call (a process start: not for requests). */
export function commandWorks(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** Is GDAL's ogr2ogr available (asked afresh)? */
export function hasOgr2ogr(command = DEFAULT_TOOL_COMMANDS.ogr2ogr): boolean {
  return commandWorks(command);
}

/** Which tools answer, asked afresh (start-up's report of the formats not offered). */
export function probeTools(commands: ToolCommands = DEFAULT_TOOL_COMMANDS): ToolSet {
  return { ogr2ogr: commandWorks(commands.ogr2ogr) };
}

/**
 * The tools of a running server, for the commands its configuration names: each command is run
 * once, on first need, and its answer kept for the probe's life (one per runtime; a tool installed
 * or removed later is seen after a restart). It holds one answer per configured command (one per
 * Tool), so it needs no eviction.
 */
export class ToolProbe {
  private readonly answers = new Map<string, boolean>();

  constructor(readonly commands: ToolCommands = DEFAULT_TOOL_COMMANDS) {}

  /** Does the configured command of `tool` answer? */
  has(tool: Tool): boolean {
    const command = this.commands[tool];
    let ok = this.answers.get(command);
    if (ok === undefined) {
      ok = commandWorks(command);
      this.answers.set(command, ok);
    }
    return ok;
  }

  /** Which tools answer. */
  tools(): ToolSet {
    return { ogr2ogr: this.has('ogr2ogr') };
  }
}

/** The tool commands a configuration names (formats.ogr2ogr), else the defaults. */
export function toolCommands(config: { formats?: { ogr2ogr?: string } }): ToolCommands {
  return { ogr2ogr: config.formats?.ogr2ogr ?? DEFAULT_TOOL_COMMANDS.ogr2ogr };
}
