// The protobuf exposition, loaded only once a scraper or a target speaks it (see any-format.ts).
export { ProtobufError } from './codec.ts';
export { mergeProtobuf } from './merge.ts';
export { protobufToOpenMetrics } from './to-openmetrics.ts';
