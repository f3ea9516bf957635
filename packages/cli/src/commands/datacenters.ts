import type { Command } from 'commander';
import type { DatacenterStatus } from '@beacon/server';
import { connect, type GlobalOptions } from '../connection.js';
import { printList, type Column } from '../output.js';

const DC_COLUMNS: Column<DatacenterStatus>[] = [
  { header: 'datacenter', value: (d) => d.name + (d.local ? ' *' : '') },
  { header: 'rtt', value: (d) => (d.rttMs === undefined ? 'unreachable' : `${d.rttMs.toFixed(2)}ms`) },
  { header: 'state', value: (d) => (!d.synced ? 'not synced' : d.stale ? `stale ${Math.round((d.staleForMs ?? 0) / 1000)}s` : 'current') },
  { header: 'index', value: (d) => d.index, wide: true },
  { header: 'stream', value: (d) => d.stream?.server ?? (d.local ? '' : 'down'), wide: true },
  { header: 'resets', value: (d) => d.stream?.resets ?? '', wide: true },
  { header: 'resumes', value: (d) => d.stream?.resumes ?? '', wide: true },
  { header: 'servers', value: (d) => d.servers.map((s) => s.url).join(','), wide: true },
];

/** `beacon datacenters`: this server's datacenter and the ones it follows, nearest first. */
export function datacentersCommand(program: Command): void {
  program
    .command('datacenters')
    .description('list the datacenters the server knows (its own first, then by round-trip time) and the state of each followed view')
    .action(async (_o, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const { body } = await connect(opts).request<DatacenterStatus[]>('GET', '/api/v1/datacenters');
      printList(opts, body, body, DC_COLUMNS, 'no datacenters\n');
    });
}
