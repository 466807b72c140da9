/**
 * A list of stored records (events or sessions, oldest first) that never changes once made.
 * Appending and dropping from the front make a new History in amortised constant time, sharing
 * the underlying buffer with the one they came from.
 *
 * Why not a plain array, copied on each change: at 50,000 retained events, copying the list a few
 * times per recorded event, and the garbage collector scanning those 400 KB copies, were most of
 * the cost of recording one event (the growth target: cost independent of history size).
 */
export class History<T> {
  private constructor(
    /** Shared by the Histories made from one another; only ever pushed to, never rewritten. */
    private readonly buffer: T[],
    private readonly start: number,
    readonly length: number,
  ) {}

  /** A History holding `items`, which it takes over: the caller must not change the array afterwards. */
  static adopt<T>(items: T[]): History<T> {
    return new History(items, 0, items.length);
  }

  at(index: number): T | undefined {
    return index >= 0 && index < this.length ? this.buffer[this.start + index] : undefined;
  }

  /** Index of the first record identical (`===`) to `record`, or -1. */
  indexOf(record: T): number {
    const found = this.buffer.indexOf(record, this.start);
    return found === -1 || found >= this.start + this.length ? -1 : found - this.start;
  }

  /** This list followed by `records`. */
  append(records: readonly T[]): History<T> {
    if (records.length === 0) return this;
    const end = this.start + this.length;
    // Another History made from this one appended already: its records must not be overwritten.
    const owned = end === this.buffer.length;
    const buffer = owned ? this.buffer : this.buffer.slice(this.start, end);
    for (const record of records) buffer.push(record);
    return new History(buffer, owned ? this.start : 0, this.length + records.length);
  }

  /** This list without its oldest `count` records. */
  dropFront(count: number): History<T> {
    if (count <= 0) return this;
    const length = Math.max(0, this.length - count);
    const start = this.start + this.length - length;
    // Dropped records stay referenced by the buffer until it is compacted: compacting once they
    // are a quarter of what is kept bounds that memory at 25 % for one copy per length/4 drops.
    if (start > length / 4 + 64) return new History(this.buffer.slice(start, start + length), 0, length);
    return new History(this.buffer, start, length);
  }

  /** The newest `count` records (the FIFO cap). */
  keepLast(count: number): History<T> {
    return this.dropFront(this.length - count);
  }

  /** A new array of the records (oldest first). */
  toArray(): T[] {
    return this.buffer.slice(this.start, this.start + this.length);
  }

  /** JSON.stringify writes a History as the array it holds. */
  toJSON(): T[] {
    return this.toArray();
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let index = this.start; index < this.start + this.length; index++) yield this.buffer[index] as T;
  }
}
