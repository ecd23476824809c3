/** The OTLP/JSON shapes of a trace export (what the JSON exporter sends; the protobuf decoder produces the same). */

/** An attribute value. */
export interface OtlpJsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: OtlpJsonAnyValue[] };
  kvlistValue?: { values?: OtlpJsonKeyValue[] };
  bytesValue?: string;
}

/** An attribute. */
export interface OtlpJsonKeyValue {
  key: string;
  value: OtlpJsonAnyValue;
}

/** One span as exported. */
export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: OtlpJsonKeyValue[];
  events?: Array<{ name: string; attributes?: OtlpJsonKeyValue[] }>;
  links?: Array<{ traceId: string; spanId: string; attributes?: OtlpJsonKeyValue[] }>;
  status?: { code?: number; message?: string };
}

/** An ExportTraceServiceRequest. */
export interface OtlpJsonTraceRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpJsonKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpJsonSpan[] }>;
  }>;
}
