/** The one fsync of a directory, so that a file created, renamed or deleted in it stays so (the WAL, restored stores). */
import { open } from 'node:fs/promises';

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
