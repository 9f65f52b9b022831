/**
 * A worker with two capabilities that share a schema file, a setup step and an async handler
 * that honours its abort signal.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorker } from 'caphost/worker';

let splitter: RegExp;

function tokenize(text: string): string[] {
  return text.toLowerCase().split(splitter).filter((t) => t.length > 0);
}

export default defineWorker({
  setup(ctx) {
    splitter = /[^\p{L}\p{N}]+/u;
    ctx.log.info('text worker ready', { replica: ctx.replica });
  },
  capabilities: {
    'text.tokens@1.0': {
      schema: { proto: './text.proto', input: 'Text', output: 'Tokens' },
      handler: ({ text }: { text: string }) => {
        const tokens = tokenize(text);
        return { tokens, count: tokens.length };
      },
    },
    'text.stats@1.1': {
      schema: { proto: './text.proto', input: 'Text', output: 'Stats' },
      // Pretends to be slow so the demo can show deadlines; stops as soon as the call is aborted.
      handler: async ({ text }: { text: string }, ctx) => {
        if (text.includes('slow')) await sleep(200, undefined, { signal: ctx.signal });
        const frequencies: Record<string, number> = {};
        const tokens = tokenize(text);
        for (const t of tokens) frequencies[t] = (frequencies[t] ?? 0) + 1;
        return { characters: [...text].length, words: tokens.length, frequencies };
      },
    },
  },
});
