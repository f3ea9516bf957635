import { VERSION } from '@beacon/core';
import { flatten, type CommandModel, type OptionModel } from './cli-tree.js';

/**
 * Escapes text for roff: backslashes, a leading dot or quote, hyphens (which would otherwise
 * print as U+2010) and anything beyond ASCII (groff reads its input as Latin-1).
 */
function esc(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
}

function options(list: readonly OptionModel[]): string {
  return list
    .map((o) => {
      const extra = [o.choices.length ? `one of: ${o.choices.join(', ')}` : '', o.defaultValue !== undefined ? `default: ${o.defaultValue}` : ''].filter(Boolean).join('; ');
      return `.TP\n.B ${esc(o.flags)}\n${esc(o.description)}${extra ? ` (${esc(extra)})` : ''}\n`;
    })
    .join('');
}

/** The man page (section 1) of `beacon`, in roff, from the same definitions as `--help`. */
export function manPage(root: CommandModel, date: Date): string {
  const commands = flatten(root).filter((c) => c.path);
  let out = `.TH BEACON 1 "${date.toISOString().slice(0, 10)}" "beacon ${VERSION}" "Beacon Manual"\n`;
  out += `.SH NAME\nbeacon \\- ${esc(root.description)}\n`;
  out += `.SH SYNOPSIS\n.B beacon\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]\n`;
  out += `.SH DESCRIPTION\nOne binary runs the server (\\fBbeacon server\\fR), the agent (\\fBbeacon agent\\fR) and the client commands, which talk to a server's HTTP API.\n`;
  out += `.SH GLOBAL OPTIONS\n${options(root.options)}`;
  out += `.SH COMMANDS\n`;
  for (const c of commands) {
    out += `.SS "beacon ${esc(c.path)} ${esc(c.usage)}"\n${esc(c.description)}\n`;
    if (c.names.length > 1) out += `.PP\nAlso: ${esc(c.names.slice(1).join(', '))}.\n`;
    if (c.options.length) out += `.PP\nOptions:\n.RS\n${options(c.options)}.RE\n`;
  }
  out += `.SH EXAMPLES\n`;
  for (const c of flatten(root)) for (const e of c.examples) out += `.PP\n.nf\n$ ${esc(e)}\n.fi\n`;
  out += `.SH EXIT STATUS\n0 success; 2 a usage error; 4 not found; 1 any other error (the message names its code).\n`;
  out += `.SH ENVIRONMENT\n.TP\n.B BEACON_HTTP_ADDR\nThe server the client commands ask when \\fB\\-\\-server\\fR is not given (a URL or host:port).\n`;
  out += `.SH SEE ALSO\nThe documents under docs/ in the Beacon repository: cli.md, http\\-api.md, operations.md.\n`;
  return out;
}
