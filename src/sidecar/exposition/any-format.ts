// The merge for any mix of target formats. Text and OpenMetrics go through merge.ts alone; the
// protobuf code (./protobuf/) is loaded only once a scraper asked for protobuf (loadProtobuf), so
// that a sidecar nobody asks for protobuf never loads it.

import { isProtobufContentType } from './content-type.ts';
import type { DropCounter } from './drops.ts';
import { mergeStreamed } from './merge.ts';
import type { AnyMergeOutput, FetchedTarget, MergeAnswer, MergeOptions } from './types.ts';

type ProtobufModule = typeof import('./protobuf/index.ts');
let protobuf: ProtobufModule | undefined;
let loading: Promise<ProtobufModule> | undefined;

/** Loads the protobuf code (once); call before fetching targets with protobuf asked for. */
export async function loadProtobuf(): Promise<void> {
  loading ??= import('./protobuf/index.ts');
  protobuf = await loading;
}

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/**
 * Protobuf when the scraper takes it and a target answered it; otherwise mergeStreamed's text or
 * OpenMetrics, protobuf targets converted to OpenMetrics first (their native histograms counted
 * `native_histogram_unsupported_by_scraper`).
 */
export function mergeAnyFormat(targets: FetchedTarget[], options: MergeOptions, drops: DropCounter): MergeAnswer | AnyMergeOutput {
  if (!targets.some((t) => t.body !== undefined && isProtobufContentType(t.contentType))) return mergeStreamed(targets, options, drops);
  if (protobuf !== undefined && options.accept.protobuf) return protobuf.mergeProtobuf(targets, options, drops);
  const converted = targets.map((target): FetchedTarget => {
    if (target.body === undefined || !isProtobufContentType(target.contentType)) return target;
    // A target answers protobuf only when asked, and it is asked only after loadProtobuf.
    if (protobuf === undefined) return { ...target, body: undefined, error: 'answered protobuf, which promux did not ask for' };
    try {
      const converted = protobuf.protobufToOpenMetrics(target.body);
      const counts = [
        ['duplicate_series', converted.duplicates], ['type_conflict', converted.typeConflicts], ['invalid_label', converted.invalidLabels],
        ['native_histogram_unsupported_by_scraper', converted.nativeDropped],
      ] as const;
      for (const [reason, n] of counts) if (n > 0) drops.add(target, reason, n);
      const body = converted.body;
      return { ...target, body, contentType: OPENMETRICS, parsed: undefined };
    } catch (e) {
      if (!(e instanceof protobuf.ProtobufError)) throw e;
      return { ...target, body: undefined, error: `invalid protobuf exposition: ${e.message}` };
    }
  });
  return mergeStreamed(converted, options, drops);
}
