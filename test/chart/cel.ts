// The webhook's matchConditions evaluated as the API server does: a real CEL implementation
// (@bufbuild/cel: cel-spec conformant, RE2 regular expressions as in cel-go), the pod given as
// unstructured JSON of type dyn (what the API server's matchConditions see).
import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';

export interface MatchCondition {
  name: string;
  expression: string;
}

/** Whether the API server sends `pod` to the webhook: every condition true. An error throws (it would skip or refuse the pod). */
export type SendDecision = (pod: object) => { sent: boolean; failed: string[] };

export function matchConditionsEvaluator(conditions: readonly MatchCondition[]): SendDecision {
  const env = celEnv();
  const programs = conditions.map((c) => ({ name: c.name, run: plan(env, parse(c.expression)) }));
  return (pod) => {
    const failed: string[] = [];
    for (const { name, run } of programs) {
      const result = run({ object: pod as never });
      if (isCelError(result)) throw new Error(`matchCondition ${name} failed on ${JSON.stringify(pod)}: ${result.message}`);
      if (typeof result !== 'boolean') throw new Error(`matchCondition ${name} gave ${String(result)}, not a boolean`);
      if (!result) failed.push(name);
    }
    return { sent: failed.length === 0, failed };
  };
}
