import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseTableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import { ConfigError } from '../errors.js';
import { listRecurring } from '../launcher/lifecycle-commands.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { Inspector } from '../store/inspector.js';
import { answer, statusOfError } from './dashboard-api.js';
import type { SqlDb } from '../store/database.js';

export interface DashboardOptions {
  /** The database, as a Kysely instance (the runner's `db`, or one the caller opened). */
  db: SqlDb;
  tableName?: string;
  /** Default 0: a port the system chooses (see `port` on the result). */
  port?: number;
  /** Default 127.0.0.1. Any other address needs `token`. */
  host?: string;
  /** Access token: required in every request (cookie from `/?token=…`, or `Authorization: Bearer`). */
  token?: string | null;
  /** No actions: retry, cancel and delete are refused and not shown. Default false. */
  readOnly?: boolean;
  /** A launcher whose heartbeat is older than this is not shown as alive. Default the default lease. */
  staleMs?: number;
  logger?: Logger;
}

export interface Dashboard {
  readonly port: number;
  /** Where to open it (with `?token=…` when a token is set). */
  readonly url: string;
  close(): Promise<void>;
}

const assetsDir = fileURLToPath(new URL('../../assets/dashboard/', import.meta.url));
const assetTypes: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};
const maxBodyBytes = 64 * 1024;
const cookieName = 'cwtr_dashboard';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, { ...securityHeaders, 'content-type': type, ...extra }).end(body);
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new ConfigError('body', `over ${maxBodyBytes} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size === 0) return resolve(null);
      try {
        const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve(
          typeof value === 'object' && value !== null && !Array.isArray(value)
            ? (value as Record<string, unknown>)
            : null,
        );
      } catch {
        reject(new ConfigError('body', 'must be JSON'));
      }
    });
    req.on('error', reject);
  });
}

/**
 * The web dashboard: a node:http server for the page (HTML, JS and CSS shipped in the package's
 * `assets/dashboard`, no build step, no CDN) and its JSON API, polled by the page once a second.
 *
 * Security, in the order a request meets it:
 * - Bound to 127.0.0.1 unless `host` says otherwise, and then only with an access `token`.
 * - The Host header must name this server (a loopback name when bound to loopback), so a page of
 *   another site cannot reach it through DNS rebinding.
 * - With a token, every request carries it: `/?token=…` sets an HttpOnly, SameSite=Strict cookie
 *   and redirects to `/`; scripts may send `Authorization: Bearer …`.
 * - Actions (POST) need the per-server CSRF token, which only the page (same origin) can read,
 *   in the `x-cw-csrf` header, and an Origin, when sent, equal to this server's.
 * - The page builds its DOM with textContent only, and the CSP allows no inline script, so a
 *   task name or a result holding HTML shows as text.
 *
 * @example
 * const dashboard = await startDashboard({ db: runner.db, port: 8080 });
 * console.log(dashboard.url);
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? null;
  if (token !== null && (typeof token !== 'string' || token.length < 16)) {
    throw new ConfigError('dashboard.token', 'must be a string of at least 16 characters');
  }
  if (!isLoopback(host) && token === null) {
    throw new ConfigError('dashboard.token', `is required when the dashboard is bound to ${host} (not loopback)`);
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new ConfigError('dashboard.port', `must be from 0 to 65535, got ${port}`);
  const readOnly = options.readOnly ?? false;
  const staleMs = options.staleMs ?? defaults.leaseMs;
  const logger = options.logger ?? silentLogger;
  const tableName = options.tableName ?? defaults.tableName;
  const inspector = new Inspector({ db: options.db, table: parseTableName(tableName) });
  const apiParams = { readOnly, staleMs, listRecurring: () => listRecurring(options.db, tableName) };
  const csrf = randomBytes(24).toString('base64url');
  const page = (await readFile(`${assetsDir}index.html`, 'utf8')).replace('__CSRF__', csrf);
  const assets = new Map<string, Buffer>();
  for (const name of Object.keys(assetTypes)) assets.set(name, await readFile(`${assetsDir}${name}`));
  let boundPort = port;

  const hostAllowed = (req: IncomingMessage): boolean => {
    const header = req.headers.host;
    if (header === undefined) return false;
    const name = header.replace(/:\d+$/, '').toLowerCase();
    const hostPort = /:(\d+)$/.exec(header)?.[1];
    if (hostPort !== undefined && Number(hostPort) !== boundPort) return false;
    // Bound to loopback: only loopback names, so a rebinding DNS name is refused. Elsewhere the
    // token is the guard and any name that reaches the address is accepted.
    return isLoopback(host) ? isLoopback(name) : true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req)) return send(res, 421, 'text/plain', 'unexpected Host header\n');
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const method = req.method ?? 'GET';
    if (token !== null) {
      const given = url.searchParams.get('token');
      if (method === 'GET' && url.pathname === '/' && given !== null) {
        if (!same(given, token)) return send(res, 401, 'text/plain', 'wrong token\n');
        return send(res, 303, 'text/plain', 'signed in\n', {
          location: '/',
          'set-cookie': `${cookieName}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
        });
      }
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? null;
      const presented = bearer ?? cookie(req, cookieName);
      if (presented === null || !same(presented, token)) {
        return send(res, 401, 'text/plain', 'access token required: open /?token=… or send Authorization: Bearer …\n');
      }
    }
    if (method === 'GET' && url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', page);
    const asset = /^\/assets\/([a-z]+\.(?:js|css))$/.exec(url.pathname)?.[1];
    if (method === 'GET' && asset !== undefined && assets.has(asset))
      return send(res, 200, assetTypes[asset]!, assets.get(asset)!);
    if (!url.pathname.startsWith('/api/')) return send(res, 404, 'text/plain', 'not found\n');
    if (method === 'POST') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) {
        return send(res, 403, 'application/json', JSON.stringify({ error: 'cross-origin request refused' }));
      }
      const presented = req.headers['x-cw-csrf'];
      if (typeof presented !== 'string' || !same(presented, csrf)) {
        return send(res, 403, 'application/json', JSON.stringify({ error: 'missing or wrong CSRF token' }));
      }
    }
    let result;
    try {
      const body = method === 'POST' ? await readBody(req) : null;
      result = await answer(inspector, { method, path: url.pathname, query: url.searchParams, body }, apiParams);
    } catch (error) {
      result = statusOfError(error);
      if (result.status === 500)
        logger.error('dashboard request failed', { path: url.pathname, error: (error as Error).message });
    }
    send(res, result.status, 'application/json', JSON.stringify(result.body));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      logger.error('dashboard request failed', { error: error.message });
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  boundPort = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    port: boundPort,
    url: `http://${shownHost}:${boundPort}/${token === null ? '' : `?token=${encodeURIComponent(token)}`}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
