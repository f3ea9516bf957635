import { Etcd3, type IOptions } from 'etcd3';

/** The parts of etcd3's (internal) watch manager the guard touches. */
interface WatchManagerInternals {
  watchers: { id: string | null }[];
  handleResponse(res: { watch_id: string }): void;
}

/**
 * An etcd3 client whose watch manager drops a response for a watcher it no longer has.
 *
 * When a watch stream breaks, etcd3 clears every watcher's id and reconnects; a response already
 * inside gRPC's receive pipeline can still be delivered afterwards. etcd3 then throws "Failed to
 * find watcher for IWatchResponse" from a promise callback: an unhandled rejection, which ends a
 * Node process. Dropping it loses nothing: the watcher resumes on the new stream after the last
 * revision it delivered, so those events come again.
 */
export function etcdClient(options: IOptions): Etcd3 {
  const client = new Etcd3(options);
  const manager = (client as unknown as { watchManager?: WatchManagerInternals }).watchManager;
  if (manager && typeof manager.handleResponse === 'function' && Array.isArray(manager.watchers)) {
    const handle = manager.handleResponse.bind(manager);
    manager.handleResponse = (res) => {
      if (manager.watchers.some((w) => w.id === res.watch_id)) handle(res);
    };
  }
  return client;
}
