/**
 * onnxruntime-node's MatMul as the GEMM baseline: a one-node ONNX graph (Y = A·B, f32) per
 * shape, run by an InferenceSession with intra-op threads set to the count being measured.
 * The model is written with protobufjs's Writer from the field numbers of onnx.proto (ModelProto
 * 1 ir_version, 7 graph, 8 opset_import; GraphProto 1 node, 2 name, 11 input, 12 output;
 * NodeProto 1 input, 2 output, 4 op_type; ValueInfoProto 1 name, 2 type; TypeProto 1
 * tensor_type; TypeProto.Tensor 1 elem_type, 2 shape; TensorShapeProto 1 dim; Dimension 1
 * dim_value), so no converter or Python is involved.
 */
import protobuf from 'protobufjs';

export interface OrtMatmul {
  readonly version: string;
  run(m: number, k: number, n: number, threads: number, a: Float32Array, b: Float32Array): Promise<void>;
  close(): Promise<void>;
}

function valueInfo(w: protobuf.Writer, field: number, name: string, dims: number[]): void {
  const shape = protobuf.Writer.create();
  for (const d of dims) shape.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 0).int64(d).ldelim();
  const tensor = protobuf.Writer.create();
  tensor.uint32((1 << 3) | 0).int32(1); // elem_type FLOAT
  tensor.uint32((2 << 3) | 2).bytes(shape.finish());
  const type = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(tensor.finish());
  w.uint32((field << 3) | 2).fork().uint32((1 << 3) | 2).string(name).uint32((2 << 3) | 2).bytes(type.finish()).ldelim();
}

export function matmulModel(m: number, k: number, n: number): Uint8Array {
  const graph = protobuf.Writer.create();
  graph.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string('A').uint32((1 << 3) | 2).string('B').uint32((2 << 3) | 2).string('Y').uint32((4 << 3) | 2).string('MatMul').ldelim();
  graph.uint32((2 << 3) | 2).string('matmul');
  valueInfo(graph, 11, 'A', [m, k]);
  valueInfo(graph, 11, 'B', [k, n]);
  valueInfo(graph, 12, 'Y', [m, n]);
  const model = protobuf.Writer.create();
  model.uint32((1 << 3) | 0).int64(8); // ir_version 8
  model.uint32((7 << 3) | 2).bytes(graph.finish());
  model.uint32((8 << 3) | 2).fork().uint32((2 << 3) | 0).int64(17).ldelim(); // opset 17, default domain
  return model.finish();
}

// The slice of onnxruntime-node's API used here; typed locally so the build does not depend on
// the comparison package being installed.
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<unknown>;
  release(): Promise<void>;
}
interface Ort {
  env: { versions?: { common?: string } };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
}

export async function startOrtMatmul(): Promise<OrtMatmul> {
  let ort: Ort;
  const name = 'onnxruntime-node';
  try {
    ort = (await import(name)) as Ort;
  } catch (err) {
    throw new Error(`onnxruntime-node is not installed (a dev dependency; npm install): ${(err as Error).message}`);
  }
  const sessions = new Map<string, OrtSession>();
  return {
    version: ort.env.versions?.common ?? 'unknown',
    async run(m, k, n, threads, a, b) {
      const key = `${m}x${k}x${n}@${threads}`;
      let session = sessions.get(key);
      if (session === undefined) {
        session = await ort.InferenceSession.create(matmulModel(m, k, n), { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
        sessions.set(key, session);
      }
      await session.run({ A: new ort.Tensor('float32', a.subarray(0, m * k), [m, k]), B: new ort.Tensor('float32', b.subarray(0, k * n), [k, n]) });
    },
    async close() {
      for (const s of sessions.values()) await s.release();
    },
  };
}
