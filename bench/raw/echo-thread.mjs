// The bare thread round trip's worker: answers every message with one.
import { parentPort } from 'node:worker_threads';

parentPort.on('message', (message) => parentPort.postMessage({ type: 'result', id: message.id }));
