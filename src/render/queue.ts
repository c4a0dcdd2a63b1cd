/** A bounded concurrency gate for renders: `max` at a time, `queue` waiting, the rest refused. */
export class QueueFull extends Error {
  constructor() {
    super('the server is busy rendering other maps; retry shortly');
    this.name = 'QueueFull';
  }
}

export class RenderGate {
  private running = 0;
  private waiting: (() => void)[] = [];
  constructor(
    readonly max: number,
    readonly queue: number,
  ) {}

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) {
      if (this.waiting.length >= this.queue) throw new QueueFull();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
