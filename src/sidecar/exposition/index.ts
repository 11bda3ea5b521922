// The exposition core of `promux sidecar`: parse every target's body, merge, write one exposition.
export { DROP_REASONS, DropCounter, type DropReason } from './drops.ts';
export { BodyParser, ExpositionError, formatOfContentType, type ParsedBody } from './parse.ts';
export { mergeTargets, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE } from './merge.ts';
export type * from './types.ts';
