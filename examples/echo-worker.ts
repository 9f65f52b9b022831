/** The smallest worker: one capability that returns its bytes. */
import { defineWorker } from 'caphost/worker';

export default defineWorker({
  capabilities: {
    'echo.bytes@1.0': {
      schema: { proto: 'syntax = "proto3"; message Bytes { bytes data = 1; }', input: 'Bytes', output: 'Bytes' },
      handler: (input: { data: Uint8Array }) => input,
    },
  },
});
