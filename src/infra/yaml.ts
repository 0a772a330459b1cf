/**
 * A small YAML writer for the generators (no YAML library at run time): block mappings and
 * sequences, flow sequences for short lists of words, comments before entries. Strings that
 * are not plain words are written double-quoted (JSON string syntax, which YAML reads the same).
 * @internal
 */

/** A value {@link toYaml} writes; `undefined` entries of a mapping are left out. */
export type YamlValue =
  | string
  | number
  | boolean
  | readonly YamlValue[]
  | YamlMap
  | Commented
  | undefined;

/** A mapping, keys in insertion order. */
export interface YamlMap {
  readonly [key: string]: YamlValue;
}

/** A comment line, or `null` for an empty line. */
export type CommentLine = string | null;

/** A value with comment lines written above its entry. */
export class Commented {
  readonly comment: readonly CommentLine[];
  readonly value: YamlValue;
  constructor(comment: readonly CommentLine[], value: YamlValue) {
    this.comment = comment;
    this.value = value;
  }
}

/** `value` with comment lines above it. */
export function note(comment: CommentLine | readonly CommentLine[], value: YamlValue): Commented {
  return new Commented(Array.isArray(comment) ? comment : [comment as CommentLine], value);
}

/** A YAML document from a mapping, ending in a newline. */
export function toYaml(value: YamlMap): string {
  const out: string[] = [];
  mapping(value, 0, out);
  return `${out.join('\n')}\n`;
}

/** Comment lines (`# …`) at `indent`; `null` gives an empty line. */
export function commentLines(lines: readonly CommentLine[], indent = 0): string[] {
  const pad = ' '.repeat(indent);
  return lines.map((l) => (l === null ? '' : `${pad}# ${l.replace(/\s*\n\s*/g, ' ')}`.trimEnd()));
}

const FLOW_WIDTH = 100;
const RESERVED = /^(?:true|false|yes|no|on|off|y|n|null|~)$/i;
/** Words safe as plain scalars anywhere (flow context too). */
const WORD = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Plain in block context: also `a:b` (a colon not followed by a space). */
const BLOCK_WORD = /^[A-Za-z_][A-Za-z0-9_./-]*(?:::?[A-Za-z0-9_./-]+)*$/;
/** Keys: also `Fn::GetAtt`. */
const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*(?:::?[A-Za-z0-9_.-]+)*$/;

function unwrap(v: YamlValue): { comment: readonly CommentLine[]; value: YamlValue } {
  return v instanceof Commented
    ? { comment: v.comment, value: v.value }
    : { comment: [], value: v };
}

function isScalar(v: YamlValue): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function scalar(v: string | number | boolean, flow: boolean): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`toYaml: ${v} is not a finite number`);
    return String(v);
  }
  if (typeof v === 'boolean') return String(v);
  return (flow ? WORD : BLOCK_WORD).test(v) && !RESERVED.test(v) ? v : JSON.stringify(v);
}

function key(k: string): string {
  return KEY.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
}

/** A list of plain words (or numbers) on one line, e.g. `[GreeterQueue, Arn]`. */
function flowList(items: readonly YamlValue[]): string | undefined {
  const plain = (i: YamlValue) =>
    typeof i === 'number' ||
    typeof i === 'boolean' ||
    (typeof i === 'string' && WORD.test(i) && !RESERVED.test(i));
  if (!items.every(plain)) return undefined;
  return `[${(items as (string | number | boolean)[]).map((i) => scalar(i, true)).join(', ')}]`;
}

function mapping(map: YamlMap, indent: number, out: string[]): void {
  for (const [k, raw] of Object.entries(map)) {
    const { comment, value } = unwrap(raw);
    if (value === undefined) continue;
    out.push(...commentLines(comment, indent));
    entry(`${' '.repeat(indent)}${key(k)}:`, value, indent, out);
  }
}

/** `head` is `key:` or `-` at `indent`; writes the value inline or below it. */
function entry(head: string, value: YamlValue, indent: number, out: string[]): void {
  const { value: v } = unwrap(value);
  if (v === undefined) return;
  if (isScalar(v)) {
    out.push(`${head} ${scalar(v, false)}`);
  } else if (Array.isArray(v)) {
    const list = v as readonly YamlValue[];
    const flow = flowList(list);
    if (list.length === 0) out.push(`${head} []`);
    else if (flow !== undefined && head.length + flow.length < FLOW_WIDTH)
      out.push(`${head} ${flow}`);
    else {
      out.push(head);
      sequence(list, indent + 2, out);
    }
  } else {
    const map = v as YamlMap;
    if (Object.values(map).every((x) => unwrap(x).value === undefined)) out.push(`${head} {}`);
    else {
      out.push(head);
      mapping(map, indent + 2, out);
    }
  }
}

function sequence(items: readonly YamlValue[], indent: number, out: string[]): void {
  const pad = ' '.repeat(indent);
  for (const raw of items) {
    const { comment, value } = unwrap(raw);
    if (value === undefined) continue;
    out.push(...commentLines(comment, indent));
    const flow = Array.isArray(value) ? flowList(value) : undefined;
    if (isScalar(value) || flow !== undefined || (Array.isArray(value) && value.length === 0)) {
      entry(`${pad}-`, value, indent, out);
      continue;
    }
    // A mapping or a list: its first line on the `- ` line, the others below it.
    const lines: string[] = [];
    if (Array.isArray(value)) sequence(value, indent + 2, lines);
    else mapping(value as YamlMap, indent + 2, lines);
    if (lines.length === 0) {
      out.push(`${pad}- {}`);
      continue;
    }
    const first = lines.findIndex((l) => !/^\s*(#|$)/.test(l));
    out.push(...lines.slice(0, first));
    out.push(`${pad}- ${lines[first]!.slice(indent + 2)}`, ...lines.slice(first + 1));
  }
}
