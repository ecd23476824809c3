/**
 * A decoder for the part of OTLP's protobuf encoding the trace checks read: ExportTraceServiceRequest with its
 * resources, scopes, spans, attributes, events, links and status (opentelemetry/proto/trace/v1/trace.proto).
 * Written against the protobuf wire format; unknown fields are skipped, as protobuf requires.
 */
import type { OtlpJsonAnyValue, OtlpJsonKeyValue, OtlpJsonTraceRequest } from './otlp-types';

interface Field {
  no: number;
  wire: number;
  varint?: bigint;
  bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

/** Splits one message into its fields. */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos);
    pos = next;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, after] = readVarint(buf, pos);
      out.push({ no, wire, varint: value });
      pos = after;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      out.push({ no, wire, bytes: buf.subarray(pos, pos + size) });
      pos += size;
    } else if (wire === 2) {
      const [length, after] = readVarint(buf, pos);
      const end = after + Number(length);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ no, wire, bytes: buf.subarray(after, end) });
      pos = end;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const text = (f: Field) => (f.bytes ?? Buffer.alloc(0)).toString('utf8');
const hex = (f: Field) => (f.bytes ?? Buffer.alloc(0)).toString('hex');
const fixed64 = (f: Field) => (f.bytes ? f.bytes.readBigUInt64LE(0).toString() : '0');

function anyValue(buf: Buffer): OtlpJsonAnyValue {
  for (const f of fields(buf)) {
    switch (f.no) {
      case 1:
        return { stringValue: text(f) };
      case 2:
        return { boolValue: f.varint === 1n };
      case 3:
        return { intValue: BigInt.asIntN(64, f.varint ?? 0n).toString() };
      case 4:
        return { doubleValue: f.bytes ? f.bytes.readDoubleLE(0) : 0 };
      case 5:
        return { arrayValue: { values: fields(f.bytes!).filter((v) => v.no === 1).map((v) => anyValue(v.bytes!)) } };
      case 6:
        return { kvlistValue: { values: fields(f.bytes!).filter((v) => v.no === 1).map((v) => keyValue(v.bytes!)) } };
      case 7:
        return { bytesValue: f.bytes!.toString('base64') };
    }
  }
  return {};
}

function keyValue(buf: Buffer): OtlpJsonKeyValue {
  let key = '';
  let value: OtlpJsonAnyValue = {};
  for (const f of fields(buf)) {
    if (f.no === 1) key = text(f);
    else if (f.no === 2) value = anyValue(f.bytes!);
  }
  return { key, value };
}

function attributesOf(fs: Field[], no: number): OtlpJsonKeyValue[] {
  return fs.filter((f) => f.no === no).map((f) => keyValue(f.bytes!));
}

function span(buf: Buffer) {
  const fs = fields(buf);
  const one = (no: number) => fs.find((f) => f.no === no);
  const statusFields = one(15) ? fields(one(15)!.bytes!) : [];
  return {
    traceId: one(1) ? hex(one(1)!) : '',
    spanId: one(2) ? hex(one(2)!) : '',
    parentSpanId: one(4) ? hex(one(4)!) : '',
    name: one(5) ? text(one(5)!) : '',
    kind: Number(one(6)?.varint ?? 0n),
    startTimeUnixNano: one(7) ? fixed64(one(7)!) : '0',
    endTimeUnixNano: one(8) ? fixed64(one(8)!) : '0',
    attributes: attributesOf(fs, 9),
    events: fs
      .filter((f) => f.no === 11)
      .map((f) => {
        const ev = fields(f.bytes!);
        return { name: text(ev.find((e) => e.no === 2) ?? { no: 2, wire: 2 }), attributes: attributesOf(ev, 3) };
      }),
    links: fs
      .filter((f) => f.no === 13)
      .map((f) => {
        const link = fields(f.bytes!);
        return { traceId: hex(link.find((l) => l.no === 1)!), spanId: hex(link.find((l) => l.no === 2)!), attributes: attributesOf(link, 4) };
      }),
    status: {
      code: Number(statusFields.find((f) => f.no === 3)?.varint ?? 0n),
      message: statusFields.find((f) => f.no === 2) ? text(statusFields.find((f) => f.no === 2)!) : undefined,
    },
  };
}

/** Decodes a protobuf ExportTraceServiceRequest into the shape of its OTLP/JSON encoding. */
export function decodeTraceRequest(body: Buffer): OtlpJsonTraceRequest {
  return {
    resourceSpans: fields(body)
      .filter((f) => f.no === 1)
      .map((rs) => {
        const rsf = fields(rs.bytes!);
        const resource = rsf.find((f) => f.no === 1);
        return {
          resource: { attributes: resource ? attributesOf(fields(resource.bytes!), 1) : [] },
          scopeSpans: rsf
            .filter((f) => f.no === 2)
            .map((ss) => {
              const ssf = fields(ss.bytes!);
              const scope = ssf.find((f) => f.no === 1);
              const scopeName = scope ? fields(scope.bytes!).find((f) => f.no === 1) : undefined;
              return { scope: { name: scopeName ? text(scopeName) : '' }, spans: ssf.filter((f) => f.no === 2).map((s) => span(s.bytes!)) };
            }),
        };
      }),
  };
}
