/**
 * Global setup of the `gcp` test project: builds (once, cached) and starts pstest on
 * 127.0.0.1, or uses `PUBSUB_EMULATOR_HOST` from the environment, and provides the endpoint
 * to tests as `inject('pubsubEmulatorHost')` (`host:port`).
 */
import type { TestProject } from 'vitest/node';
import { startPstest } from './pstest.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pubsubEmulatorHost: string;
  }
}

export default async function setup(project: TestProject) {
  // The Google auth library probes the GCE metadata server (a non-loopback address) even for
  // an emulator; tests reach nothing but loopback.
  process.env.METADATA_SERVER_DETECTION = 'none';
  const peer = await startPstest();
  project.provide('pubsubEmulatorHost', peer.endpoint);
  return async () => {
    await peer.stop();
  };
}
