/**
 * Attempt jobs for the pool tests: a fixture task resolved by the real registry, its options as
 * YAML text exactly as a row would carry them.
 */
import { fileURLToPath } from 'node:url';
import { stringifyOptions } from '../../dist/tasks/options.js';
import { TaskRegistry } from '../../dist/tasks/registry.js';
import type { AttemptJob } from '../../dist/pool/attempt.js';

export const fixturesDir = fileURLToPath(new URL('../fixtures/tasks/', import.meta.url));
const registry = new TaskRegistry(fixturesDir);
let nextId = 1;

export interface JobParams {
  /** YAML text as stored in a row; overrides `options`. */
  optionsYaml?: string | null;
  tries?: number;
  tryLimit?: number;
  maxOptionsBytes?: number;
  maxResultBytes?: number;
}

export async function jobFor(
  taskClassName: string,
  options: unknown = {},
  params: JobParams = {},
): Promise<AttemptJob> {
  return {
    request: {
      id: String(nextId++),
      taskClassName,
      tries: params.tries ?? 1,
      tryLimit: params.tryLimit ?? 5,
      queue: 'default',
      priority: 0,
      createdAt: new Date().toISOString(),
    },
    file: await registry.resolve(taskClassName),
    options: params.optionsYaml !== undefined ? params.optionsYaml : stringifyOptions(options, 1024 * 1024),
    maxOptionsBytes: params.maxOptionsBytes ?? 1024 * 1024,
    maxResultBytes: params.maxResultBytes ?? 1024 * 1024,
  };
}

/** The child environment every test uses: small, so children start fast. */
export const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
