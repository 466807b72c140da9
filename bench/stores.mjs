// The stores under test, each behind one small interface so the scenarios treat them alike:
//   prefill(dir, maxEvents)  writes the initial files holding `maxEvents` events (untimed)
//   open(dir, maxEvents)     returns { record(seq): Promise|void, close() }
//   invocations(dir)         the agent's lifetime invocations as stored (lost updates = expected − this)
//   stateBytes(dir)          size of the main data file
// `concurrent: false` marks stores whose calls are synchronous: 64 callers in one process cannot
// overlap there, so that scenario runs them sequentially.
import { closeSync, fdatasyncSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AGENT,
  applyEvent,
  eventInput,
  invocationsOf,
  makeEvent,
  PROJECT,
  prefilledState,
} from './workload.mjs';

// Each store loads only its own library, so a child's peak RSS is that store's.
const ourApi = () => import('../dist/index.js');
const sqliteDatabase = async () => (await import('better-sqlite3')).default;

const JSON_FILE = 'state.json';
const SQLITE_FILE = 'state.sqlite';
const APPEND_FILE = 'append.log';
const RECORD_BYTES = 512;

function writeJson(path, state) {
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

async function readJsonInvocations(path) {
  return invocationsOf(JSON.parse(await readFile(path, 'utf8')));
}

function sizeOf(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Our store's files start from a state saved by our own store (validated, in our format). */
async function prefillOurs(dir, maxEvents) {
  const { MetricsStore } = await ourApi();
  await new MetricsStore({ projectName: PROJECT, dir, maxEvents }).save(prefilledState(maxEvents));
}

const ours = (label, description, recordWith) => ({
  label,
  description,
  concurrent: true,
  prefill: prefillOurs,
  async open(dir, maxEvents) {
    const api = await ourApi();
    const store = new api.MetricsStore({ projectName: PROJECT, dir, maxEvents });
    return { record: recordWith(api, store, maxEvents), close: () => store.close() };
  },
  async invocations(dir) {
    const { MetricsStore } = await ourApi();
    return invocationsOf(await new MetricsStore({ projectName: PROJECT, dir }).load());
  },
  stateBytes: (dir) => sizeOf(join(dir, '.agent_metrics.json')),
});

export const STORES = {
  'ours-record': ours(
    'ours: AgentMetrics.recordEvent()',
    'domain API (input validation, pricing) over MetricsStore.recordEvent() (an operation line per event); durability fsync',
    ({ AgentMetrics }, store) => {
      const metrics = new AgentMetrics({ store, strict: true });
      return (seq) => metrics.recordEvent(eventInput(seq));
    },
  ),
  'ours-update': ours(
    'ours: MetricsStore.update()',
    'journal append + fdatasync under flock (group commit), checkpoint into the JSON file at close',
    (_api, store, maxEvents) => (seq) =>
      store.update((state) => applyEvent(state, makeEvent(seq), maxEvents)),
  ),

  'wfa-lockfile': {
    label: 'write-file-atomic + proper-lockfile',
    description: 'lock (mkdir lock dir), read+parse, mutate, write-file-atomic with fsync (no folder fsync)',
    concurrent: true,
    async prefill(dir, maxEvents) {
      writeJson(join(dir, JSON_FILE), prefilledState(maxEvents));
    },
    async open(dir, maxEvents) {
      const { default: lockfile } = await import('proper-lockfile');
      const { default: writeFileAtomic } = await import('write-file-atomic');
      const path = join(dir, JSON_FILE);
      const lockOptions = {
        realpath: false,
        retries: { retries: 10_000, factor: 1.2, minTimeout: 1, maxTimeout: 25, randomize: true },
        // The default throws from a timer and kills the process (proper-lockfile #11).
        onCompromised: (error) => {
          console.error(`proper-lockfile: lock compromised: ${error.message}`);
        },
      };
      return {
        async record(seq) {
          const release = await lockfile.lock(path, lockOptions);
          try {
            const state = JSON.parse(await readFile(path, 'utf8'));
            applyEvent(state, makeEvent(seq), maxEvents);
            await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, { fsync: true, mode: 0o600 });
          } finally {
            await release();
          }
        },
        close() {},
      };
    },
    invocations: (dir) => readJsonInvocations(join(dir, JSON_FILE)),
    stateBytes: (dir) => sizeOf(join(dir, JSON_FILE)),
  },

  lowdb: {
    label: 'lowdb 7 (JSONFile)',
    description:
      "db.read() then db.update() per event (re-read, or other processes' changes are overwritten); " +
      'no lock, no fsync, steno writes one shared temp file + rename. Concurrent callers in one ' +
      'process interleave read and update, which loses updates too',
    concurrent: true,
    async prefill(dir, maxEvents) {
      writeJson(join(dir, JSON_FILE), prefilledState(maxEvents));
    },
    async open(dir, maxEvents) {
      const { Low } = await import('lowdb');
      const { JSONFile } = await import('lowdb/node');
      const db = new Low(new JSONFile(join(dir, JSON_FILE)), {});
      return {
        // Re-read before each change, or other processes' changes would be overwritten wholesale.
        async record(seq) {
          await db.read();
          await db.update((state) => applyEvent(state, makeEvent(seq), maxEvents));
        },
        close() {},
      };
    },
    invocations: (dir) => readJsonInvocations(join(dir, JSON_FILE)),
    stateBytes: (dir) => sizeOf(join(dir, JSON_FILE)),
  },

  sqlite: {
    label: 'SQLite (better-sqlite3, WAL, synchronous=FULL)',
    description:
      'one row per event + counters rows (root, agent); trim to newest N; one IMMEDIATE transaction per event',
    concurrent: false,
    async prefill(dir, maxEvents) {
      const db = await openSqlite(dir);
      db.exec(`
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
                             agent_name TEXT NOT NULL, data TEXT NOT NULL);
        CREATE TABLE counters (name TEXT PRIMARY KEY, invocations INTEGER NOT NULL, successes INTEGER NOT NULL,
                               failures INTEGER NOT NULL, tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
                               duration_seconds REAL NOT NULL, updated_at TEXT NOT NULL);
        INSERT INTO counters VALUES ('root', 0, 0, 0, 0, 0, 0, ''), ('agent:${AGENT}', 0, 0, 0, 0, 0, 0, '');
      `);
      const record = sqliteRecorder(db, maxEvents);
      db.transaction(() => {
        for (let seq = 0; seq < maxEvents; seq++) record(seq);
      })();
      db.close();
    },
    async open(dir, maxEvents) {
      const db = await openSqlite(dir);
      const record = sqliteRecorder(db, maxEvents);
      const transaction = db.transaction(record);
      return { record: (seq) => transaction.immediate(seq), close: () => db.close() };
    },
    async invocations(dir) {
      const db = await openSqlite(dir);
      try {
        return db.prepare('SELECT invocations FROM counters WHERE name = ?').get(`agent:${AGENT}`)
          .invocations;
      } finally {
        db.close();
      }
    },
    stateBytes: (dir) => sizeOf(join(dir, SQLITE_FILE)),
  },

  'append-limit': {
    label: 'limit: 512 B append + fdatasync',
    description: 'O_APPEND write of 512 bytes then fdatasync, same disk; no read, no lock',
    concurrent: false,
    async prefill(dir) {
      writeFileSync(join(dir, APPEND_FILE), '', { mode: 0o600 });
    },
    async open(dir) {
      const fd = openSync(join(dir, APPEND_FILE), 'a', 0o600);
      const record = Buffer.alloc(RECORD_BYTES, 0x2e);
      record[RECORD_BYTES - 1] = 0x0a;
      return {
        record() {
          writeSync(fd, record);
          fdatasyncSync(fd);
        },
        close: () => closeSync(fd),
      };
    },
    invocations: async (dir) => sizeOf(join(dir, APPEND_FILE)) / RECORD_BYTES,
    stateBytes: (dir) => sizeOf(join(dir, APPEND_FILE)),
  },
};

async function openSqlite(dir) {
  const Database = await sqliteDatabase();
  // `timeout` is SQLite's busy timeout: writers of other processes wait for the lock.
  const db = new Database(join(dir, SQLITE_FILE), { timeout: 30_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

function sqliteRecorder(db, maxEvents) {
  const insert = db.prepare('INSERT INTO events (event_id, agent_name, data) VALUES (?, ?, ?)');
  const trim = db.prepare('DELETE FROM events WHERE id <= ?');
  const count = db.prepare(
    `UPDATE counters SET invocations = invocations + 1, successes = successes + ?, failures = failures + ?,
       tokens = tokens + ?, cost_usd = cost_usd + ?, duration_seconds = duration_seconds + ?, updated_at = ?
     WHERE name IN ('root', ?)`,
  );
  return (seq) => {
    const event = makeEvent(seq);
    const { lastInsertRowid } = insert.run(event.event_id, event.agent_name, JSON.stringify(event));
    trim.run(Number(lastInsertRowid) - maxEvents);
    const succeeded = event.status === 'success' ? 1 : 0;
    count.run(
      succeeded,
      1 - succeeded,
      event.total_tokens,
      event.estimated_cost_usd,
      event.duration_seconds,
      new Date().toISOString(),
      `agent:${event.agent_name}`,
    );
  };
}
