import type { Controller } from '../controller/controller.js';
import { CaphostError, ErrorCode } from '../errors.js';
import type { ResolvedModelMapping } from './server-config.js';
import { type TensorSpec, hasDeviceTensors, tensorSpecs } from './tensor-mapping.js';

/** One capability served as a KServe model. */
export interface Model {
  readonly name: string;
  readonly version: string;
  /** The capability request the server calls (`embed.text@1`). */
  readonly capability: string;
  /** What it resolved to when the server started (`embed.text@1.0`). */
  readonly key: string;
  readonly inputs: ReadonlyMap<string, TensorSpec>;
  readonly outputs: readonly TensorSpec[];
  /** The output has caphost.Tensor fields: device tensors in it are downloaded and freed before answering. */
  readonly deviceOutputs: boolean;
  /** GET /v2/models/{name}, serialised once. */
  readonly metadataJson: string;
}

/** The models a server offers, by name; built once the controller has started. */
export class ModelTable {
  private readonly byName = new Map<string, Model>();

  constructor(controller: Controller, mapping: readonly ResolvedModelMapping[] | undefined) {
    const entries = mapping ?? controller.capabilities().map((c) => ({ capability: c.capability, name: undefined, version: undefined }));
    for (const entry of entries) {
      let types;
      try {
        types = controller.messageTypes(entry.capability);
      } catch (err) {
        // A mapping naming a capability no worker provides is a config mistake; say which.
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `models["${entry.capability}"]: ${(err as Error).message}`, { cause: err, details: { option: `models["${entry.capability}"]` } });
      }
      const at = types.key.indexOf('@');
      const name = entry.name ?? types.key.slice(0, at);
      const version = entry.version ?? types.key.slice(at + 1);
      const inputs = tensorSpecs(types.input);
      const outputs = tensorSpecs(types.output);
      const describe = (s: TensorSpec) =>
        s.device ? { name: s.name, datatype: s.datatype, shape: s.shape, parameters: { caphost_tensor: true, datatypes: ['FP32', 'FP16', 'BF16', 'INT32', 'UINT8'] } } : { name: s.name, datatype: s.datatype, shape: s.shape };
      const metadataJson = JSON.stringify({
        name,
        versions: [version],
        platform: 'caphost',
        inputs: inputs.map(describe),
        outputs: outputs.map(describe),
        parameters: { capability: types.key, input_message: types.input.name, output_message: types.output.name },
      });
      if (this.byName.has(name)) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `two capabilities are served as model "${name}"; give one of them models["${entry.capability}"].name`, { details: { option: 'models' } });
      }
      this.byName.set(name, { name, version, capability: entry.capability, key: types.key, inputs: new Map(inputs.map((s) => [s.name, s])), outputs, deviceOutputs: hasDeviceTensors(types.output), metadataJson });
    }
  }

  /** The model, or a MODEL-not-found error that lists what exists. */
  get(name: string, version: string | undefined): Model {
    const model = this.byName.get(name);
    if (model === undefined) {
      throw new CaphostError(ErrorCode.CAPABILITY_NOT_FOUND, `no model named "${name}"; models served: ${[...this.byName.keys()].join(', ') || 'none'}`, { details: { model: name } });
    }
    if (version !== undefined && version !== model.version) {
      throw new CaphostError(ErrorCode.CAPABILITY_NOT_FOUND, `model "${name}" has no version "${version}"; its version is "${model.version}"`, { details: { model: name, version } });
    }
    return model;
  }

  get models(): IterableIterator<Model> {
    return this.byName.values();
  }
}
