import { invalid } from "../errors.ts";
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
 * Resolves `features: ["view:feature", …]` or `feature_service` against a snapshot.
 * Unknown names and clashing output columns are 400s naming what is wrong.
 */
export function selectFeatures(
  snap: RegistrySnapshot,
  req: {
    features?: string[] | undefined;
    feature_service?: string | undefined;
    full_feature_names?: boolean | undefined;
  },
): FeatureSelection {
  const refs: { view: CompiledView; feature: CompiledFeature }[] = [];
  if (req.feature_service !== undefined) {
    if (req.features !== undefined) throw invalid("give either features or feature_service, not both");
    const svc = snap.services.get(req.feature_service);
    if (!svc) throw invalid(`unknown feature service ${req.feature_service} in project ${snap.project}`);
    refs.push(...svc.features);
  } else {
    if (!req.features || req.features.length === 0)
      throw invalid("features (a non-empty list of view:feature) or feature_service is required");
    req.features.forEach((ref, i) => {
      const sep = ref.indexOf(":");
      if (sep <= 0 || sep === ref.length - 1)
        throw invalid(`features[${i}]: "${ref}" is not a view:feature reference`, [
          { path: `features[${i}]`, message: "expected view:feature" },
        ]);
      const viewName = ref.slice(0, sep);
      const featName = ref.slice(sep + 1);
      const view = snap.views.get(viewName);
      if (!view)
        throw invalid(`features[${i}]: unknown feature view ${viewName} in project ${snap.project}`, [
          { path: `features[${i}]`, message: `unknown feature view ${viewName}` },
        ]);
      const feature = view.featureByName.get(featName);
      if (!feature)
        throw invalid(`features[${i}]: feature view ${viewName} has no feature ${featName}`, [
          { path: `features[${i}]`, message: `unknown feature ${featName}` },
        ]);
      refs.push({ view, feature });
    });
  }
  const byView = new Map<string, ViewRequest>();
  const columns: FeatureSelection["columns"] = [];
  const seen = new Set<string>();
  for (const { view, feature } of refs) {
    const name = req.full_feature_names ? `${view.name}__${feature.name}` : feature.name;
    if (seen.has(name)) {
      throw invalid(
        req.full_feature_names
          ? `feature ${view.name}:${feature.name} is requested twice`
          : `feature name ${name} is requested from more than one place; use full_feature_names: true`,
      );
    }
    seen.add(name);
    let vr = byView.get(view.name);
    if (!vr) {
      vr = { view, features: [] };
      byView.set(view.name, vr);
    }
    vr.features.push(feature);
    columns.push({ view, feature, name });
  }
  return { views: [...byView.values()], columns };
}
