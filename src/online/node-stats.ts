/**
 * Per-node counts of the online store's Redis commands: how many, how many failed, and the time they took. One record
 * per command sent to a node (a lookup's or a write batch's whole read or script), never per key. Plain numbers, so the
 * store knows nothing of Prometheus; src/http/metrics.ts reads them at scrape time.
 */
export interface NodeStat {
  /** `host:port`. */
  node: string;
  commands: number;
  errors: number;
  /** Sum of the commands' durations. */
  seconds: number;
}

export class NodeStats {
  private readonly byNode = new Map<string, NodeStat>();

  /** `startedMs`: performance.now() when the command was sent. */
  record(node: string, startedMs: number, ok: boolean): void {
    let s = this.byNode.get(node);
    if (!s) {
      // a cluster's nodes come and go with failovers; the set stays small (masters and replicas)
      if (this.byNode.size >= 256) this.byNode.clear();
      s = { node, commands: 0, errors: 0, seconds: 0 };
      this.byNode.set(node, s);
    }
    s.commands++;
    if (!ok) s.errors++;
    s.seconds += (performance.now() - startedMs) / 1000;
  }

  /** Times a command on `node`. */
  time<T>(node: string, p: Promise<T>): Promise<T> {
    const started = performance.now();
    return p.then(
      (v) => {
        this.record(node, started, true);
        return v;
      },
      (e) => {
        this.record(node, started, false);
        throw e;
      },
    );
  }

  snapshot(): NodeStat[] {
    return [...this.byNode.values()].map((s) => ({ ...s }));
  }
}
