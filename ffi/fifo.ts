// mkfifo(3) through libc; node:fs has no way to create a FIFO.
import { cString, libc, sysError } from "./libc.ts";

const EEXIST = 17;

/** Creates a FIFO; false when something already exists at `path`. Other failures throw a SysError. */
export function makeFifo(path: string, mode: number): boolean {
  if (libc().mkfifo(cString(path), mode) === 0) return true;
  const err = sysError("mkfifo", path);
  if (err.errno === EEXIST) return false;
  throw err;
}
