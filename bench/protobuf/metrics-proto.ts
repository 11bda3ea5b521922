// io/prometheus/client/metrics.proto as Prometheus 3 defines it (field numbers and types of
// client_model's file), for the libraries bench/protobuf.ts compares: as .proto text for protobufjs,
// and as a FileDescriptorProto for @bufbuild/protobuf (no code generator runs here).
import { create } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as Type, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';

type Field = [name: string, number: number, type: 'double' | 'uint64' | 'int64' | 'int32' | 'uint32' | 'sint32' | 'sint64' | 'string' | string, repeated?: boolean];

export const MESSAGES: Record<string, Field[]> = {
  LabelPair: [['name', 1, 'string'], ['value', 2, 'string']],
  Gauge: [['value', 1, 'double']],
  Counter: [['value', 1, 'double'], ['exemplar', 2, '.io.prometheus.client.Exemplar'], ['created_timestamp', 3, '.google.protobuf.Timestamp']],
  Quantile: [['quantile', 1, 'double'], ['value', 2, 'double']],
  Summary: [['sample_count', 1, 'uint64'], ['sample_sum', 2, 'double'], ['quantile', 3, '.io.prometheus.client.Quantile', true], ['created_timestamp', 4, '.google.protobuf.Timestamp']],
  Untyped: [['value', 1, 'double']],
  Histogram: [
    ['sample_count', 1, 'uint64'], ['sample_count_float', 4, 'double'], ['sample_sum', 2, 'double'], ['bucket', 3, '.io.prometheus.client.Bucket', true],
    ['created_timestamp', 15, '.google.protobuf.Timestamp'], ['schema', 5, 'sint32'], ['zero_threshold', 6, 'double'], ['zero_count', 7, 'uint64'],
    ['zero_count_float', 8, 'double'], ['negative_span', 9, '.io.prometheus.client.BucketSpan', true], ['negative_delta', 10, 'sint64', true],
    ['negative_count', 11, 'double', true], ['positive_span', 12, '.io.prometheus.client.BucketSpan', true], ['positive_delta', 13, 'sint64', true],
    ['positive_count', 14, 'double', true], ['exemplars', 16, '.io.prometheus.client.Exemplar', true],
  ],
  Bucket: [['cumulative_count', 1, 'uint64'], ['cumulative_count_float', 4, 'double'], ['upper_bound', 2, 'double'], ['exemplar', 3, '.io.prometheus.client.Exemplar']],
  BucketSpan: [['offset', 1, 'sint32'], ['length', 2, 'uint32']],
  Exemplar: [['label', 1, '.io.prometheus.client.LabelPair', true], ['value', 2, 'double'], ['timestamp', 3, '.google.protobuf.Timestamp']],
  Metric: [
    ['label', 1, '.io.prometheus.client.LabelPair', true], ['gauge', 2, '.io.prometheus.client.Gauge'], ['counter', 3, '.io.prometheus.client.Counter'],
    ['summary', 4, '.io.prometheus.client.Summary'], ['untyped', 5, '.io.prometheus.client.Untyped'], ['histogram', 7, '.io.prometheus.client.Histogram'],
    ['timestamp_ms', 6, 'int64'],
  ],
  MetricFamily: [['name', 1, 'string'], ['help', 2, 'string'], ['type', 3, '.io.prometheus.client.MetricType'], ['metric', 4, '.io.prometheus.client.Metric', true], ['unit', 5, 'string']],
};

const SCALARS: Record<string, Type> = {
  double: Type.DOUBLE, uint64: Type.UINT64, int64: Type.INT64, int32: Type.INT32, uint32: Type.UINT32, sint32: Type.SINT32, sint64: Type.SINT64, string: Type.STRING,
};

export function protoText(): string {
  const lines = ['syntax = "proto2";', 'package io.prometheus.client;', 'import "google/protobuf/timestamp.proto";',
    'enum MetricType { COUNTER = 0; GAUGE = 1; SUMMARY = 2; UNTYPED = 3; HISTOGRAM = 4; GAUGE_HISTOGRAM = 5; }'];
  for (const [name, fields] of Object.entries(MESSAGES)) {
    lines.push(`message ${name} {`);
    for (const [field, number, type, repeated] of fields) {
      lines.push(`  ${repeated ? 'repeated' : 'optional'} ${type.replace('.io.prometheus.client.', '').replace(/^\./, '')} ${field} = ${number}${repeated && type in SCALARS && type !== 'string' ? ' [packed = true]' : ''};`);
    }
    lines.push('}');
  }
  return lines.join('\n');
}

export function fileDescriptorProto(): ReturnType<typeof create<typeof FileDescriptorProtoSchema>> {
  return create(FileDescriptorProtoSchema, {
    name: 'io/prometheus/client/metrics.proto', package: 'io.prometheus.client', dependency: ['google/protobuf/timestamp.proto'], syntax: 'proto2',
    enumType: [{ name: 'MetricType', value: ['COUNTER', 'GAUGE', 'SUMMARY', 'UNTYPED', 'HISTOGRAM', 'GAUGE_HISTOGRAM'].map((name, number) => ({ name, number })) }],
    messageType: Object.entries(MESSAGES).map(([name, fields]) => ({
      name,
      field: fields.map(([field, number, type, repeated]) => ({
        name: field, number, label: repeated ? Label.REPEATED : Label.OPTIONAL,
        ...(type in SCALARS ? { type: SCALARS[type] } : { type: type.endsWith('MetricType') ? Type.ENUM : Type.MESSAGE, typeName: type }),
        ...(repeated && type in SCALARS && type !== 'string' ? { options: { packed: true } } : {}),
      })),
    })),
  });
}
