/**
 * The Markdown a user reads: every relative link points at a file of the repository, and every
 * `#anchor` at a heading of its page (GitHub's slugs). Offline: external links are not fetched.
 * Every platform page keeps the same outline: its first `###` sections are OUTLINE, in order.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

function markdownFiles(): string[] {
  const out = ['README.md', 'BENCHMARKS.md'].filter((f) => existsSync(join(ROOT, f)));
  for (const f of readdirSync(join(ROOT, 'docs'))) if (f.endsWith('.md')) out.push(`docs/${f}`);
  return out;
}

/** GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let inCode = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    if (inCode) continue;
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The `level` headings of a Markdown text (outside code fences), in order. */
function headings(text: string, level: number): string[] {
  const out: string[] = [];
  let inCode = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    if (inCode) continue;
    const m = /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (m && m[1]!.length === level) out.push(m[2]!);
  }
  return out;
}

/** The sections every platform page has, first and in this order; others may follow. */
const OUTLINE = [
  'Install',
  'Publish',
  'Handle',
  'Reply',
  'Request',
  'Deploy',
  'Limits',
  'Local testing',
  'What differs from the real service',
];
const PLATFORM_PAGES = ['aws', 'gcp', 'azure', 'cloudflare', 'amqp', 'kafka'].map(
  (p) => `docs/${p}.md`,
);

function links(text: string): string[] {
  const stripped = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...stripped.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

describe('documentation links', () => {
  for (const file of markdownFiles()) {
    it(`${file}: relative links and anchors resolve`, () => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const broken: string[] = [];
      for (const link of links(text)) {
        if (/^[a-z]+:/i.test(link)) continue; // https:, mailto: — not checked offline
        const [path, anchor] = link.split('#') as [string, string | undefined];
        const target = path === '' ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), path);
        if (relative(ROOT, target).startsWith('..')) {
          broken.push(`${link} (outside the repository)`);
          continue;
        }
        if (!existsSync(target)) {
          broken.push(`${link} (no such file)`);
          continue;
        }
        if (anchor && statSync(target).isFile() && target.endsWith('.md')) {
          if (!anchors(readFileSync(target, 'utf8')).has(anchor))
            broken.push(`${link} (no such heading)`);
        }
      }
      expect(broken).toEqual([]);
    });
  }
});

describe('platform pages', () => {
  for (const file of PLATFORM_PAGES) {
    it(`${file}: the common outline (${OUTLINE.length} sections, in order), then any others`, () => {
      const sections = headings(readFileSync(join(ROOT, file), 'utf8'), 3);
      expect(sections.slice(0, OUTLINE.length)).toEqual(OUTLINE);
      // an outline heading appears once: no second "Limits" further down
      for (const h of OUTLINE)
        expect(
          sections.filter((s) => s === h),
          h,
        ).toHaveLength(1);
    });
  }
});
