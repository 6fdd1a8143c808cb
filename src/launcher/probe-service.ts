import { probeLauncher, probeProcess } from '../pool/process-identity.js';
import { Periodic } from '../shared/periodic.js';
import type { Service } from '../shared/service.js';
import type { RequestStore } from '../store/request-store.js';
import { announceRecovered, type RecoveryListeners } from './recovered-rows.js';

export interface ProbeResult {
  /** Rows of this host whose process was gone (or whose pid now names another process). */
  crashed: string[];
  /** Rows of other hosts whose launcher's lease ran out. */
  recovered: string[];
  /** Waiting rows whose try_limit left no try, ended FAILED. */
  ended: string[];
}

export interface ProbeServiceParams extends RecoveryListeners {
  store: RequestStore;
  host: string;
  /** This launcher's id: its own rows are tracked by its dispatcher, never probed. */
  launcherId: string;
  /** How often `start()` runs the probe (`probeIntervalMs`). */
  intervalMs: number;
  /** Something failed; the service goes on. */
  report(error: Error, during: string): void;
}

/**
 * The pid probe: reads the running rows of this host, checks each process, and marks the
 * ones that are gone CRASHED (which makes them runnable again while tries remain). A pid alone is
 * not trusted: the row's process identity must match the live process, so a reused pid does not
 * keep a dead task's row running. Rows whose launcher still runs on this host are left to it: it
 * sees its children exit and records them itself. Rows of other hosts are never judged by pid;
 * they are recovered only once their launcher's lease expires (checked here and, more often, with
 * every lease renewal). Rows a careless INSERT left with no try at all are ended here too.
 *
 * `start()` probes once (what a previous launcher on this host left behind is recovered before
 * anything is claimed), then every `intervalMs`; `runOnce()` is one probe, for tests and
 * `runner.probe()`.
 */
export class ProbeService implements Service {
  readonly #params: ProbeServiceParams;
  readonly #periodic: Periodic;

  constructor(params: ProbeServiceParams) {
    this.#params = params;
    this.#periodic = new Periodic({
      intervalMs: params.intervalMs,
      run: () => this.runOnce(),
      onError: (error) => params.report(error, 'probing'),
    });
  }

  async start(): Promise<void> {
    await this.runOnce().catch((error: Error) => this.#params.report(error, 'probing at start'));
    await this.#periodic.start();
  }

  stop(): Promise<void> {
    return this.#periodic.stop();
  }

  /** Probes the running rows of this host once, and says what it recovered. */
  async runOnce(): Promise<ProbeResult> {
    const { store, host, launcherId } = this.#params;
    const rows = await store.requestsListRunningOnHost({ host });
    const dead: { id: string; pid: number; processIdentity: string | null; text: string }[] = [];
    for (const row of rows) {
      if (row.launcherId === launcherId) continue;
      if (row.launcherId !== null && (await probeLauncher(row.launcherId)) === 'alive') continue;
      const liveness = await probeProcess(row.pid, row.processIdentity);
      if (liveness === 'alive') continue;
      const why = liveness === 'reused' ? 'its pid now belongs to another process' : 'the process is gone';
      dead.push({
        id: row.id,
        pid: row.pid,
        processIdentity: row.processIdentity,
        text: `pid probe: process ${row.pid} on host ${host} stopped without reporting (${why})`,
      });
    }
    const crashed = await store.requestsMarkCrashed({ host, rows: dead });
    const recovered = await store.requestsRecoverExpired({ host });
    const ended = await store.requestsEndHopeless();
    announceRecovered(this.#params, crashed, 'probe');
    announceRecovered(this.#params, recovered, 'lease');
    if (ended.length > 0) {
      this.#params.logger.warn('ended requests whose try_limit leaves no try', { ids: ended.join(',') });
    }
    return { crashed, recovered, ended };
  }
}
