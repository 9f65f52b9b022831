/**
 * A small ONNX graph writer over the vendored schema (scripts/onnx/onnx.proto) with protobufjs:
 * enough to state a model as nodes, initializers, inputs and outputs, and encode a ModelProto.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

const schema = protobuf.parse(readFileSync(new URL('./onnx/onnx.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
const ModelProto = schema.lookupType('onnx.ModelProto');

/** TensorProto.DataType values. */
export const OnnxType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
type ElemType = (typeof OnnxType)[keyof typeof OnnxType];

/** AttributeProto.AttributeType values, by the field they fill. */
const AttrType = { f: 1, i: 2, s: 3, floats: 6, ints: 7 } as const;
export type Attribute = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] };

interface Node {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: object[];
}

function valueInfo(name: string, elemType: ElemType, dims: readonly (number | string)[]): object {
  return {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

function elemTypeOf(data: Float32Array | Int32Array | BigInt64Array): ElemType {
  if (data instanceof Float32Array) return OnnxType.FLOAT;
  if (data instanceof Int32Array) return OnnxType.INT32;
  return OnnxType.INT64;
}

export class OnnxGraph {
  private readonly nodes: Node[] = [];
  private readonly initializers: object[] = [];
  private readonly inputs: object[] = [];
  private readonly outputs: object[] = [];
  private count = 0;

  constructor(private readonly name: string) {}

  input(name: string, elemType: ElemType, dims: readonly (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: ElemType, dims: readonly (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A constant tensor stored in the model (raw little-endian bytes). */
  initializer(name: string, dims: readonly number[], data: Float32Array | Int32Array | BigInt64Array): string {
    this.initializers.push({ name, dims: [...dims], data_type: elemTypeOf(data), raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  floats(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(`const_${this.count++}`, dims, Float32Array.from(values));
  }

  int64s(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer(`const_${this.count++}`, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Adds a node and returns its (first) output's name. */
  op(type: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, output?: string): string {
    const out = output ?? `${type.toLowerCase()}_${this.count++}`;
    const attribute = Object.entries(attributes).map(([name, value]) => {
      const field = Object.keys(value)[0] as keyof typeof AttrType;
      return { name, type: AttrType[field], [field]: (value as Record<string, unknown>)[field] };
    });
    this.nodes.push({ op_type: type, name: `${out}_node`, input: [...inputs], output: [out], attribute });
    return out;
  }

  /** The ModelProto bytes (IR version 8, the default ONNX opset at `opset`). */
  encode(opset: number): Uint8Array {
    const model = {
      ir_version: 8,
      producer_name: 'caphost scripts/onnx-graph.ts',
      opset_import: [{ domain: '', version: opset }],
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
    const problem = ModelProto.verify(model);
    if (problem !== null) throw new Error(`ONNX model does not fit the schema: ${problem}`);
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }
}
