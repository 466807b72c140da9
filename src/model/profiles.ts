import type { AgentProfile } from './types.js';
import { setOwn } from './working-copy.js';

/** Layers kept before a flattening, at least (see `Profiles`). */
const MIN_LAYERS = 16;

/**
 * The profiles of a stored state (`StoredState.agents`), by agent name: never changed once made.
 * `with` makes a new one in time independent of the number of profiles, sharing this one.
 *
 * Why not a plain object, copied on each change (as before): every recorded event changes one
 * profile, and copying the object of all profiles made an event's cost grow with the number of
 * agents: 312 µs of CPU per event with 1,000 agents and 3.5 ms with 5,000, 38 and 97 µs now
 * (`node bench/probes/record-cpu.mjs --agents=1000 --durability=none`). Here a change is a small layer on top of the profiles it
 * changes; a lookup walks the layers, newest first; once there are 2√size of them (at least 16),
 * they are flattened into one Map, so lookups stay short and the flattening's cost, spread over
 * the changes before it, stays near √size entries per change. Maps, not objects: V8 keeps an
 * object of over ~1,000 keys as a hash table, which copies several times slower than a Map.
 *
 * The order of names is a plain object's (`toRecord`): a changed profile keeps its place, a new
 * one comes last (integer-like names first, as JavaScript orders an object's keys).
 */
export class Profiles {
  /** All the profiles in one Map, once made (the bottom layer is one). */
  private merged: Map<string, AgentProfile> | undefined;
  /** The profiles as an object, once made (`toRecord`). */
  private record: Record<string, AgentProfile> | undefined;

  private constructor(
    private readonly below: Profiles | undefined,
    /** The profiles this layer sets (all of them at the bottom); never changed. */
    private readonly layer: ReadonlyMap<string, AgentProfile>,
    private readonly depth: number,
    /** How many profiles there are. */
    readonly size: number,
  ) {
    if (below === undefined) this.merged = layer as Map<string, AgentProfile>;
  }

  /** Profiles holding those of `record` (a plain object of profiles by name). */
  static from(record: Readonly<Record<string, AgentProfile>>): Profiles {
    const all = new Map<string, AgentProfile>();
    for (const name of Object.keys(record)) all.set(name, record[name] as AgentProfile);
    return new Profiles(undefined, all, 0, all.size);
  }

  get(name: string): AgentProfile | undefined {
    for (let table: Profiles | undefined = this; table !== undefined; table = table.below) {
      const profile = table.layer.get(name);
      if (profile !== undefined || table.layer.has(name)) return profile;
    }
    return undefined;
  }

  has(name: string): boolean {
    for (let table: Profiles | undefined = this; table !== undefined; table = table.below) {
      if (table.layer.has(name)) return true;
    }
    return false;
  }

  /** These profiles with those of `changes` set (added, or replacing the profile of that name). */
  with(changes: Readonly<Record<string, AgentProfile>>): Profiles {
    const names = Object.keys(changes);
    if (names.length === 0) return this;
    const layer = new Map<string, AgentProfile>();
    let added = 0;
    for (const name of names) {
      if (!this.has(name)) added += 1;
      layer.set(name, changes[name] as AgentProfile);
    }
    const size = this.size + added;
    // A Map of all made already (a working copy or a checkpoint read them) is a shorter base.
    const below =
      this.depth > 0 && this.merged !== undefined ? new Profiles(undefined, this.merged, 0, this.size) : this;
    if (below.depth + 1 < Math.max(MIN_LAYERS, 2 * Math.sqrt(size))) {
      return new Profiles(below, layer, below.depth + 1, size);
    }
    const all = below.mergedCopy();
    for (const [name, profile] of layer) all.set(name, profile);
    return new Profiles(undefined, all, 0, size);
  }

  /** These profiles without those named (a whole copy: removing profiles is rare). */
  without(names: readonly string[]): Profiles {
    const all = this.mergedCopy();
    for (const name of names) all.delete(name);
    return new Profiles(undefined, all, 0, all.size);
  }

  /**
   * The profiles as a plain object, made once per Profiles (the same object at each call):
   * working copies, the state file and whole-state checks read them this way. Not to be changed.
   */
  toRecord(): Record<string, AgentProfile> {
    if (this.record === undefined) {
      const record: Record<string, AgentProfile> = {};
      for (const [name, profile] of this.all()) setOwn(record, name, profile);
      this.record = record;
    }
    return this.record;
  }

  /** JSON.stringify writes Profiles as the object they hold. */
  toJSON(): Record<string, AgentProfile> {
    return this.toRecord();
  }

  private all(): ReadonlyMap<string, AgentProfile> {
    this.merged ??= this.mergedCopy();
    return this.merged;
  }

  /** A new Map of all the profiles, the caller's to change. */
  private mergedCopy(): Map<string, AgentProfile> {
    const layers: ReadonlyMap<string, AgentProfile>[] = [];
    let table: Profiles = this;
    while (table.merged === undefined && table.below !== undefined) {
      layers.push(table.layer);
      table = table.below;
    }
    const all = new Map(table.merged ?? table.layer);
    for (let index = layers.length - 1; index >= 0; index--) {
      for (const [name, profile] of layers[index] as ReadonlyMap<string, AgentProfile>)
        all.set(name, profile);
    }
    return all;
  }
}
