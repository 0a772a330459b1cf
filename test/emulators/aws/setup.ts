/**
 * Global setup of the `aws` test project: starts moto once per run (or uses
 * `CLOUDMOM_AWS_ENDPOINT`) and provides its endpoint to tests as `inject('awsEndpoint')`; the
 * SDK environment (`AWS_ENDPOINT_URL`, dummy credentials, region) is set for child processes.
 */
import type { TestProject } from 'vitest/node';
import { startMoto } from './moto.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const moto = await startMoto();
  project.provide('awsEndpoint', moto.endpoint);
  return async () => {
    await moto.stop();
  };
}
