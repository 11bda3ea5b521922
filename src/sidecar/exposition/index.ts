// The exposition core of `promux sidecar`: parse every target's body, merge, write one exposition.
export {
  DROP_REASONS, DropCounter, EXEMPLAR_DROP_REASONS, targetKeyOf, targetLabelNames, targetLabels, type DropReason, type ExemplarDropReason,
  type TargetKey,
} from './drops.ts';
export { BodyParser, ExpositionError, formatOfContentType, freeNow, freeScratch, type ParsedBody } from './parse.ts';
export { freePieces, mergeStreamed, mergeTargets, recyclePiece, wholeAnswer } from './merge.ts';
export { loadProtobuf, mergeAnyFormat } from './any-format.ts';
export { isProtobufContentType } from './content-type.ts';
export type * from './types.ts';
