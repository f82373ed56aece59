import { invalid } from "../errors.ts";
import type { CompiledFeature, CompiledView, RegistrySnapshot } from "./snapshot.ts";

/** What a lookup or a training-set request names: `"view:feature"` references or a feature service. */
export interface FeatureRefsRequest {
  features?: readonly string[] | null | undefined;
  feature_service?: string | null | undefined;
  /** Name output columns `view__feature` rather than `feature`. */
  full_feature_names?: boolean | null | undefined;
}

/** One requested feature and the name of its output column. */
export interface ResolvedRef {
  view: CompiledView;
  feature: CompiledFeature;
  /** `feature`, or `view__feature` with full_feature_names. */
  name: string;
}

/**
 * Resolves a request's features, in request order, for online lookups and offline reads alike, so both accept the same
 * references and refuse the rest with the same 400s: a reference is exactly `view:feature` (one colon, both sides
 * non-empty); every name must exist in the snapshot; no two features may share an output column. With `online`, every
 * view must also be served online.
 */
export function resolveFeatureRefs(
  snapshot: RegistrySnapshot,
  req: FeatureRefsRequest,
  opts: { online: boolean },
): ResolvedRef[] {
  const hasFeatures = req.features !== undefined && req.features !== null;
  const hasService = req.feature_service !== undefined && req.feature_service !== null;
  if (hasFeatures && hasService) throw invalid("give either features or feature_service, not both");
  if (!hasFeatures && !hasService) throw invalid('give features ("view:feature" names) or a feature_service');
  const pairs: { view: CompiledView; feature: CompiledFeature }[] = [];
  if (hasService) {
    const svc = snapshot.services.get(req.feature_service!);
    if (!svc)
      throw invalid(
        `feature_service: unknown feature service "${req.feature_service}" in project ${snapshot.project}`,
        [{ path: "feature_service", message: "unknown feature service" }],
      );
    pairs.push(...svc.features);
  } else {
    const refs = req.features!;
    if (refs.length === 0)
      throw invalid("features: give at least one feature", [{ path: "features", message: "empty" }]);
    refs.forEach((ref, i) => {
      const path = `features[${i}]`;
      const colon = ref.indexOf(":");
      if (colon <= 0 || colon === ref.length - 1 || ref.indexOf(":", colon + 1) !== -1)
        throw invalid(`${path}: "${ref}" is not a feature reference ("view:feature")`, [
          { path, message: "bad reference" },
        ]);
      const viewName = ref.slice(0, colon);
      const featureName = ref.slice(colon + 1);
      const view = snapshot.views.get(viewName);
      if (!view)
        throw invalid(`${path}: unknown feature view "${viewName}" in project ${snapshot.project}`, [
          { path, message: "unknown feature view" },
        ]);
      const feature = view.featureByName.get(featureName);
      if (!feature)
        throw invalid(`${path}: feature view ${viewName} has no feature "${featureName}"`, [
          { path, message: "unknown feature" },
        ]);
      pairs.push({ view, feature });
    });
  }
  const full = req.full_feature_names === true;
  const seen = new Map<string, string>();
  const out: ResolvedRef[] = [];
  for (const { view, feature } of pairs) {
    if (opts.online && !view.online)
      throw invalid(`feature view ${view.name} is not served online (online: false)`, [
        { path: "features", message: `${view.name} is offline only` },
      ]);
    const name = full ? `${view.name}__${feature.name}` : feature.name;
    const ref = `${view.name}:${feature.name}`;
    const prev = seen.get(name);
    if (prev !== undefined) {
      throw invalid(
        prev === ref
          ? `feature ${ref} is requested twice`
          : `feature name collision: ${prev} and ${ref} are both named "${name}"; set full_feature_names: true`,
        [{ path: "features", message: `duplicate output name ${name}` }],
      );
    }
    seen.set(name, ref);
    out.push({ view, feature, name });
  }
  return out;
}
