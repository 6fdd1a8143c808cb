// The bare child round trip's child: answers every line on fd 3 with a line, as the runtime
// does with a task report, and nothing else. Ends when the channel closes.
import { Socket } from 'node:net';

const channel = new Socket({ fd: 3, readable: true, writable: true });
channel.setEncoding('utf8');
let partial = '';
channel.on('data', (chunk) => {
  const text = partial + chunk;
  const lines = text.split('\n');
  partial = lines.pop();
  let out = '';
  for (const line of lines) out += `${JSON.stringify({ type: 'result', id: JSON.parse(line).id })}\n`;
  if (out.length > 0) channel.write(out);
});
channel.on('close', () => process.exit(0));
channel.on('error', () => undefined);
