import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Readiness } from './health.js';
import { BasicAuth, type WebConfig } from './webConfig.js';

/** What the endpoints answer with; the daemon wires them to Metrics, DaemonStatus and the status page. */
export interface Endpoints {
  /** GET /metrics: the Prometheus exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** GET /readyz: 200 when ready, 503 otherwise, with the checks as JSON. */
  readiness(): Promise<Readiness>;
  /** GET /: the status page, as HTML. */
  statusPage(): Promise<string>;
}

/** Open keep-alive connections (a Prometheus scraper keeps one) are closed after this long on stop. */
const STOP_GRACE_MS = 1000;

/**
 * The daemon's HTTP server on `metricsAddr` (node:http, no framework): /metrics, /healthz (the
 * process answers), /readyz and the status page at /. start() and stop() are idempotent; start()
 * fails when the address cannot be bound.
 */
export class HttpServer {
  private server: Server | undefined;
  private starting: Promise<void> | undefined;
  private readonly auth: BasicAuth;

  /** `web`: TLS and basic auth (webConfigFile); without it plain HTTP, no authentication. */
  constructor(private readonly addr: string, private readonly log: Logger, private readonly endpoints: Endpoints,
    private readonly web: WebConfig = { tls: undefined, users: new Map() }) {
    this.auth = new BasicAuth(web.users);
  }

  /** The bound address (its real port when configured as :0); undefined when not listening. */
  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? { host: (a as AddressInfo).address, port: (a as AddressInfo).port } : undefined;
  }

  start(): Promise<void> {
    this.starting ??= this.listen().catch((err: unknown) => {
      this.starting = undefined;
      this.server = undefined;
      throw err;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    await this.starting?.catch(() => undefined);
    this.server = undefined;
    this.starting = undefined;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    this.log.debug('HTTP server stopped');
  }

  private async listen(): Promise<void> {
    const { host, port } = parseHostPort(this.addr);
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => { void this.handle(req, res); };
    const server: Server = this.web.tls === undefined ? createServer(onRequest) : createTlsServer({ cert: this.web.tls.cert, key: this.web.tls.key }, onRequest);
    server.keepAliveTimeout = 65_000; // longer than a scrape interval, so a scraper's connection is reused
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw new Error(`cannot serve metrics on ${this.addr} (metricsAddr): ${(err as Error).message}`, { cause: err });
    });
    server.on('error', (err) => this.log.warn({ err }, 'HTTP server error'));
    this.log.info({ addr: `${formatHost(this.address!.host)}:${this.address!.port}`, tls: this.web.tls !== undefined, basic_auth: this.auth.enabled },
      'serving /metrics, /healthz, /readyz and the status page');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = req.url ?? '/';
    try {
      path = new URL(path, 'http://localhost').pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
        return;
      }
      // /healthz stays open: a liveness probe needs no credentials and learns nothing.
      if (path !== '/healthz' && this.auth.enabled && !(await this.auth.check(req.headers.authorization))) {
        send(req, res, 401, 'text/plain; charset=utf-8', 'unauthorized\n', { 'WWW-Authenticate': 'Basic realm="vinops-etl", charset="UTF-8"' });
        return;
      }
      switch (path) {
        case '/metrics': {
          const m = await this.endpoints.metrics();
          send(req, res, 200, m.contentType, m.body);
          return;
        }
        case '/healthz':
          send(req, res, 200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        case '/readyz': {
          const r = await this.endpoints.readiness();
          send(req, res, r.ready ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(r)}\n`);
          return;
        }
        case '/':
          send(req, res, 200, 'text/html; charset=utf-8', await this.endpoints.statusPage());
          return;
        default:
          send(req, res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz, /readyz or /\n');
      }
    } catch (err) {
      this.log.warn({ err, path }, 'HTTP request failed');
      if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string,
  headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:0` (config.ts has already checked the form). */
export function parseHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(i + 1)) };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
