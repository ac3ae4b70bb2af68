/**
 * Cross-reference checks on the models section that a schema cannot express:
 * providers and groups that exist, no group cycles (a cycle would make
 * decisions recurse forever), no groups nested deeper than MAX_GROUP_DEPTH,
 * route selectors that select something (by the rule routing applies at run
 * time: route-selector.ts), tiers present where the complexity strategy needs
 * them. One line per problem.
 */
import { selects, targetEntryId } from './route-selector.ts';
import { MAX_GROUP_DEPTH } from './routing-schema.ts';
import type { Config } from './schema.ts';

export function validateRouting(config: Config): string[] {
  const problems: string[] = [];
  for (const [modelName, model] of Object.entries(config.models)) {
    model.targets.forEach((target, index) => {
      const path = `models.${modelName}.targets.${index}`;
      if (target.group !== undefined) {
        if (!Object.hasOwn(config.models, target.group)) {
          problems.push(`${path}.group: unknown model '${target.group}'`);
        }
      } else if (target.provider !== undefined && !Object.hasOwn(config.providers, target.provider)) {
        problems.push(`${path}.provider: unknown provider '${target.provider}'`);
      }
    });
    model.routes.forEach((rule, index) => {
      for (const selector of rule.targets) {
        const named = model.targets.some((t) =>
          selects({ id: targetEntryId(t), group: t.group, tags: t.tags }, selector),
        );
        if (!named) {
          problems.push(`models.${modelName}.routes.${index}.targets: '${selector}' matches no target`);
        }
      }
    });
    if (model.strategy === 'complexity' && !model.targets.some((t) => t.tier !== undefined)) {
      problems.push(
        `models.${modelName}.strategy: complexity needs targets with a tier (small|medium|large)`,
      );
    }
    problems.push(...checkJudge(config, modelName));
  }
  const cycles = findGroupCycles(config);
  problems.push(...cycles);
  if (cycles.length === 0) problems.push(...findDeepGroups(config));
  return problems;
}

/**
 * A complexity judge is a model of this gateway, not the model it judges for,
 * and not one that asks a judge itself (its own call is never pre-judged).
 */
function checkJudge(config: Config, modelName: string): string[] {
  const judge = config.models[modelName]!.complexity.judge;
  if (judge === undefined) return [];
  const path = `models.${modelName}.complexity.judge.model`;
  const judgeModel = config.models[judge.model];
  if (!Object.hasOwn(config.models, judge.model) || judgeModel === undefined) {
    return [`${path}: '${judge.model}' is not a model of this gateway`];
  }
  if (judge.model === modelName) return [`${path}: a model cannot judge its own requests`];
  if (judgeModel.complexity.judge !== undefined) {
    return [`${path}: '${judge.model}' asks a judge itself; a judge must answer on its own`];
  }
  return [];
}

/** Depth-first search over group edges; reports each cycle once, as a path. */
function findGroupCycles(config: Config): string[] {
  const problems: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    const mark = state.get(name);
    if (mark === 'done') return;
    if (mark === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      problems.push(`models.${cycle[0]}: group cycle ${cycle.join(' -> ')}`);
      return;
    }
    const model = config.models[name];
    if (!model) return;
    state.set(name, 'visiting');
    stack.push(name);
    for (const target of model.targets) if (target.group !== undefined) visit(target.group);
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of Object.keys(config.models)) visit(name);
  return problems;
}

/** Models whose groups nest deeper than MAX_GROUP_DEPTH (run only once there is no cycle). */
function findDeepGroups(config: Config): string[] {
  const depths = new Map<string, number>();
  const depthOf = (name: string): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    let depth = 0;
    for (const target of config.models[name]?.targets ?? []) {
      if (target.group !== undefined && Object.hasOwn(config.models, target.group)) {
        depth = Math.max(depth, 1 + depthOf(target.group));
      }
    }
    depths.set(name, depth);
    return depth;
  };
  const problems: string[] = [];
  for (const name of Object.keys(config.models)) {
    const depth = depthOf(name);
    if (depth > MAX_GROUP_DEPTH) {
      problems.push(`models.${name}: groups nested ${depth} deep (at most ${MAX_GROUP_DEPTH})`);
    }
  }
  return problems;
}
