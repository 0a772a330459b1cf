/**
 * What every chaos run must show (test/chaos/harness.ts): nothing lost, each consumer killed
 * and restarted as scheduled, the queue empty, exactly the poison messages dead-lettered, each
 * with the handler's error as its reason, and no message both handled and dead-lettered.
 * Dead-letter copies may repeat (copy then ack is not atomic): they are counted, not refused.
 */
import { expect } from 'vitest';
import { type ChaosResult, poison } from './harness.ts';

export function expectNothingLost(r: ChaosResult, total: number, kills = 3): void {
  expect(r.lost).toEqual([]);
  expect(r.kills).toBe(kills);
  expect(r.restarts).toBe(kills);
  expect(r.queueDepth).toBe(0);
  const expectedDead = Array.from({ length: total }, (_, n) => n).filter(poison);
  const dead = [...new Set(r.deadLetterRecords.map((d) => d.n))].sort((a, b) => a - b);
  expect(dead).toEqual(expectedDead);
  for (const d of r.deadLetterRecords) {
    expect(d.reason).toBe('handler-failed');
    expect(d.description).toMatch(/poison \d+/);
  }
  expect(r.handledAndDead).toBe(0);
}
