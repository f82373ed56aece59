import { type FeatureRefsRequest, resolveFeatureRefs } from "../registry/feature-refs.ts";
import type { CompiledFeature, CompiledView, RegistrySnapshot } from "../registry/snapshot.ts";

/** The features asked of one view, in the order asked. */
export interface ViewRequest {
  view: CompiledView;
  features: CompiledFeature[];
}

export interface FeatureSelection {
  /** One entry per view, in the order views first appear in the request. */
  views: ViewRequest[];
  /** Output columns, in request order: `feature` or `view__feature`. */
  columns: { view: CompiledView; feature: CompiledFeature; name: string }[];
}

/**
 * A request's features (resolved by the registry's one resolver, as online lookups resolve them), grouped by view for
 * the offline reads. Offline-only views are allowed: training data may come from views that are never served online.
 */
export function selectFeatures(snap: RegistrySnapshot, req: FeatureRefsRequest): FeatureSelection {
  const columns = resolveFeatureRefs(snap, req, { online: false });
  const byView = new Map<string, ViewRequest>();
  for (const { view, feature } of columns) {
    let vr = byView.get(view.name);
    if (!vr) {
      vr = { view, features: [] };
      byView.set(view.name, vr);
    }
    vr.features.push(feature);
  }
  return { views: [...byView.values()], columns };
}
