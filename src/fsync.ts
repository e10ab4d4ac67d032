import { open } from 'node:fs/promises';

/** fsync of a file or a folder (a rename is durable once its folder is synced). */
export async function fsyncPath(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
