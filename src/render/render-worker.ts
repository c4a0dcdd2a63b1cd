/** Entry point of a render worker (src/render/workers.ts): paints and encodes the maps it is sent. */
import { parentPort } from 'node:worker_threads';
import { paintAndEncode, type LayerData, type PaintOptions } from './draw.js';

parentPort?.on('message', async (m: { id: number; layers: LayerData[]; o: PaintOptions; timed: boolean }) => {
  const timings: Record<string, number> | undefined = m.timed ? {} : undefined;
  try {
    const buf = await paintAndEncode(m.layers, m.o, timings);
    parentPort?.postMessage({ id: m.id, buf, timings });
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: (e as Error)?.message ?? String(e) });
  }
});
