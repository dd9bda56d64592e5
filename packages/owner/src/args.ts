import { parseArgs } from 'node:util';
import { OptionError, parseEndpoint } from '@swarmdrop/protocol';
import { formatOptionLines, loadToken, parseArgsOptions, readFlags } from '@swarmdrop/service';
import {
  OWNER_FLAGS,
  OWNER_OPTIONS,
  type OwnerOptions,
  type ResolvedOwnerOptions,
  resolveOwnerOptions,
} from './options.js';

export const PROGRAM = 'swarmdrop-owner';

export const USAGE = `Usage: ${PROGRAM} <port> <file> [options]

Splits <file> into chunks and serves it to swarmdrop peers and BitTorrent
clients. <port> may be HOST:PORT to bind one interface. The same port answers
BitTorrent and HTTP (GET /<name>.torrent, /announce, /status).

Options:
${formatOptionLines(OWNER_FLAGS)}`;

/** node:util's parse errors, in our words: `-5` is a bad port, not an unknown option. */
function argumentError(err: Error): OptionError {
  const unknown = /^Unknown option '([^']+)'/.exec(err.message);
  if (unknown) {
    const name = unknown[1]!;
    if (/^-\d+$/.test(name))
      return new OptionError('<port>', `"${name}" is not a port number (1-65535, or 0 for any)`);
    return new OptionError('arguments', `unknown option ${name}`);
  }
  return new OptionError('arguments', err.message.split('\n')[0]!);
}

/** What the command line gives: the owner's options, and how the terminal shows it. */
export interface OwnerCliOptions extends ResolvedOwnerOptions {
  /** --quiet: no live status line. */
  readonly quiet: boolean;
}

/**
 * Reads a command line into the owner's options: each flag's text through
 * its option's parser (errors name the flag), then the same defaults and
 * checks as `Owner.start()` (options.ts).
 */
export function parseOwnerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): OwnerCliOptions | 'help' | 'version' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: parseArgsOptions(OWNER_FLAGS),
    });
  } catch (err) {
    throw argumentError(err as Error);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (positionals.length < 2) throw new OptionError('arguments', 'expected <port> <file>');
  if (positionals.length > 2)
    throw new OptionError('arguments', `unexpected extra argument "${positionals[2]}"`);
  const endpoint = parseEndpoint(positionals[0]!, '<port>', true);
  const input: Record<string, unknown> = {
    file: OWNER_OPTIONS.file.parse(positionals[1]!, '<file>'),
    host: endpoint.host,
    port: endpoint.port,
    // The token comes from the file --token-file names, else from $SWARMDROP_TOKEN.
    token: loadToken(values['token-file'] as string | undefined, env),
    ...readFlags(OWNER_FLAGS, values, OWNER_OPTIONS, ['token']),
  };
  return { ...resolveOwnerOptions(input as unknown as OwnerOptions), quiet: values.quiet === true };
}
