import { createHash } from 'node:crypto';
import { assertNodeName, errors, LIMITS, type Clock, type Flag } from '@beacon/core';
import { canonicalAddress } from '../registry/normalize.js';
import type { CatalogView, NodeRecord } from '../catalog/view.js';
import { KEYS } from '../keys.js';
import type { Store } from '../store/types.js';
import { PrefixMirror } from './mirror.js';

/** A node record as the catalog reads it, plus what Consul keeps per node. */
export interface CompatNodeRecord extends NodeRecord {
  /** Consul's node maintenance (`_node_maintenance`), kept with the node so every server sees it. */
  maintenance?: Flag;
  taggedAddresses?: Record<string, string>;
}

export interface NodeInfo {
  name: string;
  id: string;
  address: string;
  meta: Record<string, string>;
  taggedAddresses: Record<string, string>;
  maintenance?: Flag;
  createIndex: number;
  modifyIndex: number;
  /** True when a node record exists (catalog/register, the server itself); false when only instances name it. */
  recorded: boolean;
}


/** A stable, UUID-shaped node id derived from the name, so every server gives the same answer. */
export function nodeId(name: string): string {
  const h = createHash('sha256').update(`beacon-node:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A node no record describes: what its instances say (`fallback`: the first one's address and indexes). */
export function unrecordedNode(name: string, fallback?: { address: string; createIndex: number; modifyIndex: number }): NodeInfo {
  return {
    name,
    id: nodeId(name),
    address: fallback?.address ?? '',
    meta: {},
    taggedAddresses: {},
    createIndex: fallback?.createIndex ?? 1,
    modifyIndex: fallback?.modifyIndex ?? 1,
    recorded: false,
  };
}

/** Where the Consul views read nodes from: this DC's records, or (another DC) its instances only. */
export interface NodeSource {
  record(name: string): CompatNodeRecord | undefined;
  info(name: string, fallback?: { address: string; createIndex: number; modifyIndex: number }): NodeInfo;
  /** Names of the recorded nodes. */
  names(): Iterable<string>;
}

/** Another datacenter's nodes: its stream carries instances, not node records. */
export const instanceNodes: NodeSource = {
  record: () => undefined,
  info: unrecordedNode,
  names: () => [],
};

/**
 * Node records: the write path the catalog view reads (`KEYS.node(name)`), and an in-memory copy
 * for the adapters, so rendering a node costs a map lookup instead of a scan of every instance.
 */
export class NodeDirectory implements NodeSource {
  readonly mirror: PrefixMirror<CompatNodeRecord>;

  constructor(
    private readonly deps: { store: Store; catalog: CatalogView; clock: Clock },
    logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void },
  ) {
    this.mirror = new PrefixMirror<CompatNodeRecord>({
      store: deps.store,
      clock: deps.clock,
      prefix: KEYS.nodes,
      parse: (kv) => {
        try {
          const r = JSON.parse(kv.value) as CompatNodeRecord;
          return typeof r?.name === 'string' ? r : undefined;
        } catch {
          return undefined;
        }
      },
      ...(logger ? { logger } : {}),
    });
  }

  start(): Promise<void> {
    return this.mirror.start();
  }

  close(): Promise<void> {
    return this.mirror.close();
  }

  record(name: string): CompatNodeRecord | undefined {
    return this.mirror.get(name)?.value;
  }

  *names(): Iterable<string> {
    for (const e of this.mirror.all()) yield e.name;
  }

  /** What to show for a node: its record when there is one, else what its instances say. */
  info(name: string, fallback?: { address: string; createIndex: number; modifyIndex: number }): NodeInfo {
    const e = this.mirror.get(name);
    if (e) {
      const info: NodeInfo = {
        name,
        id: nodeId(name),
        address: e.value.address,
        meta: e.value.meta ?? {},
        taggedAddresses: e.value.taggedAddresses ?? {},
        createIndex: e.createIndex,
        modifyIndex: e.modifyIndex,
        recorded: true,
      };
      if (e.value.maintenance) info.maintenance = e.value.maintenance;
      return info;
    }
    return unrecordedNode(name, fallback);
  }

  /** Creates or replaces a node record; writes nothing when it is unchanged. Returns the index. */
  async upsert(input: { name: string; address: string; meta?: Record<string, string>; taggedAddresses?: Record<string, string> }): Promise<number> {
    assertNodeName(input.name);
    const address = canonicalAddress(input.address);
    const meta = input.meta ?? {};
    if (Object.keys(meta).length > LIMITS.metaKeys) throw errors.invalid(`at most ${LIMITS.metaKeys} node meta keys`);
    for (const [k, v] of Object.entries(meta)) {
      if (!k || k.length > LIMITS.metaKeyLength || typeof v !== 'string' || v.length > LIMITS.metaValueLength)
        throw errors.invalid(`node meta ${JSON.stringify(k.slice(0, 40))} must be a string key and value (${LIMITS.metaKeyLength}/${LIMITS.metaValueLength} characters at most)`);
    }
    return this.mutate(input.name, (prev) => {
      const next: CompatNodeRecord = { name: input.name, address, meta };
      if (input.taggedAddresses && Object.keys(input.taggedAddresses).length) next.taggedAddresses = input.taggedAddresses;
      if (prev?.maintenance) next.maintenance = prev.maintenance;
      return next;
    });
  }

  /** Turns node maintenance on or off; the node must have a record. */
  async setMaintenance(name: string, enable: boolean, reason: string): Promise<number> {
    return this.mutate(name, (prev) => {
      if (!prev) throw errors.notFound(`node ${name} has no record`);
      const next: CompatNodeRecord = { ...prev };
      if (enable) next.maintenance = { reason: reason.slice(0, LIMITS.reason) || 'node maintenance', since: this.deps.clock.now() };
      else delete next.maintenance;
      return next;
    });
  }

  /** Deletes the node record (its instances are the caller's business). Returns the index, or undefined when absent. */
  async remove(name: string): Promise<number | undefined> {
    const key = KEYS.node(name);
    const kv = await this.deps.store.get(key);
    if (!kv) return undefined;
    const res = await this.deps.store.txn({ compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }], success: [{ type: 'delete', key }] });
    if (!res.succeeded) throw errors.conflict(`node ${name} is being changed concurrently; try again`);
    await this.settle(res.revision);
    return res.revision;
  }

  private async mutate(name: string, next: (prev: CompatNodeRecord | undefined) => CompatNodeRecord): Promise<number> {
    const key = KEYS.node(name);
    for (let attempt = 0; attempt < 8; attempt++) {
      const kv = await this.deps.store.get(key);
      let prev: CompatNodeRecord | undefined;
      if (kv) {
        try {
          prev = JSON.parse(kv.value) as CompatNodeRecord;
        } catch {
          prev = undefined;
        }
      }
      const rec = next(prev);
      if (kv && prev && JSON.stringify(prev) === JSON.stringify(rec)) return kv.modRevision;
      const res = await this.deps.store.txn({
        compare: [kv ? { key, target: 'modRevision', op: 'equal', value: kv.modRevision } : { key, target: 'exists', value: false }],
        success: [{ type: 'put', key, value: JSON.stringify(rec) }],
      });
      if (!res.succeeded) continue;
      await this.settle(res.revision);
      return res.revision;
    }
    throw errors.conflict(`node ${name} is being changed concurrently; try again`);
  }

  private async settle(revision: number): Promise<void> {
    await Promise.all([this.mirror.waitForRevision(revision), this.deps.catalog.waitForIndex(revision)]);
  }
}
