/** The child process of load-process.ts: runs the one load it is sent, reports, exits. */
import { runConnectionPerMessage, runPooled } from './load.js';
import type { LoadSpec } from './load-process.js';
import { messageSource } from './messages.js';

process.once('message', (spec: LoadSpec) => {
  const source = messageSource(spec.size);
  const before = process.cpuUsage();
  const load = spec.kind === 'pooled' ? runPooled({ ...spec, source }) : runConnectionPerMessage({ ...spec, source });
  load.then(
    (result) => {
      const cpu = process.cpuUsage(before);
      // firstAt and lastAt as wall-clock times: this process's performance.now() starts at its own start.
      const wall = (at: number) => performance.timeOrigin + at;
      process.send!(
        { result: { ...result, firstAt: wall(result.firstAt), lastAt: wall(result.lastAt), cpuMs: (cpu.user + cpu.system) / 1000 } },
        () => process.exit(0),
      );
    },
    (err: Error) => process.send!({ error: err.message }, () => process.exit(1)),
  );
});
