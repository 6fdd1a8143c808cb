import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fixturesDir } from './jobs.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Whether these tests run as root: running children as another user needs it. */
export const asRoot = process.getuid?.() === 0;

/**
 * Whether `nobody` can read this checkout's built package and the fixture tasks. A checkout inside
 * root's home (mode 700) cannot be, and then the launcher rightly refuses `childUser: nobody`
 * (it checks this at start): the tests that run tasks as `nobody` need a checkout it can reach,
 * so they are skipped there, with the reason in their name.
 */
export const nobodyReachesCheckout =
  asRoot &&
  spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', `${repoRoot}dist/index.js`, '-a', '-x', fixturesDir], {
    stdio: 'ignore',
  }).status === 0;
