/**
 * Whether a process with this pid exists on this host. EPERM means it exists but belongs to
 * another user: alive. Pids are reused, so callers pair this with something the process holds
 * (its listening ports, its execution's owner record).
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
