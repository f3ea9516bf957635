import type { Command } from 'commander';
import type { MemberView } from '@beacon/server';
import { connect, type GlobalOptions } from '../connection.js';
import { printList, type Column } from '../output.js';
import { ago } from '../table.js';

const MEMBER_COLUMNS: Column<MemberView>[] = [
  { header: 'node', value: (m) => m.node + (m.self ? ' *' : '') },
  { header: 'address', value: (m) => m.httpUrl },
  { header: 'role', value: (m) => (m.leader ? 'leader' : 'member') },
  { header: 'instances', value: (m) => m.instances },
  { header: 'checks', value: (m) => m.checks },
  { header: 'version', value: (m) => m.version, wide: true },
  { header: 'started', value: (m) => new Date(m.startedAt).toISOString(), wide: true },
  { header: 'joined-index', value: (m) => m.joinedIndex, wide: true },
  { header: 'last-seen', value: (m) => (m.lastSeenAt === null ? 'lease gone' : ago(m.lastSeenAt)) },
];

/** `beacon members`: the servers, the work each owns and when each was last seen. */
export function membersCommand(program: Command): void {
  program
    .command('members')
    .description('list the servers (one in embedded mode): addresses, instances and checks each owns, last seen')
    .action(async (_o, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const { body } = await connect(opts).request<{ members: MemberView[] }>('GET', '/api/v1/members');
      printList(opts, body, body.members, MEMBER_COLUMNS, 'no members\n');
    });
}
