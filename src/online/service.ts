import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import type { OnlineKv } from "./kv.ts";
import { lastPushEntry, lastPushKey, readLastPush } from "./last-push.ts";
import { lookupBytes } from "./lookup.ts";
import type { OnlineFeaturesRequest, OnlineReadOptions, OnlineStore, OnlineWriteRow, WriteResult } from "./store.ts";
import { writeRows } from "./write.ts";

/**
 * The online store, written once over a key-value backend: writes encode rows (write.ts), lookups build their answer
 * as bytes from the stored fragments (lookup.ts), after resolving the request's features once per registry version
 * (lookup-plan.ts).
 */
export class KvOnlineStore implements OnlineStore {
  constructor(
    readonly kv: OnlineKv,
    readonly prefix: string,
  ) {}

  write(view: CompiledView, rows: OnlineWriteRow[]): Promise<WriteResult> {
    return writeRows(this.kv, this.prefix, view, rows);
  }

  async getOnlineFeatures(
    snapshot: RegistrySnapshot,
    req: OnlineFeaturesRequest,
    opts: OnlineReadOptions,
  ): Promise<string> {
    return (await this.getOnlineFeaturesBytes(snapshot, req, opts)).toString("utf8");
  }

  getOnlineFeaturesBytes(
    snapshot: RegistrySnapshot,
    req: OnlineFeaturesRequest,
    opts: OnlineReadOptions,
  ): Promise<Buffer> {
    return lookupBytes(this.kv, this.prefix, snapshot, req, opts);
  }

  async recordPush(pushes: { view: CompiledView; eventTs: number }[]): Promise<void> {
    if (pushes.length === 0) return;
    await this.kv.putIfNewer(
      pushes.map((p) => lastPushEntry(this.prefix, p.view.project, p.view.name, Math.round(p.eventTs))),
    );
  }

  async lastPushes(project: string, views: string[]): Promise<(number | null)[]> {
    if (views.length === 0) return [];
    const values = await this.kv.getMany(views.map((v) => lastPushKey(this.prefix, project, v)));
    return values.map(readLastPush);
  }

  ping(): Promise<void> {
    return this.kv.ping();
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
