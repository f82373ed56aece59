import { notFound } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { RegistryService } from "./service.ts";
import type { RegistrySnapshot } from "./snapshot.ts";

export interface SnapshotCacheOptions {
  registry: RegistryService;
  logger: Logger;
  /** How often to look for changes made by other processes (the CLI, other servers). */
  pollMs: number;
}

/**
 * The registry, in memory: lookups read snapshots from here and never query Postgres.
 * Refreshed by a cheap version poll (one small query for every project), and at once after a local apply.
 * When Postgres is down the last snapshots keep serving.
 */
export class SnapshotCache {
  private readonly snapshots = new Map<string, RegistrySnapshot>();
  private readonly loading = new Map<string, Promise<RegistrySnapshot>>();
  private timer: NodeJS.Timeout | undefined;
  private lastPollOk = 0;
  lastError: string | undefined;

  constructor(private readonly opts: SnapshotCacheOptions) {}

  /** The snapshot in memory, if loaded. */
  peek(project: string): RegistrySnapshot | undefined {
    return this.snapshots.get(project);
  }

  /** The snapshot, loading it the first time a project is asked for. */
  async get(project: string): Promise<RegistrySnapshot> {
    const s = this.snapshots.get(project);
    if (s) return s;
    return this.reload(project);
  }

  /** The snapshot of a project that has been applied at least once; an unknown project is a not-found error. */
  async getExisting(project: string): Promise<RegistrySnapshot> {
    const s = await this.get(project);
    if (s.version === 0) throw notFound(`project ${project} not found (nothing has been applied to it)`);
    return s;
  }

  /** Loads a project's snapshot now (after an apply, or when the poll saw a new version). */
  reload(project: string): Promise<RegistrySnapshot> {
    const pending = this.loading.get(project);
    if (pending) return pending;
    const p = this.opts.registry
      .loadSnapshot(project)
      .then((snap) => {
        const cur = this.snapshots.get(project);
        if (!cur || cur.version <= snap.version) this.snapshots.set(project, snap);
        this.lastPollOk = Date.now();
        return this.snapshots.get(project)!;
      })
      .finally(() => this.loading.delete(project));
    this.loading.set(project, p);
    return p;
  }

  /** One poll: reloads projects whose version moved. */
  async poll(): Promise<void> {
    try {
      const versions = await this.opts.registry.projectVersions();
      this.lastPollOk = Date.now();
      this.lastError = undefined;
      await Promise.all(
        [...this.snapshots.values()]
          .filter((s) => (versions.get(s.project) ?? 0) !== s.version)
          .map((s) => this.reload(s.project)),
      );
    } catch (e) {
      this.lastError = (e as Error).message;
      this.opts.logger.warn({ err: this.lastError }, "registry poll failed; serving the last snapshot");
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Seconds since the registry was last read successfully. */
  ageSeconds(): number {
    return this.lastPollOk ? (Date.now() - this.lastPollOk) / 1000 : Number.POSITIVE_INFINITY;
  }
}
