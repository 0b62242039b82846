/** What the primary and its submission workers tell each other over the cluster IPC channel. */

export type ToWorker =
  /** The session ticket key (base64), at start and at each rotation. */
  | { t: 'tickets'; keys: string }
  /** SIGHUP: re-read the config file and the certificates. */
  | { t: 'reload' }
  /** SIGTERM: drain the sessions, the listeners still answering 421, then say `drained`. */
  | { t: 'stop' }
  /** Every worker has drained: close the listeners and storage, exit 0. */
  | { t: 'exit' };

export type FromWorker =
  /** Sent once the worker listens for messages; the primary answers with the ticket key. */
  | { t: 'hello' }
  | { t: 'listening'; ports: Record<string, number> }
  /** After `stop`: no session is left in a transaction. */
  | { t: 'drained' }
  /** The worker cannot start (a listener cannot bind): the relay stops with this line. */
  | { t: 'fatal'; message: string }
  /** A message was committed: wake the delivery loop, count it. */
  | { t: 'queued' }
  | { t: 'refused'; code: number; message: string; subject?: string }
  | { t: 'login-failed' }
  | { t: 'session'; listener: string };

/**
 * `workers: auto` leaves one core to the primary (delivery, the HTTP API, and the thread pool
 * that signs and fsyncs) and gives each other core a worker; on two cores that is the relay in
 * one process, which the benchmark measured faster there than two workers. 1 is one process.
 */
export function workerCount(setting: 'auto' | number, cores: number): number {
  return setting === 'auto' ? Math.max(1, cores - 1) : setting;
}
