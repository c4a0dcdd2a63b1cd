/** Entry point of a render worker (src/render/workers.ts): paints and encodes the maps it is sent. */
import { parentPort } from 'node:worker_threads';
import { paintAndCut, paintAndEncode, type LayerData, type PaintOptions, type TileCut } from './draw.js';
import { oneAtATime } from './native-memory.js';
import { ownBuffer } from './workers.js';

interface Job {
  id: number;
  layers: LayerData[];
  o: PaintOptions;
  cut?: TileCut;
  timed: boolean;
}

async function draw(m: Job): Promise<void> {
  const timings: Record<string, number> | undefined = m.timed ? {} : undefined;
  try {
    if (m.cut) {
      // a metatile: its tiles' PNGs; a PNG with an ArrayBuffer of its own is handed over, not copied
      // (a small one lives in Node's shared pool slab, which must stay here: it is copied)
      const bufs = paintAndCut(m.layers, m.o, m.cut, timings);
      const own = bufs.map(ownBuffer).filter((b): b is ArrayBuffer => b !== null);
      parentPort?.postMessage({ id: m.id, bufs, timings }, own);
      return;
    }
    const buf = await paintAndEncode(m.layers, m.o, timings);
    parentPort?.postMessage({ id: m.id, buf, timings });
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: (e as Error)?.message ?? String(e) });
  }
}

// one map at a time, the event loop turning between maps: the last map's Skia memory is freed
// (its wrappers' finalizers run from setImmediate) before the next map draws (src/render/native-memory.ts)
parentPort?.on('message', oneAtATime(draw));
