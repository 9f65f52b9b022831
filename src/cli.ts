#!/usr/bin/env node
// `caphost <command> ...`: each command lives with its layer and is loaded only when named.
type Command = (args: readonly string[], io: { out: (line: string) => void; err: (line: string) => void }) => Promise<number>;

const commands: Record<string, { readonly summary: string; readonly load: () => Promise<Command> }> = {
  ca: { summary: 'cluster certificate authority: ca init, ca issue', load: async () => (await import('./mesh/ca-command.js')).runCaCommand },
  serve: { summary: 'HTTP inference server (KServe v2) from a config file', load: async () => (await import('./server/serve-command.js')).run },
};

const io = { out: (line: string) => void process.stdout.write(`${line}\n`), err: (line: string) => void process.stderr.write(`${line}\n`) };
const [name, ...args] = process.argv.slice(2);
const command = name === undefined ? undefined : commands[name];
if (command === undefined) {
  if (name !== undefined && name !== 'help' && name !== '--help') io.err(`caphost: unknown command "${name}"`);
  io.err(`usage: caphost <command> ...\n${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`).join('\n')}`);
  process.exitCode = name === 'help' || name === '--help' ? 0 : 2;
} else {
  process.exitCode = await (await command.load())(args, io);
}
