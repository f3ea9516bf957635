import { Argument, type Command } from 'commander';
import { describeTree } from '../cli-tree.js';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import { manPage } from '../manpage.js';

/** The root of the tree a command belongs to: completion and the man page describe all of it. */
function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

/** `beacon completion bash|zsh` and `beacon man`: generated from the command definitions themselves. */
export function docsCommands(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .action((shell: Shell, _o, cmd: Command) => {
      process.stdout.write(completionScript(shell, describeTree(rootOf(cmd))));
    });

  program
    .command('man')
    .description('print the man page (roff), e.g. for man -l')
    .action((_o, cmd: Command) => {
      // SOURCE_DATE_EPOCH makes a packaged page reproducible (https://reproducible-builds.org/specs/source-date-epoch/).
      const epoch = Number(process.env.SOURCE_DATE_EPOCH);
      process.stdout.write(manPage(describeTree(rootOf(cmd)), new Date(Number.isFinite(epoch) && epoch > 0 ? epoch * 1000 : Date.now())));
    });
}
