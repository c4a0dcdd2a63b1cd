/**
 * External programs some formats need (GDAL's ogr2ogr for Shapefile, GeoPackage, FlatGeobuf):
 * where to find them and whether they answer. A probe runs the program once per command name
 * and process (a fact about the machine, not per-request state); installing is the embedded
 * default's job at start-up (src/db/embedded.ts), never a request's.
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

const probed = new Map<string, boolean>();

/** Does `command --version` run? Cached per command. */
export function commandWorks(command: string): boolean {
  const hit = probed.get(command);
  if (hit !== undefined) return hit;
  const ok = spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  probed.set(command, ok);
  return ok;
}

/** Forget a probe (after installing the package at start-up). */
export function forgetProbe(command: string): void {
  probed.delete(command);
}

/** Is GDAL's ogr2ogr available? */
export function hasOgr2ogr(command = DEFAULT_TOOL_COMMANDS.ogr2ogr): boolean {
  return commandWorks(command);
}

export function probeTools(commands: ToolCommands = DEFAULT_TOOL_COMMANDS): ToolSet {
  return { ogr2ogr: commandWorks(commands.ogr2ogr) };
}

/** The tool commands a configuration names (formats.ogr2ogr), else the defaults. */
export function toolCommands(config: { formats?: { ogr2ogr?: string } }): ToolCommands {
  return { ogr2ogr: config.formats?.ogr2ogr ?? DEFAULT_TOOL_COMMANDS.ogr2ogr };
}
