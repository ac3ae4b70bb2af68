/**
 * A chat model this gateway serves, as the complexity judge
 * (`models.<name>.complexity.judge.model`): the judge prompt goes through
 * the judge model's own routing (conditions, deactivation, ordering),
 * retries and breakers, and is billed like any call: one ledger row per
 * attempt, route `complexity-judge`, on the key whose request is judged (so
 * the key that causes the cost pays it and sees it in its usage; the master
 * key's, on no key). It is not limited by the key's model list: the gateway
 * asks on the request's behalf, as configured by its operator.
 */
import { GatewayError } from '../core/errors.ts';
import { estimatePromptTokens } from '../core/token-estimate.ts';
import { dispatchChat } from '../dispatch/dispatch.ts';
import type { JudgeAsk } from '../routing/complexity/judge.ts';
import type { GatewayContext } from './context.ts';
import { internalCallRecorder } from './internal-call-recorder.ts';

/** The ledger's route for the judge's calls. */
export const COMPLEXITY_JUDGE_ROUTE = 'complexity-judge';

export type JudgeContext = Pick<
  GatewayContext,
  'ledger' | 'metrics' | 'pricer' | 'resilience' | 'router' | 'models'
>;

/** `context` is read per call: the classifier is built with the router, before the context exists. */
export function servedJudge(context: () => JudgeContext, modelName: string): JudgeAsk {
  return async (judgeRequest, { caller, signal }) => {
    const gw = context();
    const route = gw.models.get(modelName);
    // Config validation has checked the name; a reload that removed it fails this judgement only.
    if (route === undefined) throw new GatewayError('model_not_found', `judge model '${modelName}' is gone`);
    const key = caller.key;
    const recorder = internalCallRecorder(gw, { route: COMPLEXITY_JUDGE_ROUTE, model: modelName, key });
    const request = { ...judgeRequest, model: modelName };
    try {
      const decision = gw.router.decide(route, request, caller);
      const { completion, attempt } = await dispatchChat(route, request, {
        signal,
        requestId: recorder.info.requestId,
        recorder,
        targets: decision.candidates,
        observer: gw.router,
        resilience: gw.resilience,
        estimatePromptTokens: () => estimatePromptTokens(request),
      });
      attempt.ok(completion.usage);
      recorder.finish(200);
      const content = completion.choices[0]?.message.content;
      return { text: typeof content === 'string' ? content : '', costMicros: recorder.costMicros };
    } catch (error) {
      recorder.finish(error instanceof GatewayError ? error.status : 500);
      throw error;
    }
  };
}
