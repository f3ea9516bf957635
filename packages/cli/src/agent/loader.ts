import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDefinitionFile, syntaxOf, type AgentDefinition, type FileResult, type ParseContext } from './definitions.js';

/** Definition files larger than this are refused (a config dir is not a data store). */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

/**
 * Reads every definition file directly inside `dir` (not recursively, like Consul's
 * -config-dir), in name order. Throws only when the directory itself cannot be read; a file
 * that cannot be read or parsed becomes a failed FileResult.
 */
export async function readDefinitionDir(dir: string, ctx: ParseContext): Promise<FileResult[]> {
  const names = (await readdir(dir)).filter((n) => syntaxOf(n) !== undefined).sort();
  const out: FileResult[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      if (st.size > MAX_DEFINITION_BYTES) {
        out.push({ file: name, ok: false, error: `${name}: ${st.size} bytes is more than the ${MAX_DEFINITION_BYTES} bytes a definition file may have`, warnings: [] });
        continue;
      }
      out.push(parseDefinitionFile(name, await readFile(path, 'utf8'), ctx));
    } catch (err) {
      // Deleted between readdir and read (an editor saving): the next reload sees the new state.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      out.push({ file: name, ok: false, error: `${name}: cannot read: ${(err as Error).message}`, warnings: [] });
    }
  }
  return out;
}

export interface ResolvedDefinitions {
  /** By instance id. */
  definitions: Map<string, AgentDefinition>;
  errors: string[];
  warnings: string[];
}

/**
 * Turns the files of one reload into the set of definitions to run. A file that fails keeps its
 * last good version (a typo saved mid-edit must not deregister a running service); a file that
 * is gone takes its definitions with it. When two files define one instance id, the first file
 * by name wins and the other definition is reported.
 */
export class DefinitionSet {
  private readonly lastGood = new Map<string, AgentDefinition[]>();

  apply(results: readonly FileResult[]): ResolvedDefinitions {
    const errors: string[] = [];
    const warnings: string[] = [];
    const present = new Set(results.map((r) => r.file));
    for (const file of [...this.lastGood.keys()]) if (!present.has(file)) this.lastGood.delete(file);
    const definitions = new Map<string, AgentDefinition>();
    for (const r of [...results].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
      warnings.push(...r.warnings);
      let defs: AgentDefinition[];
      if (r.ok) {
        this.lastGood.set(r.file, r.definitions);
        defs = r.definitions;
      } else {
        const kept = this.lastGood.get(r.file);
        errors.push(kept ? `${r.error} (keeping the previous version of ${r.file})` : r.error);
        defs = kept ?? [];
      }
      for (const d of defs) {
        const first = definitions.get(d.id);
        if (first) {
          errors.push(`${d.origin}: instance id ${d.id} is already defined by ${first.origin}; ignored`);
          continue;
        }
        definitions.set(d.id, d);
      }
    }
    return { definitions, errors, warnings };
  }
}
