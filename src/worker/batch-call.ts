import type { Logger } from '../logger.js';
import type { BatchContext } from './define-worker.js';
import type { WorkerResources } from './worker-device.js';
import type { WorkerDevice } from './worker-device.js';
import type { DeviceTensor } from '../device/device-tensor.js';

/** One call of a running batch: its entry in the worker loop's table of cancellable calls. */
export class BatchMember {
  /** Answered: cancelled early, or its output written. */
  done = false;

  constructor(
    readonly batch: BatchCall,
    readonly ticket: number,
    readonly position: number,
    readonly deadline: number | undefined,
  ) {}

  get capability(): string {
    return this.batch.capability;
  }

  /** The caller cancelled this call, or its deadline passed: answer it now, whatever the rest of the batch does. */
  abort(reason: Error): void {
    this.batch.abortMember(this, reason);
  }
}

/**
 * One handler invocation over a batch of calls, and the context its handler sees. A call of the
 * batch that is cancelled while the handler runs is answered at once (its ticket goes back to the
 * controller, which settled it already), and the handler's signal aborts once no call is left.
 */
export class BatchCall implements BatchContext {
  readonly members: BatchMember[] = [];
  private controller: AbortController | undefined;
  private abortReason: Error | undefined;
  private live = 0;

  constructor(
    readonly capability: string,
    readonly log: Logger,
    /** Writes the error completion of a member answered early. */
    private readonly answerEarly: (member: BatchMember, reason: Error) => void,
    private readonly resources: WorkerResources,
  ) {}

  get device(): WorkerDevice {
    return this.resources.device;
  }

  get weights(): ReadonlyMap<string, DeviceTensor> {
    return this.resources.weights;
  }

  add(ticket: number, position: number, deadline: number | undefined): BatchMember {
    const member = new BatchMember(this, ticket, position, deadline);
    this.members.push(member);
    this.live++;
    return member;
  }

  get size(): number {
    return this.members.length;
  }

  get deadline(): number | undefined {
    let latest = 0;
    for (const member of this.members) {
      if (member.deadline === undefined) return undefined;
      if (member.deadline > latest) latest = member.deadline;
    }
    return latest;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  cancelled(index: number): boolean {
    const member = this.members[index];
    if (member === undefined) throw new RangeError(`batch index ${index} is outside this batch of ${this.members.length}`);
    return member.done;
  }

  abortMember(member: BatchMember, reason: Error): void {
    if (member.done) return;
    member.done = true;
    this.answerEarly(member, reason);
    if (--this.live === 0) this.abort(reason);
  }

  /** Aborts the handler's signal (every call is gone, or the worker is stopping). */
  abort(reason: Error): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}
