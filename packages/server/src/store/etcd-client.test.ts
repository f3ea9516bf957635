import { EventEmitter } from 'node:events';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { etcdClient } from './etcd-client.js';

type Manager = { watchers: EventEmitter[]; handleResponse(res: object): void };
const managerOf = (client: Etcd3) => (client as unknown as { watchManager: Manager }).watchManager;
// No call is made, so nothing listens on this address.
const options = { hosts: 'http://127.0.0.1:9' };

describe('etcdClient', () => {
  it('drops a watch response for a watcher the manager no longer has, where etcd3 alone throws', () => {
    const bare = new Etcd3(options);
    const guarded = etcdClient(options);
    try {
      const late = { watch_id: '7', events: [], header: {} };
      expect(() => managerOf(bare).handleResponse(late)).toThrow(/Failed to find watcher/);
      expect(() => managerOf(guarded).handleResponse(late)).not.toThrow();
    } finally {
      bare.close();
      guarded.close();
    }
  });

  it('still delivers a response to the watcher it names', () => {
    const client = etcdClient(options);
    try {
      const watcher = Object.assign(new EventEmitter(), { id: '7' });
      const seen: unknown[] = [];
      watcher.on('data', (res) => seen.push(res));
      managerOf(client).watchers.push(watcher);
      const res = { watch_id: '7', events: [], header: {} };
      managerOf(client).handleResponse(res);
      expect(seen).toEqual([res]);
    } finally {
      client.close();
    }
  });
});
