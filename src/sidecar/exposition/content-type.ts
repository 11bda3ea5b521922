// The protobuf exposition's media type, known to the lean path without loading the protobuf code.

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.google.protobuf';

/** The Content-Type names the protobuf exposition (delimited MetricFamily messages). */
export function isProtobufContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';', 1)[0]!.trim().toLowerCase() === PROTOBUF_MEDIA_TYPE;
}
