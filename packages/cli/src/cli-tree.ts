import type { Command } from 'commander';
import { commandPath, EXAMPLES } from './examples.js';

/** A command as the completion scripts and the man page see it, read from its commander definition. */
export interface CommandModel {
  /** Its path under `beacon` ('' for the program itself). */
  path: string;
  names: string[];
  description: string;
  usage: string;
  options: OptionModel[];
  /** Values its positional arguments are limited to (`completion bash|zsh`). */
  argumentChoices: readonly string[];
  subcommands: CommandModel[];
  examples: readonly string[];
}

export interface OptionModel {
  flags: string;
  /** Every spelling: `-o`, `--output`. */
  words: string[];
  description: string;
  takesValue: boolean;
  choices: readonly string[];
  defaultValue?: string;
}

/** Walks the command tree. Hidden options stay out, as they do from `--help`. */
export function describeTree(cmd: Command): CommandModel {
  return {
    path: commandPath(cmd),
    names: [cmd.name(), ...cmd.aliases()],
    description: cmd.description(),
    usage: cmd.usage(),
    options: cmd.options
      .filter((o) => !o.hidden)
      .map((o) => ({
        flags: o.flags,
        words: [o.short, o.long].filter((w): w is string => !!w),
        description: o.description,
        takesValue: o.required || o.optional,
        choices: o.argChoices ?? [],
        ...(o.defaultValueDescription ? { defaultValue: o.defaultValueDescription } : o.defaultValue !== undefined && typeof o.defaultValue !== 'boolean' ? { defaultValue: JSON.stringify(o.defaultValue) } : {}),
      })),
    argumentChoices: cmd.registeredArguments.flatMap((a) => a.argChoices ?? []),
    subcommands: cmd.commands.map(describeTree),
    examples: EXAMPLES[commandPath(cmd)] ?? [],
  };
}

/** Every command of the tree, the program first. */
export function flatten(m: CommandModel): CommandModel[] {
  return [m, ...m.subcommands.flatMap(flatten)];
}
