// The protobuf exposition's media type, known to the lean path without loading the protobuf code.

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.google.protobuf';

/** A Content-Type's media type, without its parameters, lower case ('' when there is none). */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** The Content-Type names the protobuf exposition (delimited MetricFamily messages). */
export function isProtobufContentType(contentType: string | undefined): boolean {
  return mediaTypeOf(contentType) === PROTOBUF_MEDIA_TYPE;
}
