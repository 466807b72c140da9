import { setOwn } from '../model/working-copy.js';

/**
 * Parses the JSON text of a state file fed in pieces (`push`), one root value or list item at a
 * time: with 50,000 events the file is ~30 MB, and `JSON.parse` of it whole needs the bytes, the
 * decoded text and the parsed objects at once (RSS 183 MB after loading a 31 MB file, of which
 * the objects are 27 MB of heap). Here each root value, and each item of a root list, is decoded
 * and handed to `JSON.parse` alone as soon as its last byte has arrived (RSS 123–133 MB; parsing
 * items in groups of 512 KiB or more was no better, and 8 MiB worse: 208 MB).
 *
 * Why by hand: streaming JSON parsers on npm (stream-json, @streamparser/json) tokenise every
 * byte in JavaScript and build each value from the tokens. Here `JSON.parse` still builds every
 * value; the code below only finds where each one ends. (Not measured against them.)
 *
 * It gives up (`push` or `end` answer false / undefined) on anything but a JSON object whose
 * parts `JSON.parse` accepts; the caller then parses the whole file the usual way, which says
 * what is wrong. Whatever it returns is what `JSON.parse` returns for the whole text: the glue
 * between the parts (whitespace, `{`, `:`, `,`, `[`, `]`, `}`) is checked here and every part by
 * `JSON.parse`, and only ASCII bytes fall outside the parts, so decoding the parts alone checks
 * the same UTF-8.
 */
export class StateFileStream {
  private phase: Phase = 'root-start';
  private root: Record<string, unknown> = {};
  private key = '';
  private list: unknown[] | undefined;
  private partKind: PartKind = 'key';
  /** The part being read: its bytes from earlier pieces, and how it ends. */
  private parts: Buffer[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;
  // ignoreBOM: a byte-order mark at the start of a part is a character, which JSON.parse then
  // rejects as the whole file's parse would; the decoder's default drops it from every part.
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  /** Feeds the next piece of the file; false once the text cannot be parsed this way. */
  push(piece: Buffer): boolean {
    if (this.phase === 'failed') return false;
    let index = 0;
    while (index < piece.length) {
      if (this.phase === 'part') {
        const end = this.partEnd(piece, index);
        if (end < 0) {
          this.parts.push(piece.subarray(index));
          return true;
        }
        if (!this.finishPart(piece.subarray(index, end))) return this.fail();
        index = end;
        continue;
      }
      const byte = piece[index] as number;
      if (byte === SPACE || byte === TAB || byte === LF || byte === CR) {
        index++;
        continue;
      }
      if (!this.glue(byte)) return this.fail();
      // A part's first byte is read again as part of it.
      if ((this.phase as Phase) !== 'part') index++;
    }
    return true;
  }

  /** The parsed object once the whole file was pushed, or undefined when it could not be parsed this way. */
  end(): Record<string, unknown> | undefined {
    return this.phase === 'done' ? this.root : undefined;
  }

  private fail(): false {
    this.phase = 'failed';
    this.parts = [];
    return false;
  }

  /** A structural byte between parts: moves to the next phase, or false when it has no place here. */
  private glue(byte: number): boolean {
    switch (this.phase) {
      case 'root-start':
        return this.expect(byte === OPEN_OBJECT, 'key-or-close');
      case 'key-or-close':
        if (byte === CLOSE_OBJECT) return this.expect(true, 'done');
        return this.startPart(byte, 'key');
      case 'key':
        return this.startPart(byte, 'key');
      case 'colon':
        return this.expect(byte === COLON, 'value');
      case 'value':
        if (byte === OPEN_LIST) {
          this.list = [];
          return this.expect(true, 'item-or-close');
        }
        return this.startPart(byte, 'value');
      case 'after-value':
        if (byte === COMMA) return this.expect(true, 'key');
        return this.expect(byte === CLOSE_OBJECT, 'done');
      case 'item-or-close':
        if (byte === CLOSE_LIST) return this.closeList();
        return this.startPart(byte, 'item');
      case 'item':
        return this.startPart(byte, 'item');
      case 'after-item':
        if (byte === COMMA) return this.expect(true, 'item');
        return byte === CLOSE_LIST && this.closeList();
      default:
        // 'done' takes only whitespace; 'part' and 'failed' never get here.
        return false;
    }
  }

  private expect(ok: boolean, next: Phase): boolean {
    if (ok) this.phase = next;
    return ok;
  }

  private closeList(): boolean {
    setOwn(this.root, this.key, this.list);
    this.list = undefined;
    this.phase = 'after-value';
    return true;
  }

  /** Starts reading a part (a key, a root value or a list item) at `byte`, its first byte. */
  private startPart(byte: number, kind: PartKind): boolean {
    if (kind === 'key' && byte !== QUOTE) return false;
    this.partKind = kind;
    this.parts = [];
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.phase = 'part';
    return true;
  }

  /**
   * Where the part being read ends in `piece`, reading from `from`: the index after its last byte
   * (a closing quote or bracket; a number or literal ends before the byte that follows it), or -1
   * when it goes on past this piece.
   */
  private partEnd(piece: Buffer, from: number): number {
    let { depth, inString, escaped } = this;
    for (let index = from; index < piece.length; index++) {
      const byte = piece[index] as number;
      if (inString) {
        if (escaped) escaped = false;
        else if (byte === BACKSLASH) escaped = true;
        else if (byte === QUOTE) {
          inString = false;
          if (depth === 0) return index + 1;
        }
      } else if (byte === QUOTE) inString = true;
      else if (byte === OPEN_OBJECT || byte === OPEN_LIST) depth++;
      else if (byte === CLOSE_OBJECT || byte === CLOSE_LIST) {
        if (depth === 0) return index;
        depth--;
        if (depth === 0) return index + 1;
      } else if (
        depth === 0 &&
        (byte === COMMA || byte === SPACE || byte === TAB || byte === LF || byte === CR)
      ) {
        return index;
      }
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    return -1;
  }

  /** The part's last bytes have arrived: parses it and moves on. False when JSON.parse rejects it. */
  private finishPart(last: Buffer): boolean {
    const bytes = this.parts.length === 0 ? last : Buffer.concat([...this.parts, last]);
    this.parts = [];
    let value: unknown;
    try {
      value = JSON.parse(this.utf8.decode(bytes));
    } catch {
      return false;
    }
    switch (this.partKind) {
      case 'key':
        if (typeof value !== 'string') return false;
        this.key = value;
        this.phase = 'colon';
        return true;
      case 'value':
        setOwn(this.root, this.key, value);
        this.phase = 'after-value';
        return true;
      default:
        (this.list as unknown[]).push(value);
        this.phase = 'after-item';
        return true;
    }
  }
}

type Phase =
  | 'root-start'
  | 'key-or-close'
  | 'key'
  | 'colon'
  | 'value'
  | 'after-value'
  | 'item-or-close'
  | 'item'
  | 'after-item'
  | 'part'
  | 'done'
  | 'failed';

type PartKind = 'key' | 'value' | 'item';

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
