import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** A real S3-compatible server (s3rver) on a free loopback port, with one bucket; its credentials are S3RVER/S3RVER. */
export async function startS3(bucket: string): Promise<{ endpoint: string; port: number; close: () => Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 'vinops-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  return { endpoint: `http://127.0.0.1:${port}`, port, close: async () => { await server.close(); await rm(directory, { recursive: true, force: true }); } };
}

/**
 * A TCP proxy to port that cuts every connection once the client has sent `cutAfter` bytes: an
 * upload that fails half-way, for real.
 */
export async function startCuttingProxy(port: number, cutAfter: number): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    client.on('data', (d: Buffer) => {
      sent += d.length;
      if (sent > cutAfter) { client.destroy(); upstream.destroy(); return; }
      upstream.write(d);
    });
    upstream.pipe(client);
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as { port: number };
  return { endpoint: `http://127.0.0.1:${own}`, close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }) };
}
