import * as v from 'valibot';

/**
 * `v.is(schema, value)` without valibot's run-time machinery, for the checks on every write.
 *
 * Why by hand: `v.is` runs a schema through valibot's generic pipeline, which allocates a dataset
 * per value checked and copies every object it checks: 5.5 KB of the 40.5 KB allocated per
 * recorded event (`node --max-semi-space-size=1024 --min-semi-space-size=1024
 * bench/probes/write-steps.mjs --alloc`, on 337ec36 and on 1c0cdb2), and 2 µs instead of 0.8 µs
 * to check one event in a hot loop of `v.is` against `isValid` (200,000 calls each).
 * The predicates compiled here allocate nothing once optimised. Valibot stays the one description of the file
 * format: they are compiled from its schemas, follow its `~run` code node for node (valibot
 * 1.x), and cover only the node types the file format uses; a schema with any other node is
 * answered by `v.is` itself. test/model/schema-predicate.property.test.ts holds them to `v.is`.
 */
type Predicate = (value: unknown) => boolean;
type AnySchema = v.GenericSchema;

const compiled = new WeakMap<object, Predicate | undefined>();

/**
 * The same answer as `v.is(schema, value)` for JSON data (what the store checks: the JSON form of
 * a change). Other values can tell them apart: valibot asks `in` twice per known key and reads
 * every other key too (copying the object), so a Proxy or getter that answers differently from
 * one read to the next, or throws on an unknown key, may get another answer.
 */
export function isValid(schema: AnySchema, value: unknown): boolean {
  const predicate = compiledPredicate(schema);
  return predicate === undefined ? v.is(schema, value) : predicate(value);
}

/** The compiled predicate of `schema` (kept), or undefined when it has a node not compiled here. */
export function compiledPredicate(schema: AnySchema): Predicate | undefined {
  if (!compiled.has(schema)) compiled.set(schema, compile(schema));
  return compiled.get(schema);
}

interface Node {
  kind: string;
  type: string;
  pipe?: readonly Node[];
  [key: string]: unknown;
}

/** The predicate of `schema`, or undefined when it holds a node not compiled here (exported for tests). */
export function compile(schema: AnySchema): Predicate | undefined {
  return compileNode(schema as unknown as Node);
}

function compileNode(node: Node): Predicate | undefined {
  if (node.pipe !== undefined) return compilePipe(node.pipe);
  if (node.kind !== 'schema') return undefined;
  switch (node.type) {
    case 'string':
      return (value) => typeof value === 'string';
    case 'number':
      return (value) => typeof value === 'number' && !Number.isNaN(value);
    case 'date':
      // valibot's `isNaN(date)`: the number the Date converts to.
      return (value) => value instanceof Date && !Number.isNaN(Number(value));
    case 'literal': {
      const literal = node.literal;
      return (value) => value === literal || (Number.isNaN(value) && Number.isNaN(literal));
    }
    case 'picklist': {
      const options = node.options as readonly unknown[];
      return (value) => options.includes(value);
    }
    case 'custom': {
      const check = node.check as (value: unknown) => boolean;
      return (value) => Boolean(check(value));
    }
    case 'union':
      return compileUnion(node.options as readonly Node[]);
    case 'array':
      return compileArray(node.item as Node);
    case 'loose_object':
      return compileLooseObject(node.entries as Record<string, Node>);
    case 'strict_object':
      return compileStrictObject(node.entries as Record<string, Node>);
    case 'optional': {
      // A default replaces undefined with another value, which is then checked: not compiled.
      if (node.default !== undefined) return undefined;
      const wrapped = compileNode(node.wrapped as Node);
      if (wrapped === undefined) return undefined;
      return (value) => value === undefined || wrapped(value);
    }
    default:
      return undefined;
  }
}

/** Every item in order, stopping at the first that fails (as `is`, which aborts early). */
function compilePipe(pipe: readonly Node[]): Predicate | undefined {
  const items = pipe.filter((item) => item.kind !== 'metadata');
  const steps: Predicate[] = [];
  for (const [index, item] of items.entries()) {
    // Object and array schemas hand a copy to the items after them: not compiled.
    if (index < items.length - 1 && outputsCopy(item)) return undefined;
    // The first item is the schema the pipe was made from (a pipe's own node copies its keys).
    const step = index === 0 || item.kind === 'schema' ? compileNode(item) : compileAction(item);
    if (step === undefined) return undefined;
    steps.push(step);
  }
  return (value) => {
    for (const step of steps) if (!step(value)) return false;
    return true;
  };
}

/** True when a value passed by `node` comes out as a copy (objects and arrays are rebuilt). */
function outputsCopy(node: Node): boolean {
  if (node.pipe !== undefined) {
    const last = node.pipe.filter((item) => item.kind !== 'metadata').at(-1);
    return last !== undefined && outputsCopy(last);
  }
  if (node.type === 'optional') return outputsCopy(node.wrapped as Node);
  return ['loose_object', 'strict_object', 'array', 'union'].includes(node.type);
}

function compileAction(action: Node): Predicate | undefined {
  if (action.kind !== 'validation') return undefined;
  const requirement = action.requirement;
  switch (action.type) {
    case 'regex': {
      const pattern = requirement as RegExp;
      // A global or sticky pattern keeps state between tests: valibot's answer would depend on it.
      if (pattern.global || pattern.sticky) return undefined;
      return (value) => pattern.test(value as string);
    }
    case 'finite':
    case 'safe_integer': {
      const test = requirement as (value: unknown) => boolean;
      return (value) => test(value);
    }
    case 'min_value':
      return (value) => (value as number) >= (requirement as number);
    case 'max_value':
      return (value) => (value as number) <= (requirement as number);
    case 'min_length':
      return (value) => !((value as { length: number }).length < (requirement as number));
    case 'check': {
      const check = requirement as (value: unknown) => unknown;
      return (value) => Boolean(check(value));
    }
    default:
      return undefined;
  }
}

function compileUnion(options: readonly Node[]): Predicate | undefined {
  const predicates: Predicate[] = [];
  for (const option of options) {
    const predicate = compileNode(option);
    if (predicate === undefined) return undefined;
    predicates.push(predicate);
  }
  return (value) => {
    for (const predicate of predicates) if (predicate(value)) return true;
    return false;
  };
}

function compileArray(item: Node): Predicate | undefined {
  const predicate = compileNode(item);
  if (predicate === undefined) return undefined;
  return (value) => {
    if (!Array.isArray(value)) return false;
    for (let index = 0; index < value.length; index++) if (!predicate(value[index])) return false;
    return true;
  };
}

function compileLooseObject(entries: Record<string, Node>): Predicate | undefined {
  const checks: Array<[string, Predicate]> = [];
  for (const key in entries) {
    const entry = entries[key] as Node;
    // Optional entries and fallbacks change what a missing key means: not compiled.
    if (['optional', 'exact_optional', 'nullish'].includes(entry.type) || entry.fallback !== undefined) {
      return undefined;
    }
    const predicate = compileNode(entry);
    if (predicate === undefined) return undefined;
    checks.push([key, predicate]);
  }
  return (value) => {
    if (!value || typeof value !== 'object') return false;
    for (const [key, predicate] of checks) {
      // `in`, then one read: an inherited key counts, as in valibot.
      if (!(key in value) || !predicate((value as Record<string, unknown>)[key])) return false;
    }
    return true;
  };
}

/**
 * valibot's strict object: each entry's key present (`in`: inherited keys count) with a value its
 * schema accepts, or absent when the entry is optional; then no key (`for in`: inherited
 * enumerable keys too) that is not an entry.
 */
function compileStrictObject(entries: Record<string, Node>): Predicate | undefined {
  const checks: Array<[key: string, predicate: Predicate, optional: boolean]> = [];
  for (const key in entries) {
    const entry = entries[key] as Node;
    // `optional` is compiled with its undefined; the others change what a missing key means.
    if (['exact_optional', 'nullish'].includes(entry.type) || entry.fallback !== undefined) return undefined;
    const predicate = compileNode(entry);
    if (predicate === undefined) return undefined;
    checks.push([key, predicate, entry.type === 'optional']);
  }
  return (value) => {
    if (!value || typeof value !== 'object') return false;
    for (const [key, predicate, optional] of checks) {
      if (key in value) {
        if (!predicate((value as Record<string, unknown>)[key])) return false;
      } else if (!optional) {
        return false;
      }
    }
    for (const key in value) if (!Object.hasOwn(entries, key)) return false;
    return true;
  };
}
