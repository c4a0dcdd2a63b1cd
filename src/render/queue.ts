/** Render concurrency: the shared bounded gate (src/ops/gate.ts) with a render-specific message. */
import { Gate, ServerBusy } from '../ops/gate.js';

export { ServerBusy as QueueFull };

export class RenderGate extends Gate {
  constructor(max: number, queue: number, maxWaitMs = Number.POSITIVE_INFINITY, orderedPerSlot = 4) {
    super(max, queue, 'the server is busy rendering other maps; retry shortly', maxWaitMs, orderedPerSlot * max);
  }
}
