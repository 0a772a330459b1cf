#!/usr/bin/env node
/**
 * The `cloudmom` command (package.json `bin`). See docs/cli.md, or `cloudmom --help`.
 * Ctrl-C once: the command stops at the next safe point (a redrive finishes the batch in hand
 * and gives back the rest); twice: exits at once.
 */
import { run } from './run.ts';

const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
});
process.on('SIGTERM', () => interrupt.abort());
const code = await run(process.argv.slice(2), process, interrupt.signal);
// SDK clients may keep sockets open: the command is done, so is the process.
process.exit(code);
