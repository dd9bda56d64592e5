import { readFile } from 'node:fs/promises';

/** The `[Service]` keys of a systemd unit file (a repeated key keeps its last value). */
export async function readUnitService(path: string): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  let section = '';
  for (const raw of (await readFile(path, 'utf8')).split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const at = line.indexOf('=');
    if (section === 'Service' && at > 0)
      keys.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return keys;
}

/** `KEY=value` lines of an EnvironmentFile. */
export async function readEnvFile(path: string): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  for (const raw of (await readFile(path, 'utf8')).split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at > 0) vars.set(line.slice(0, at), line.slice(at + 1));
  }
  return vars;
}

/**
 * ExecStart split into words with `${VAR}` replaced from `vars`, as systemd
 * does for a whole-word `${VAR}` (no shell: no quotes or globs are used in our units).
 * Throws naming a variable that `vars` does not define.
 */
export function expandExecStart(execStart: string, vars: ReadonlyMap<string, string>): string[] {
  return execStart
    .split(/\s+/)
    .filter(Boolean)
    .map((word) =>
      word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
        const value = vars.get(name);
        if (value === undefined)
          throw new Error(`ExecStart uses \${${name}}, which is not defined`);
        return value;
      }),
    );
}
