/**
 * The CLI's progress bar as a terminal shows it: the bin runs in a tmux pane (a real TTY,
 * 120×30) publishing JSON lines in bulk; the captured pane must hold the drawn bar at 100 %
 * with its counts, and the final count line. Skipped, saying why, only when tmux is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const TMUX = ['/usr/bin/tmux', 'tmux'].find((t) => spawnSync(t, ['-V']).status === 0);

describe.skipIf(!TMUX)(
  `the progress bar in a terminal (${TMUX ?? 'tmux is not installed: skipped'})`,
  () => {
    it('draws the bar and the final counts of a bulk publish', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cli-tmux-'));
      const lines = join(dir, 'orders.jsonl');
      writeFileSync(
        lines,
        Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ i })).join('\n'),
      );
      const session = `cloudmom-${process.pid}`;
      const node = join(ROOT, 'node_modules/.bin/node');
      const cmd = `${node} --conditions=source ${join(ROOT, 'src/cli/main.ts')} publish memory://orders order.created @${lines} --lines; echo "exit=$?"; sleep 30`;
      execFileSync(TMUX!, ['new-session', '-d', '-s', session, '-x', '120', '-y', '30', cmd], {
        cwd: ROOT,
      });
      try {
        let pane = '';
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline && !pane.includes('exit=')) {
          await new Promise((r) => setTimeout(r, 200));
          pane = execFileSync(TMUX!, ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
        }
        expect(pane).toContain('exit=0');
        expect(pane).toMatch(
          /publish \[█{30}\] 100% \| 20000\/20000 \| published 20000 failed 0 \| \d+s/,
        );
        expect(pane).toMatch(/^published 20000, failed 0 \(\d+\.\d s\)$/m);
      } finally {
        spawnSync(TMUX!, ['kill-session', '-t', session]);
      }
    });
  },
);
