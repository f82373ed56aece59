import { type ResolvedRef, resolveFeatureRefs } from "../registry/feature-refs.ts";
import type { CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";
import type { OnlineFeaturesRequest } from "./store.ts";

export interface ResolvedFeature extends ResolvedRef {
  /** Index of the view in the request's view list. */
  viewIndex: number;
}

/** The request's features (see resolveFeatureRefs), each with the index of its view among the views read. */
function resolveFeatures(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest): ResolvedFeature[] {
  const viewIndex = new Map<CompiledView, number>();
  return resolveFeatureRefs(snapshot, req, { online: true }).map((f) => {
    let vi = viewIndex.get(f.view);
    if (vi === undefined) {
      vi = viewIndex.size;
      viewIndex.set(f.view, vi);
    }
    return { ...f, viewIndex: vi };
  });
}

export interface ResolvedLookup {
  features: ResolvedFeature[];
  /** The views read, in the order of `ResolvedFeature.viewIndex`. */
  views: CompiledView[];
  /** The features' output names as JSON strings, comma-separated. */
  featureNamesJson: string;
  /** Features requested of each view, in the order of `views`: each entity row serves that many of its values. */
  perView: Int32Array;
}

/**
 * Resolved feature lists by snapshot and request: model servers send the same few lists again and again, and a
 * snapshot never changes, so each list is checked once per registry version. Only lists that resolved are kept.
 */
const lookupCache = new WeakMap<RegistrySnapshot, Map<string, ResolvedLookup>>();
const LOOKUP_CACHE_MAX = 1000;

export function resolveLookup(snapshot: RegistrySnapshot, req: OnlineFeaturesRequest): ResolvedLookup {
  const full = req.full_feature_names === true ? "1" : "0";
  let cacheKey: string | undefined;
  // The count is part of the key: a valid reference holds no newline, so a list joined with newlines only collides
  // with a list of another length.
  if (Array.isArray(req.features) && (req.feature_service === undefined || req.feature_service === null))
    cacheKey = `f${full}${req.features.length}\n${req.features.join("\n")}`;
  else if (typeof req.feature_service === "string" && (req.features === undefined || req.features === null))
    cacheKey = `s${full}${req.feature_service}`;
  let cache = lookupCache.get(snapshot);
  const hit = cacheKey === undefined ? undefined : cache?.get(cacheKey);
  if (hit) return hit;
  const features = resolveFeatures(snapshot, req);
  const views: CompiledView[] = [];
  for (const f of features) views[f.viewIndex] = f.view;
  const perView = new Int32Array(views.length);
  for (const f of features) perView[f.viewIndex]!++;
  const lookup = {
    features,
    views,
    featureNamesJson: features.map((f) => JSON.stringify(f.name)).join(","),
    perView,
  };
  if (cacheKey !== undefined) {
    if (!cache) {
      cache = new Map();
      lookupCache.set(snapshot, cache);
    }
    if (cache.size >= LOOKUP_CACHE_MAX) cache.clear();
    cache.set(cacheKey, lookup);
  }
  return lookup;
}
