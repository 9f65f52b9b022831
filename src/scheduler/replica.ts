import type { ControllerChannel } from './controller-channel.js';
import type { PendingCall } from './pending-call.js';

/**
 * The scheduler's view of one worker replica: its channel while it runs, the calls it holds by
 * ticket, and how many more it should be given. The replica survives restarts of its worker;
 * only the channel changes.
 */
export class Replica {
  channel: ControllerChannel | null = null;
  /** Index of each capability key in the running worker's own table. */
  capabilityIndex: ReadonlyMap<string, number> = new Map();
  /** The running worker's session in the device handle table (null: no device access). */
  deviceSession: string | null = null;
  /** Set when the worker cannot be restarted: its capabilities are unavailable here. */
  failed = false;
  private tickets: (PendingCall | undefined)[] = [];
  private freeTickets: number[] = [];
  /** Smoothed handler busy time per call, in ns, as the worker reports it. */
  private busyNs = 0;
  private limit: number;
  /** Members of the batch this replica runs that have not completed (0: it can take a batch). */
  batchLeft = 0;

  constructor(
    readonly provider: number,
    readonly label: string,
    /** Hard cap on calls in the ring at once (at most the ring's slot count). */
    readonly maxInFlight: number,
    /** Work the ring should hold ahead of the worker, in ns: deep enough to keep it busy, shallow enough that priorities still act. */
    private readonly ringBudgetNs: number,
  ) {
    this.limit = maxInFlight;
  }

  /** Load figure for routing: calls held now, or Infinity when it cannot take another. */
  load(): number {
    const channel = this.channel;
    if (channel === null) return Infinity;
    return channel.inFlight >= this.limit ? Infinity : channel.inFlight;
  }

  attach(channel: ControllerChannel, capabilityIndex: ReadonlyMap<string, number>): void {
    this.channel = channel;
    this.capabilityIndex = capabilityIndex;
    this.tickets = new Array<PendingCall | undefined>(this.maxInFlight).fill(undefined);
    this.freeTickets = Array.from({ length: this.maxInFlight }, (_, i) => this.maxInFlight - 1 - i);
  }

  /** Takes the worker's channel away and returns every call it held. */
  detach(): PendingCall[] {
    const held = this.tickets.filter((call): call is PendingCall => call !== undefined);
    this.channel = null;
    this.tickets = [];
    this.freeTickets = [];
    this.batchLeft = 0;
    return held;
  }

  takeTicket(call: PendingCall): number {
    const ticket = this.freeTickets.pop();
    if (ticket === undefined) return -1;
    this.tickets[ticket] = call;
    return ticket;
  }

  /** Releases a ticket when its completion arrives, returning the call it held. `busyNs` is 0 when the worker did not time the call. */
  releaseTicket(ticket: number, busyNs: number): PendingCall | undefined {
    // `ticket` comes from the worker: anything outside the table is not a completion of ours.
    if (!(ticket < this.tickets.length)) return undefined;
    const call = this.tickets[ticket];
    if (call === undefined) return undefined;
    this.tickets[ticket] = undefined;
    this.freeTickets.push(ticket);
    if (call.inBatch) {
      call.inBatch = false;
      this.batchLeft--;
    }
    if (busyNs <= 0) return call;
    this.busyNs = this.busyNs === 0 ? busyNs : this.busyNs + (busyNs - this.busyNs) / 8;
    this.limit = Math.max(1, Math.min(this.maxInFlight, Math.ceil(this.ringBudgetNs / Math.max(this.busyNs, 1)) + 1));
    return call;
  }

  /** Tickets free now: how many more calls the ring can hold. */
  get freeTicketCount(): number {
    return this.freeTickets.length;
  }

  holds(ticket: number, call: PendingCall): boolean {
    return this.tickets[ticket] === call;
  }

  get inFlightLimit(): number {
    return this.limit;
  }

  get averageBusyNs(): number {
    return this.busyNs;
  }
}
