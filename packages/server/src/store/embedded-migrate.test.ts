import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { openEmbeddedStore } from './embedded.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A data file as schema 1 wrote it: kv clustered on the key (WITHOUT ROWID). */
function writeSchema1(path: string): void {
  const db = new Database(path);
  db.exec(`
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,
      version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE INDEX kv_by_lease ON kv (lease) WHERE lease <> 0;
    CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);
    INSERT INTO meta VALUES ('schema', 1), ('revision', 3), ('next_lease', 2);
    INSERT INTO kv VALUES ('/a', 'one', 1, 1, 1, 0), ('/b', 'two', 2, 3, 2, 1);
    INSERT INTO leases VALUES (1, 60000);
  `);
  db.close();
}

describe('embedded store: schema migration', () => {
  it('moves a schema 1 file to the rowid layout, keeping keys, revisions and leases', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'beacon.db');
    writeSchema1(path);
    const clock = new ManualClock();
    const store = await openEmbeddedStore({ path, clock });
    try {
      expect(await store.currentRevision()).toBe(3);
      expect(await store.get('/a')).toEqual({ key: '/a', value: 'one', createRevision: 1, modRevision: 1, version: 1, lease: 0 });
      expect(await store.get('/b')).toEqual({ key: '/b', value: 'two', createRevision: 2, modRevision: 3, version: 2, lease: 1 });
      expect((await store.leaseInfo(1))?.ttlMs).toBe(60_000);
      // Writes work on the new table, and a lease still takes its keys with it.
      expect(await store.put('/c', 'three')).toBe(4);
      await store.revokeLease(1);
      expect((await store.range('/')).kvs.map((kv) => kv.key)).toEqual(['/a', '/c']);
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const ddl = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get()!.sql;
      expect(ddl).not.toMatch(/WITHOUT ROWID/i);
      expect(db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get()!.value).toBe(2);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'kv_by_lease'").get()).toBeDefined();
    } finally {
      db.close();
    }
  });

  it('opens its own files again without migrating twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'beacon.db');
    const clock = new ManualClock();
    let store = await openEmbeddedStore({ path, clock });
    await store.put('/k', 'v');
    await store.close();
    store = await openEmbeddedStore({ path, clock });
    try {
      expect((await store.get('/k'))?.value).toBe('v');
      expect(await store.currentRevision()).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('refuses a file written by a newer schema', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-migrate-'));
    dirs.push(dir);
    const path = join(dir, 'beacon.db');
    const db = new Database(path);
    db.exec("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID; INSERT INTO meta VALUES ('schema', 99);");
    db.close();
    await expect(openEmbeddedStore({ path, clock: new ManualClock() })).rejects.toMatchObject({ code: 'unavailable' });
  });
});
