import { expect } from "vitest";
import { Job } from "../../src/http/routes/offline.ts";
import type { MaterializationJob } from "../../src/offline/job.ts";

/** JSON calls to a server process, and its job records in `project`. `url` is read at each call (started later). */
export function serverApi(url: () => string, project: string) {
  // biome-ignore lint/suspicious/noExplicitAny: tests read the answers they expect
  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${url()}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  }
  async function job(id: string): Promise<MaterializationJob> {
    const res = await api("GET", `/v1/projects/${project}/materialization-jobs/${id}`);
    expect(res.status).toBe(200);
    return Job.parse(res.body);
  }
  return { api, job };
}
