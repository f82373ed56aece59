/**
 * Feature views' schedules (`materialization: { schedule: "<cron>" }`): every process that takes work looks, now and
 * then, for the latest tick of each schedule; the first to record that tick (JobStore.claimTick: a primary key) runs
 * `materialize-incremental` up to it, so a tick runs once across all processes. A view still being materialised when
 * its next tick comes skips that tick (the next run starts where the last ended, so nothing is lost).
 */
import cronParser from "cron-parser";
import { pgMessage } from "../db/errors.ts";
import { DomainError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { RegistryService } from "../registry/service.ts";
import type { CompiledView } from "../registry/snapshot.ts";
import type { SnapshotCache } from "../registry/snapshot-cache.ts";
import type { Materializer } from "./materialize.ts";

export interface SchedulerDeps {
  materializer: Materializer;
  registry: RegistryService;
  snapshots: SnapshotCache;
  logger: Logger;
  /** How often to look for due ticks. */
  pollMs: number;
  /** Hands a job run in this process (no queue) to whoever waits for it at shutdown. */
  track?: (work: Promise<unknown>) => void;
}

/** The latest tick of `cron` at or before `now` (UTC). */
export function latestTick(cron: string, now: Date): Date {
  // cron-parser's prev() is strictly before its start: start just after now, so a tick at now counts
  const it = cronParser.parseExpression(cron, { tz: "UTC", currentDate: new Date(now.getTime() + 1) });
  return it.prev().toDate();
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: SchedulerDeps) {}

  /**
   * A tick older than this when first seen is let go (no process was up at the time): the next one catches up, as an
   * incremental run starts where the last ended.
   */
  private get graceMs(): number {
    return Math.max(60_000, 3 * this.deps.pollMs);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.sweep());
    }, this.deps.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Starts the runs of every schedule whose latest tick nobody has taken yet. */
  async sweep(now = new Date()): Promise<void> {
    const { registry, snapshots, logger } = this.deps;
    try {
      for (const { name: project } of await registry.listProjects()) {
        if (this.stopped) return;
        const snap = await snapshots.get(project);
        for (const view of snap.views.values())
          if (view.online && view.materialization?.schedule) await this.runTick(view, now);
      }
    } catch (e) {
      logger.warn({ err: pgMessage(e) }, "schedule sweep failed; will retry");
    }
  }

  private async runTick(view: CompiledView, now: Date): Promise<void> {
    const { materializer, snapshots, logger } = this.deps;
    const tick = latestTick(view.materialization!.schedule!, now);
    if (now.getTime() - tick.getTime() > this.graceMs) return;
    if (!(await materializer.jobs.claimTick(view.project, view.name, tick, materializer.owner))) return;
    const log = { project: view.project, feature_view: view.name, tick: tick.toISOString() };
    const req = { kind: "incremental" as const, end: tick.toISOString(), views: [view.name] };
    const partitions = view.materialization?.partitions ?? 1;
    try {
      const snap = await snapshots.get(view.project);
      let jobId: string | undefined;
      if (materializer.hasQueue) jobId = (await materializer.enqueue(snap, req, partitions))[0]?.id;
      else {
        const { jobs, started } = await materializer.start(snap, req, { partitions });
        jobId = jobs[0]?.id;
        const work = Promise.all(started.map((j) => materializer.run(j)));
        this.deps.track?.(work);
        work.catch((e) => logger.error({ ...log, err: pgMessage(e) }, "scheduled materialisation failed"));
      }
      await materializer.jobs.recordTick(view.project, view.name, tick, { jobId, outcome: "started" });
      logger.info({ ...log, job: jobId }, "scheduled materialisation started");
    } catch (e) {
      const busy = e instanceof DomainError && e.code === "conflict";
      const outcome = busy ? `skipped: ${e.message}` : `failed: ${pgMessage(e)}`;
      await materializer.jobs
        .recordTick(view.project, view.name, tick, { outcome })
        .catch((err) => logger.warn({ ...log, err: pgMessage(err) }, "could not record a schedule tick"));
      if (busy) logger.info(log, "schedule tick skipped: the previous run of the view is still going");
      else logger.warn({ ...log, err: pgMessage(e) }, "scheduled materialisation could not start");
    }
  }
}
