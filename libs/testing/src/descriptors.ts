/** Open file descriptors of the test process, for tests proving that a file is closed when it should be. */
import { readdirSync, readlinkSync } from 'node:fs';

/** How many of this process's descriptors are open on `file` (an absolute path), read from `/proc/self/fd`. */
export function descriptorsOn(file: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // closed while listed
    }
  }
  return count;
}
